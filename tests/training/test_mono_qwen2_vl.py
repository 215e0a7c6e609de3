"""LoRA fine-tuning of MonoQwen2-VL: ``lychee finetune`` trains a new LoRA on the base with the published
adapter merged, on the inference prompt and the P(True) head (``[False, True]`` logits), image
documents with text queries; the loss is finite, the scores move, and the new adapter reloads on
top of the MonoQwen2-VL directory through ``from_pretrained(adapter=...)`` and scores as the trained
model in memory did."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lychee_rerank import LycheeReranker
from lychee_rerank.training.finetune import finetune

from ..qwen2_vl_support import FAMILY

pytest.importorskip("peft")


def test_a_short_lora_run_trains_the_family_and_its_adapter_reloads(mono_qwen2_vl_dir, mono_qwen2_vl_images, tmp_path):
    im = [{"image": str(p)} for p in mono_qwen2_vl_images]  # image documents (a bare string is text)
    train = [
        {"query": "a red block", "positives": [im[0]], "negatives": [im[1], im[2]]},
        {"query": "green gradient", "positives": [im[3]], "negatives": [im[4], im[5]]},
        {"query": "一只猫", "document": im[6], "label": 1},
        {"query": "一只猫", "document": im[7], "label": 0},
    ]
    held = [{"query": "a block", "positives": [im[2]], "negatives": [im[5], im[6]]}]
    files = {}
    for name, records in (("train", train), ("eval", held)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _train_and_reload(mono_qwen2_vl_dir, mono_qwen2_vl_images, files, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _scores(reranker, query, docs) -> list[float]:
    results = sorted(reranker.rerank(query, docs), key=lambda r: r.index)
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.score for r in results]


def _train_and_reload(mono_dir, im, files, tmp_path) -> None:
    reranker = LycheeReranker.from_pretrained(mono_dir, device="cpu", dtype="float32")
    assert reranker.info["family"] == FAMILY
    probe = [im[2], im[5]]
    base = _scores(reranker, "a block", probe)
    out = tmp_path / "adapter"
    report = finetune(reranker, files["train"], files["eval"], output_dir=out, max_steps=3, lr=5e-3, batch_size=3,
                      lora_r=4, hard_negatives=2, progress=False)
    assert report.history and all(math.isfinite(h.loss) for h in report.history)
    trained = _scores(reranker, "a block", probe)
    assert trained != pytest.approx(base, abs=1e-6)  # the new adapter changed the scores
    reloaded = LycheeReranker.from_pretrained(mono_dir, device="cpu", dtype="float32", adapter=str(out))
    assert reloaded.info["family"] == FAMILY
    assert _scores(reloaded, "a block", probe) == pytest.approx(trained, abs=1e-5)


def test_the_finetune_command_writes_an_adapter_that_loads_as_a_model_of_its_own(mono_qwen2_vl_dir, mono_qwen2_vl_images,
                                                                                tmp_path):
    """``lychee finetune --model MONO``: the new adapter names the MonoQwen2-VL directory as its base,
    so ``--model NEW`` (base + published adapter + new adapter) scores as ``--model MONO --adapter NEW``."""
    from typer.testing import CliRunner

    from lychee_rerank.cli import app

    im = [{"image": str(p)} for p in mono_qwen2_vl_images]
    train = [{"query": "a red block", "positives": [im[0]], "negatives": [im[1], im[2]]},
             {"query": "green gradient", "positives": [im[3]], "negatives": [im[4], im[5]]}]
    held = [{"query": "a block", "positives": [im[2]], "negatives": [im[5]]}]
    files = {}
    for name, records in (("train", train), ("eval", held)):
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "new-adapter"
    result = CliRunner().invoke(app, [
        "finetune", "--model", str(mono_qwen2_vl_dir), "--train", str(files["train"]), "--eval", str(files["eval"]),
        "--output", str(out), "--max-steps", "2", "--batch-size", "3", "--lora-r", "4", "--lr", "5e-3", "--no-resume",
        "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(mono_qwen2_vl_dir)
    probe = [mono_qwen2_vl_images[2], mono_qwen2_vl_images[5]]
    stacked = LycheeReranker.from_pretrained(out, device="cpu", dtype="float32")
    assert stacked.info["family"] == FAMILY
    on_top = LycheeReranker.from_pretrained(mono_qwen2_vl_dir, device="cpu", dtype="float32", adapter=str(out))
    plain = LycheeReranker.from_pretrained(mono_qwen2_vl_dir, device="cpu", dtype="float32")
    assert _scores(stacked, "a block", probe) == pytest.approx(_scores(on_top, "a block", probe), abs=1e-5)
    assert _scores(stacked, "a block", probe) != pytest.approx(_scores(plain, "a block", probe), abs=1e-6)


def test_a_text_document_in_the_training_data_stops_finetune_with_the_reason(mono_qwen2_vl_dir, mono_qwen2_vl_images,
                                                                            tmp_path):
    """MonoQwen2-VL reads image documents only: a text document in the data is not trained as something
    else; the command stops with the family's one-line reason (exit status 1)."""
    from typer.testing import CliRunner

    from lychee_rerank.cli import app

    im = [{"image": str(p)} for p in mono_qwen2_vl_images[:4]]
    records = [{"query": "a", "positives": [im[0]], "negatives": ["a text document", im[1]]},
               {"query": "b", "positives": [im[2]], "negatives": [im[3]]}]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = CliRunner().invoke(app, [
        "finetune", "--model", str(mono_qwen2_vl_dir), "--train", str(data), "--eval", str(data), "--output",
        str(tmp_path / "out"), "--max-steps", "1", "--batch-size", "3", "--lora-r", "4", "--no-resume",
        "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 1
    assert "reads image documents only: a document with text cannot be scored by it" in result.output
