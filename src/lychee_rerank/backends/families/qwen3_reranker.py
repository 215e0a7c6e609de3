"""Qwen3-Reranker (0.6B, 4B, 8B; text only): scored exactly as its official README code does.

Official code: the "Reranker Model / Transformers Usage" snippet of QwenLM/Qwen3-Embedding's
README (vendored unchanged in ``tests/official/qwen3_reranker_readme.py`` and run there as the
parity reference). What it does, and so what this adapter declares:

* ``AutoModelForCausalLM`` (``Qwen3ForCausalLM``) and ``AutoTokenizer``: the tokenizer is the
  "processor"; no chat template is applied, the prompt is a fixed string;
* prompt: ``{PREFIX}<Instruct>: {instruction}\\n<Query>: {query}\\n<Document>: {doc}{SUFFIX}``
  (system turn, user turn, then an assistant turn with an empty ``<think>`` block), default
  instruction "Given a web search query, retrieve relevant passages that answer the query";
* score: ``softmax([logit no, logit yes])[yes]`` at the last position, i.e. sigmoid of the
  difference of the two logits;
* truncation: the body (instruction, query, document) is cut to ``8192 - len(prefix ids) -
  len(suffix ids)`` tokens, then the prefix and suffix ids are put around it: the whole prompt
  is at most 8,192 ids, and the suffix is always kept.

Images and videos are not read: an image query is refused, an image document fails alone.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from . import FAMILIES
from ...prompt import SYSTEM_PROMPT, PromptSpec
from .base import FamilyAdapter, Loaded, ScoreHead, yes_no_head
from ..loading import from_pretrained

DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
PREFIX = f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n"
BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}"
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
#: The README's ``max_length``: prefix + body + suffix ids.
MAX_LENGTH = 8192
#: Ids of SUFFIX with the Qwen3 tokenizer (recounted from the tokenizer when a checkpoint loads).
SUFFIX_IDS = 9

TEXT_ONLY = "the qwen3_reranker model family reads text only"


class Qwen3RerankerFamily(FamilyAdapter):
    spec = FAMILIES["qwen3_reranker"]
    prompt = PromptSpec(SYSTEM_PROMPT, DEFAULT_INSTRUCTION)
    min_pixels = 0
    max_pixels = 0
    # No per-text limits of its own: each text is bounded by the whole budget, then truncate() applies it.
    max_query_tokens = MAX_LENGTH
    max_doc_tokens = MAX_LENGTH
    suffix_ids = SUFFIX_IDS

    def load(self, name, *, device, dtype, attn_implementation, min_pixels, max_pixels, trust_remote_code) -> Loaded:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model, tokenizer, attn = from_pretrained(
            name, AutoModelForCausalLM, dtype=dtype, attn_implementation=attn_implementation,
            trust_remote_code=trust_remote_code, device=device, processor_class=AutoTokenizer,
            processor_kwargs={"padding_side": "left"},
        )
        self.suffix_ids = len(tokenizer.encode(SUFFIX, add_special_tokens=False))
        return Loaded(model, tokenizer, attn)

    def tokenizer(self, processor: Any) -> Any:
        return processor

    def messages(self, query: Any, document: Any, instruction: str, mode: str) -> None:
        """None: Qwen3-Reranker's official prompt is one raw string (its chat markers written out), not chat messages."""
        return None

    def render(self, processor: Any, query: Any, document: Any, instruction: str, mode: str) -> str:
        body = BODY.format(instruction=instruction, query=query.text or "", doc=document.text or "")
        return f"{PREFIX}{body}{SUFFIX}"

    def head(self, model: Any, tokenizer: Any) -> ScoreHead:
        return yes_no_head(model, tokenizer, difference=False)

    def positions(
        self, model: Any, input_ids: torch.Tensor, mask: torch.Tensor, grids: Sequence[tuple[int, int, int]],
        image_token_id: int,
    ) -> torch.Tensor:
        # Padding may sit between a cached prefix and a row's rest: count only real tokens.
        return (mask.long().cumsum(-1) - 1).clamp(min=0)

    def truncate(self, ids: list[int], special_ids: frozenset[int]) -> tuple[list[int], bool]:
        if len(ids) <= MAX_LENGTH:
            return ids, False
        tail = self.suffix_ids
        return ids[: MAX_LENGTH - tail] + ids[-tail:], True

    # ------------------------------------------------------------------ no images
    def grid(self, width: int, height: int, min_pixels: int, max_pixels: int) -> tuple[int, int, int]:
        raise ValueError(TEXT_ONLY)

    def image_tokens(self, grid: tuple[int, int, int]) -> int:
        raise ValueError(TEXT_ONLY)

    def preprocess(self, processor: Any, images: Sequence[Any], min_pixels: int, max_pixels: int) -> dict:
        raise ValueError(TEXT_ONLY)

    def vision(self, model: Any, inputs: dict[str, torch.Tensor]) -> list[Any]:
        raise ValueError(TEXT_ONLY)

    def encoder_inputs(self, features: Sequence[Any]) -> dict[str, Any]:
        return {}
