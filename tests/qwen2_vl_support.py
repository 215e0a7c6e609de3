"""The tiny MonoQwen2-VL checkpoint and its reference scorer, for every test folder (registered in tests/conftest.py).

``mono_qwen2_vl_dir`` (session scope): the adapter directory of a tiny random MonoQwen2-VL in the
published layout (``lychee_rerank.testing.tiny_qwen2_vl.build_mono``: a Qwen2-VL base with the real
Qwen2 vocabulary, and a peft LoRA adapter whose ``base_model_name_or_path`` is that base), built
once per process (~60 MB, ~15 s). ``mono_qwen2_vl_reference`` (session scope): rerankers'
``MonoVLMRanker`` (rerankers 0.10.0, run unchanged) on it in FP32 on CPU. Its only arguments that
differ from its defaults are constructor arguments: ``processor_name`` = the tiny base directory
(its default, ``Qwen/Qwen2-VL-2B-Instruct``, is a hub download), ``attention_implementation="sdpa"``
(its default needs flash-attn and a GPU), ``device="cpu"``, ``dtype=float32``.
``mono_qwen2_vl_reranker`` (session scope): the library on it (FP32, CPU), every surface's yardstick.
``mono_qwen2_vl_images`` (session scope): eight small PNG files (the builder's probe pictures).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.family_support import built_once, library_reranker

FAMILY = "mono_qwen2_vl"
#: The instruction part of MonoVLMRanker's default prompt_template (the engine's default instruction).
DEFAULT_INSTRUCTION = (
    "Assert the relevance of the previous image document to the following query, answer True or False."
)


def tiny_mono_qwen2_vl_checkpoint(tmp_path_factory: pytest.TempPathFactory, seed: int = 0) -> Path:
    """The tiny MonoQwen2-VL adapter directory (its base beside it), built once per process and seed."""
    from lychee_rerank.testing.tiny_qwen2_vl import build_mono

    return built_once(tmp_path_factory, f"tiny-mono-qwen2-vl-{seed}", lambda out: build_mono(out, seed=seed))


class Reference:
    """rerankers' MonoVLMRanker, unchanged, fed the way its ``rank`` takes images: base64 strings."""

    def __init__(self, adapter_dir: Path, **kwargs) -> None:
        import torch
        from rerankers.models.monovlm_ranker import MonoVLMRanker

        from lychee_rerank.backends.families import adapter_base

        self.ranker = MonoVLMRanker(
            str(adapter_dir), processor_name=adapter_base(adapter_dir), dtype=torch.float32, device="cpu",
            verbose=0, attention_implementation="sdpa", **kwargs,
        )

    def scores(self, query: str, images: list[Path]) -> list[float]:
        """Scores in document order (``rank`` sorts them; its ``doc_id`` says which is which)."""
        docs = [base64.b64encode(Path(p).read_bytes()).decode("ascii") for p in images]
        ranked = self.ranker.rank(query, docs, doc_ids=list(range(len(docs))))
        by_id = {r.document.doc_id: r.score for r in ranked}
        return [by_id[i] for i in range(len(docs))]


@pytest.fixture(scope="session")
def mono_qwen2_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The adapter directory of a tiny random MonoQwen2-VL (seed 0); its base is ``../base``."""
    return tiny_mono_qwen2_vl_checkpoint(tmp_path_factory)


@pytest.fixture(scope="session")
def mono_qwen2_vl_reference(mono_qwen2_vl_dir: Path) -> Reference:
    return Reference(mono_qwen2_vl_dir)


@pytest.fixture(scope="session")
def mono_qwen2_vl_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from lychee_rerank.testing.tiny_qwen2_vl import probe_images

    folder = tmp_path_factory.mktemp("mono-qwen2-vl-images")
    paths = []
    for k, image in enumerate(probe_images()):
        paths.append(folder / f"page{k}.png")
        image.save(paths[-1])
    return paths


@pytest.fixture(scope="session")
def mono_qwen2_vl_reranker(mono_qwen2_vl_dir: Path):
    """The library's MonoQwen2-VL on the tiny checkpoint: the yardstick of every surface's test."""
    return library_reranker(mono_qwen2_vl_dir, FAMILY)
