"""LoRA fine-tuning of a Qwen3-VL-Reranker checkpoint: a few steps on text and image pairs, a finite
loss on the inference prompt and head, and an adapter that reloads through ``from_pretrained`` and
scores as the trained model in memory did. As tests/training/test_finetune.py does for lychee."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lychee_rerank import LycheeReranker
from lychee_rerank.training.finetune import finetune

from ..qwen3_vl_support import FAMILY, qwen3_vl_pngs, qwen3_vl_reranker  # noqa: F401 - shared fixtures

pytest.importorskip("peft")

STEPS = 4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices on a shared 2-core machine: a second intra-op thread only adds contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def task(tmp_path_factory, qwen3_vl_pngs: list[Path]) -> dict[str, Path]:
    """Text and image pairs, images relative to the JSONL; a held-out set with an image query."""
    folder = tmp_path_factory.mktemp("q3-task")
    for i, p in enumerate(qwen3_vl_pngs):
        (folder / f"p{i}.png").write_bytes(p.read_bytes())
    train = [
        {"query": "a red circle", "positives": ["a big red circle", {"text": "a circle", "image": "p0.png"}],
         "negatives": ["a stock market report", {"image": "p1.png"}]},
        {"query": "green triangles", "positives": ["three green triangles"], "negatives": ["a red circle", "weather"]},
        {"query": {"text": "like this", "image": "p2.png"}, "document": {"image": "p2.png"}, "label": 1},
        {"query": {"text": "like this", "image": "p2.png"}, "document": "a cup of coffee", "label": 0},
        {"query": "a cat", "document": "a black cat on a sill", "label": 1},
        {"query": "a cat", "document": {"text": "a drawing", "image": "p1.png"}, "label": 0},
    ]
    held_out = [
        {"query": "a circle", "positives": ["one red circle", {"image": "p0.png"}], "negatives": ["a report", {"image": "p1.png"}]},
        {"query": {"text": "the same picture", "image": "p1.png"}, "positives": [{"image": "p1.png"}], "negatives": ["coffee"]},
    ]
    return {"train": _write_jsonl(folder / "train.jsonl", train), "eval": _write_jsonl(folder / "eval.jsonl", held_out),
            "folder": folder}


@pytest.fixture(scope="module")
def trained(qwen3_vl_dir, task, tmp_path_factory):
    """One short real run on a freshly loaded reranker (not the shared yardstick: training wraps it)."""
    out = tmp_path_factory.mktemp("q3-run") / "adapter"
    reranker = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32")
    report = finetune(reranker, task["train"], task["eval"], output_dir=out, max_steps=STEPS, lr=2e-3, batch_size=3,
                      lora_r=4, hard_negatives=2, progress=False)
    return report, reranker, out


def _pairs(task: dict[str, Path]) -> list[tuple[object, list, list[bool]]]:
    """The held-out groups as engine inputs: (query, documents, labels), images as paths."""
    def side(value):
        if isinstance(value, dict) and "image" in value:
            return {**value, "image": task["folder"] / value["image"]}
        return value

    rows = []
    for line in task["eval"].read_text().splitlines():
        g = json.loads(line)
        docs = [side(d) for d in g["positives"] + g["negatives"]]
        rows.append((side(g["query"]), docs, [True] * len(g["positives"]) + [False] * len(g["negatives"])))
    return rows


def _scores(reranker: LycheeReranker, query, docs) -> list[float]:
    results = sorted(reranker.rerank(query, docs), key=lambda r: r.index)
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.score for r in results]


def test_a_few_lora_steps_on_text_and_image_pairs(trained):
    report, reranker, out = trained
    assert reranker.info["family"] == FAMILY
    assert report.steps == STEPS and not report.bad_records
    assert report.last_train_loss is not None and math.isfinite(report.last_train_loss)
    assert [h.step for h in report.history] == [0, STEPS]
    assert all(math.isfinite(h.loss) for h in report.history) and report.history[-1].n_pairs == 6
    assert 0 < report.trainable_parameters < report.total_parameters
    assert {"adapter_config.json", "adapter_model.safetensors", "finetune_report.json"} <= {p.name for p in out.iterdir()}
    weights = load_file(str(out / "adapter_model.safetensors"))
    # lora_B starts at zero: non-zero means the loss reached the language model's layers.
    assert any(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)
    assert not any("visual" in k for k in weights)  # the vision tower is frozen by default


def test_held_out_loss_is_the_log_loss_of_the_inference_score(trained, task):
    """Training evaluates through the inference prompt and score head: the engine's scores of the
    held-out pairs reproduce the loss the run reported."""
    report, reranker, _ = trained
    losses = []
    for query, docs, labels in _pairs(task):
        for s, y in zip(_scores(reranker, query, docs), labels):
            losses.append(-math.log(s if y else 1 - s))
    assert sum(losses) / len(losses) == pytest.approx(report.history[-1].loss, abs=1e-4)


def test_the_saved_adapter_reloads_and_scores_as_the_trained_model(trained, task, qwen3_vl_dir, qwen3_vl_reranker):
    _, in_memory, out = trained
    unmerged = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32", adapter=out)
    merged = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32", adapter=out, merge_adapter=True)
    assert unmerged.info["family"] == merged.info["family"] == FAMILY
    moved = 0.0
    for query, docs, _ in _pairs(task):
        expected = _scores(in_memory, query, docs)
        for other in (unmerged, merged):
            assert _scores(other, query, docs) == pytest.approx(expected, abs=1e-5)
        moved = max(moved, max(abs(a - b) for a, b in zip(_scores(qwen3_vl_reranker, query, docs), expected)))
    assert moved > 1e-3  # the adapter really changed the scores (the base yardstick has none)
