"""LoRA fine-tuning of a Qwen3-Reranker (text) checkpoint: a few steps on the inference prompt and head,
a finite loss, and an adapter that reloads through ``from_pretrained`` and scores as the trained
model in memory did."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.training.finetune import finetune

pytest.importorskip("peft")


def test_a_short_lora_run_trains_the_text_family_and_its_adapter_reloads(qwen3_reranker_dir, tmp_path):
    train = [
        {"query": "a red circle", "positives": ["a big red circle"], "negatives": ["a stock market report", "weather"]},
        {"query": "green triangles", "positives": ["three green triangles"], "negatives": ["a red circle", "rain"]},
        {"query": "一只猫", "document": "一只黑猫趴在窗台上", "label": 1},
        {"query": "一只猫", "document": "股票市场报告", "label": 0},
    ]
    held = [{"query": "a circle", "positives": ["one red circle"], "negatives": ["a report", "snow"]}]
    files = {}
    for name, records in (("train", train), ("eval", held)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second intra-op thread only adds contention
    try:
        _train_and_reload(qwen3_reranker_dir, files, tmp_path)
    finally:
        torch.set_num_threads(threads)  # the rest of the session keeps its thread count


def _train_and_reload(qwen3_reranker_dir, files, tmp_path) -> None:
    reranker = LycheeReranker.from_pretrained(qwen3_reranker_dir, device="cpu", dtype="float32")
    base = [r.score for r in sorted(reranker.rerank("a circle", ["one red circle", "a report"]), key=lambda r: r.index)]
    out = tmp_path / "adapter"
    report = finetune(reranker, files["train"], files["eval"], output_dir=out, max_steps=3, lr=2e-3, batch_size=3,
                      lora_r=4, hard_negatives=2, progress=False)
    assert report.history and all(math.isfinite(h.loss) for h in report.history)
    trained = [r.score for r in sorted(reranker.rerank("a circle", ["one red circle", "a report"]), key=lambda r: r.index)]
    assert trained != pytest.approx(base, abs=1e-6)  # the adapter changed the scores
    reloaded = LycheeReranker.from_pretrained(qwen3_reranker_dir, device="cpu", dtype="float32", adapter=str(out))
    assert reloaded.info["family"] == "qwen3_reranker"
    again = [r.score for r in sorted(reloaded.rerank("a circle", ["one red circle", "a report"]), key=lambda r: r.index)]
    assert again == pytest.approx(trained, abs=1e-5)
