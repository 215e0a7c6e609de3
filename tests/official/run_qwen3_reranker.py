"""Drive the official Qwen3-Reranker README code (``qwen3_reranker_readme.py``, vendored unchanged).

The README loads ``Qwen/Qwen3-Reranker-0.6B`` from the hub in its default dtype; here the same two
lines load a local checkpoint directory in FP32 on the CPU, then the README's own set-up
(``README_SETUP``: token ids, ``max_length = 8192``, prefix and suffix ids) runs in the vendored
module's namespace, and pairs are scored the README's way::

    pairs = [format_instruction(task, query, doc) for query, doc in zip(queries, documents)]
    inputs = process_inputs(pairs)
    scores = compute_logits(inputs)

It runs in-process on the project's transformers (5.x): the README code needs nothing that 5.x lacks.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VENDORED = Path(__file__).resolve().parent / "qwen3_reranker_readme.py"


class ReadmeReranker:
    """The README's scorer on one checkpoint (its own copy of the vendored module's globals)."""

    def __init__(self, model_dir: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        spec = importlib.util.spec_from_file_location(f"qwen3_reranker_readme_{id(self)}", VENDORED)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        # The README's two loading lines, from a local directory and in FP32 (the README: the hub id).
        module.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), padding_side='left')
        module.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
        exec(module.README_SETUP, module.__dict__)  # noqa: S102 - the README's own set-up lines, vendored
        self.module = module

    def pairs(self, query: str, documents: list[str], instruction: str | None = None) -> list[str]:
        """``format_instruction`` of each pair (``None``: the README's default instruction)."""
        return [self.module.format_instruction(instruction, query, doc) for doc in documents]

    def inputs(self, query: str, documents: list[str], instruction: str | None = None) -> dict:
        """``process_inputs`` of the pairs: left-padded ids and mask, as the model gets them."""
        return self.module.process_inputs(self.pairs(query, documents, instruction))

    def ids(self, query: str, documents: list[str], instruction: str | None = None) -> list[list[int]]:
        """Each pair's ids without the padding (what the README feeds the model for it)."""
        inputs = self.inputs(query, documents, instruction)
        return [row[mask.bool()].tolist() for row, mask in zip(inputs["input_ids"], inputs["attention_mask"])]

    def scores(self, query: str, documents: list[str], instruction: str | None = None) -> list[float]:
        """``compute_logits(process_inputs(pairs))``: p(yes) per document, all in one batch as the README does."""
        return self.module.compute_logits(self.inputs(query, documents, instruction))
