"""LoRA fine-tuning on the tiny checkpoint: it learns, it saves, it reloads, it resumes.

The task: a query is one word; its relevant document contains the word (twice), the
irrelevant ones do not. The tiny random model has to learn it from scratch in 60 steps.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from lychee_rerank import LycheeReranker
from lychee_rerank.cli import app
from lychee_rerank.training.finetune import (
    epoch_units,
    finetune,
    load_dataset,
    lora_targets,
    ranking_metrics,
)

WORDS = ["cat", "dog", "coffee", "car", "fox", "rocket", "camera", "table", "park", "window", "astronaut", "motorcycle"]
FILLER = ["the", "a", "on", "in", "quick", "brown", "lazy", "red", "black", "white", "sitting", "jumps", "over", "cup", "sill"]


def _sentence(rng: random.Random, word: str | None) -> str:
    tokens = [rng.choice(FILLER) for _ in range(rng.randint(3, 6))]
    for _ in range(2 if word else 0):
        tokens.insert(rng.randint(0, len(tokens)), word)
    return " ".join(tokens)


def _groups(rng: random.Random, per_word: int) -> list[dict]:
    groups = [
        {"query": w, "positives": [_sentence(rng, w)], "negatives": [_sentence(rng, None) for _ in range(3)]}
        for w in WORDS
        for _ in range(per_word)
    ]
    rng.shuffle(groups)
    return groups


def _write_jsonl(path: Path, records: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices on a shared 2-core machine: a second intra-op thread only adds contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def task(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("task")
    rng = random.Random(0)
    train = _groups(rng, per_word=4)
    train.insert(5, '{"query": "cat", "positives": ["a cat"')  # line 6: broken JSON, reported and skipped
    return {
        "train": _write_jsonl(folder / "train.jsonl", train),
        "eval": _write_jsonl(folder / "eval.jsonl", _groups(rng, per_word=2)),
    }


@pytest.fixture(scope="module")
def trained(tiny_model_dir, task, tmp_path_factory):
    """One real run (60 steps), shared by the tests that look at its results."""
    out = tmp_path_factory.mktemp("run") / "adapter"
    reranker = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32")
    report = finetune(
        reranker, task["train"], task["eval"], output_dir=out, max_steps=60, lr=1e-3, batch_size=8,
        hard_negatives=3, warmup_ratio=0.1, save_every=30, progress=False,
    )
    return report, reranker, out


def _eval_pairs(path: Path) -> list[tuple[str, list[str], list[bool]]]:
    rows = []
    for line in path.read_text().splitlines():
        g = json.loads(line)
        rows.append((g["query"], g["positives"] + g["negatives"], [True] * len(g["positives"]) + [False] * len(g["negatives"])))
    return rows


def _scores(reranker: LycheeReranker, query: str, docs: list) -> list[float]:
    return [r.score for r in sorted(reranker.rerank(query, docs), key=lambda r: r.index)]


# ----------------------------------------------------------------------------- learning


def test_training_lowers_held_out_loss_and_raises_mrr(trained):
    report, _, out = trained
    before, after = report.history[0], report.history[-1]
    assert (before.step, after.step, report.steps) == (0, 60, 60)
    # Records with the same query are one query (12 words), each with 2 relevant documents.
    assert before.n_pairs == after.n_pairs == 96 and after.n_queries == 12
    assert after.loss < 0.75 * before.loss, [(h.step, h.loss) for h in report.history]
    assert after.mrr >= before.mrr + 0.1, [(h.step, h.mrr) for h in report.history]
    # An epoch is 48 positives x (1 + 3 negatives) = 24 micro-batches of 8; each epoch's end is evaluated.
    assert [h.step for h in report.history] == [0, 24, 48, 60]
    assert report.train_pairs == 48 * 4 and report.eval_pairs == 96
    assert 0 < report.trainable_parameters < report.total_parameters
    assert report.steps_per_second > 0 and report.last_train_loss is not None
    # The broken line was reported with its number, not silently dropped.
    assert [(Path(b.file).name, b.line) for b in report.bad_records] == [("train.jsonl", 6)]
    assert "invalid JSON" in report.bad_records[0].reason
    # Files: the adapter at the top, the last two checkpoints, config and report.
    assert {"adapter_config.json", "adapter_model.safetensors", "finetune_report.json", "finetune_config.json"} <= {
        p.name for p in out.iterdir()
    }
    assert sorted(Path(c).name for c in report.checkpoints) == ["checkpoint-30", "checkpoint-60"]
    saved = json.loads((out / "finetune_report.json").read_text())
    assert saved["history"][-1]["loss"] == pytest.approx(after.loss)


def test_held_out_loss_is_the_log_loss_of_the_inference_score(trained, task):
    """Training and evaluation go through the inference prompt and tensors: the engine's
    scores on the held-out set reproduce the loss the run reported."""
    report, reranker, _ = trained
    losses = []
    for query, docs, labels in _eval_pairs(task["eval"]):
        for s, y in zip(_scores(reranker, query, docs), labels):
            losses.append(-math.log(s if y else 1 - s))
    assert sum(losses) / len(losses) == pytest.approx(report.history[-1].loss, abs=1e-4)


def test_saved_adapter_reloads_and_scores_the_same(trained, task, tiny_model_dir, reranker):
    _, in_memory, out = trained
    unmerged = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", adapter=out)
    merged = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", adapter=out, merge_adapter=True)
    assert unmerged.backend.fast_path  # the unwrapped PeftModel keeps the fast path (prefix cache, 3D rope)
    moved = 0.0
    for query, docs, _ in _eval_pairs(task["eval"])[:6]:
        expected = _scores(in_memory, query, docs)
        for other in (unmerged, merged):
            assert max(abs(a - b) for a, b in zip(_scores(other, query, docs), expected)) <= 1e-5
        moved = max(moved, max(abs(a - b) for a, b in zip(_scores(reranker, query, docs), expected)))
    assert unmerged.backend.stats["prefix_batches"] > 0
    assert moved > 0.05  # the adapter really changed the scores (the base fixture has none)


def test_cli_rerank_with_adapter_matches_the_library(trained, tiny_model_dir):
    _, in_memory, out = trained
    docs = ["the cat on a cat sill", "a lazy red cup", "black cup over the sill"]
    result = CliRunner().invoke(
        app, ["rerank", "--model", str(tiny_model_dir), "--adapter", str(out), "cat", "--text", *docs, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    library = _scores(in_memory, "cat", docs)
    assert {r["index"]: r["score"] for r in records} == pytest.approx(dict(enumerate(library)), abs=1e-6)


def test_server_with_adapter_matches_the_library(trained, tiny_model_dir):
    """The adapter loaded by the HTTP service (settings.adapter, i.e. `lychee serve --adapter`)."""
    from lychee_rerank.serving.app import create_app
    from lychee_rerank.serving.settings import ServerSettings

    from ..serving.conftest import LiveServer

    _, in_memory, out = trained
    docs = ["the cat on a cat sill", "a lazy red cup", "black cup over the sill"]
    settings = ServerSettings(backend="lychee", model=str(tiny_model_dir), adapter=str(out), device="cpu", dtype="float32")
    live = LiveServer(create_app(settings)).start()
    try:
        live.wait_healthy()
        with live.client() as c:
            body = c.post("/v1/rerank", json={"query": "cat", "documents": docs}).json()
    finally:
        live.stop()
    got = {item["index"]: item["relevance_score"] for item in body["results"]}
    assert got == pytest.approx(dict(enumerate(_scores(in_memory, "cat", docs))), abs=1e-5)


def test_cli_finetune_writes_an_adapter(tiny_model_dir, task, tmp_path):
    out = tmp_path / "cli-adapter"
    result = CliRunner().invoke(
        app,
        ["finetune", "--model", str(tiny_model_dir), "--train", str(task["train"]), "--eval", str(task["eval"]),
         "--output", str(out), "--max-steps", "2", "--batch-size", "4", "--lora-r", "4", "--no-resume", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(out)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["steps"] == 2 and [b["line"] for b in report["bad_records"]] == [6]
    missing = CliRunner().invoke(app, ["finetune", "--model", str(tiny_model_dir), "--train", str(tmp_path / "nope.jsonl"),
                                       "--output", str(out)])
    assert missing.exit_code == 2


# ----------------------------------------------------------------------------- resume


def _adapter_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter_model.safetensors"))


def test_resume_continues_at_the_right_step(tiny_model_dir, task, tmp_path):
    settings = dict(max_steps=6, lr=1e-3, batch_size=4, grad_accum=2, lora_r=4, save_every=3, progress=False,
                    eval_split=0.0)
    straight = tmp_path / "straight"
    a = finetune(str(tiny_model_dir), task["train"], output_dir=straight, **settings)
    assert a.resumed_from_step is None and a.steps == 6
    assert sorted(Path(c).name for c in a.checkpoints) == ["checkpoint-3", "checkpoint-6"]

    # An interrupted run: only the step-3 checkpoint made it to disk.
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(straight / "checkpoint-3", interrupted / "checkpoint-3")
    b = finetune(str(tiny_model_dir), task["train"], output_dir=interrupted, **settings)
    assert b.resumed_from_step == 3 and b.steps == 6
    # Same data order, optimizer state and dropout RNG: the same adapter as the straight run.
    wa, wb, w3 = _adapter_weights(straight), _adapter_weights(interrupted), _adapter_weights(straight / "checkpoint-3")
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], atol=1e-6, rtol=1e-5)
    assert any(not torch.allclose(wa[k], w3[k]) for k in wa)  # steps 4-6 really ran

    # A finished run resumed with the same budget does nothing more.
    c = finetune(str(tiny_model_dir), task["train"], output_dir=interrupted, **settings)
    assert c.resumed_from_step == 6 and c.steps == 6 and c.train_seconds == 0

    # Changing what the saved state depends on is refused, not silently mixed.
    with pytest.raises(ValueError, match="lora_r"):
        finetune(str(tiny_model_dir), task["train"], output_dir=interrupted, **{**settings, "lora_r": 8})
    # --no-resume starts over.
    d = finetune(str(tiny_model_dir), task["train"], output_dir=interrupted, **{**settings, "max_steps": 1, "resume": False})
    assert d.resumed_from_step is None and d.steps == 1
    assert [Path(c).name for c in d.checkpoints] == ["checkpoint-1"]


def test_the_base_model_is_loaded_from_the_nested_reranker_config(tiny_model_dir, task, tmp_path):
    """Reranker fields given by name (``family``, limits, device) are the RerankerConfig inference uses; saved with the run."""
    out = tmp_path / "nested"
    report = finetune(str(tiny_model_dir), task["train"], output_dir=out, max_steps=1, batch_size=4, lora_r=4,
                      eval_split=0.0, progress=False, family="qwen2_5_vl", max_doc_tokens=64, device="cpu", dtype="float32")
    assert report.steps == 1
    saved = json.loads((out / "finetune_config.json").read_text())["reranker"]
    assert (saved["family"], saved["max_doc_tokens"], saved["device"], saved["min_pixels"]) == ("qwen2_5_vl", 64, "cpu", None)
    with pytest.raises(ValueError, match="known families are cross_encoder, jina_m0, mono_qwen2_vl, qwen2_5_vl, qwen3_reranker, qwen3_vl"):
        finetune(str(tiny_model_dir), task["train"], output_dir=out, family="nope", progress=False)


def test_full_vocabulary_loss_trains(tiny_model_dir, task, tmp_path):
    out = tmp_path / "vocab"
    report = finetune(str(tiny_model_dir), task["train"], output_dir=out, max_steps=3, lr=1e-2, batch_size=4, lora_r=4,
                      loss="vocab", eval_split=0.0, progress=False)
    assert report.steps == 3 and math.isfinite(report.last_train_loss)
    assert any(w.abs().max() > 0 for k, w in _adapter_weights(out).items() if "lora_B" in k)
    with pytest.raises(ValueError, match="loss"):
        finetune(str(tiny_model_dir), task["train"], output_dir=out, loss="hinge", progress=False)


# ----------------------------------------------------------------------------- data


def test_bad_records_are_reported_with_line_numbers(tmp_path, image_files, caplog):
    shutil.copy(image_files[0], tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    lines = [
        json.dumps({"query": "cat", "document": {"text": "a cat", "image": "good.png"}, "label": 1}),  # 1 ok
        '{"query": "cat", "document": "x", "label": 1',  # 2 invalid JSON
        "",  # 3 blank: not a record
        json.dumps({"query": "cat", "document": "a cat"}),  # 4 no label
        json.dumps({"query": "cat", "document": {"image": "missing.png"}, "label": 0}),  # 5 missing image
        json.dumps({"query": "dog", "positives": ["a dog"], "negatives": [{"image": "broken.png"}, "a cup"]}),  # 6 one bad doc
        json.dumps(["query", "document"]),  # 7 not an object
        json.dumps({"query": "cat", "document": "a cat", "label": "yes"}),  # 8 label not a number
        json.dumps({"query": "cat", "document": "a", "label": 1, "positives": ["b"]}),  # 9 both shapes
        json.dumps({"query": "", "document": "a", "label": 1}),  # 10 empty query
        json.dumps({"query": "cat", "document": "the cat sat", "label": 0}),  # 11 ok, same query as line 1
    ]
    path = _write_jsonl(tmp_path / "data.jsonl", lines)
    with caplog.at_level(logging.WARNING, logger="lychee_rerank"):
        data = load_dataset(path)
    by_line = {b.line: b.reason for b in data.bad_records}
    assert sorted(by_line) == [2, 4, 5, 6, 7, 8, 9, 10]
    assert "invalid JSON" in by_line[2]
    assert "missing field 'label'" in by_line[4]
    assert "not found" in by_line[5]
    assert by_line[6].startswith("negatives[0]:")
    assert "JSON object" in by_line[7]
    assert "label" in by_line[8]
    assert "either" in by_line[9]
    assert "empty" in by_line[10]
    for line in by_line:
        assert f"data.jsonl:{line}: skipped" in caplog.text
    # Lines 1 and 11 share a query: one group; the group of line 6 keeps its readable documents.
    assert [(g.query, len(g.positives), len(g.negatives), g.lines) for g in data.groups] == [
        ("cat", 1, 1, [1, 11]),
        ("dog", 1, 1, [6]),
    ]


def test_hard_negative_units_pair_each_positive_with_its_own_negatives():
    data = load_dataset(
        [
            {"query": "cat", "positives": ["cat 1", "cat 2"], "negatives": ["n1", "n2", "n3"]},
            {"query": "dog", "positives": ["dog 1"], "negatives": ["m1"]},
            {"query": "fox", "document": "fox", "label": True},
        ]
    )
    units = epoch_units(data.groups, epoch=0, seed=0, hard_negatives=2)
    shapes = sorted((data.groups[u[0].group].query, [ex.label for ex in u]) for u in units)
    assert shapes == [("cat", [True, False, False]), ("cat", [True, False, False]), ("dog", [True, False]),
                      ("fox", [True])]
    cat_negs = [ex.document for u in units if data.groups[u[0].group].query == "cat" for ex in u[1:]]
    assert set(cat_negs) == {"n1", "n2", "n3"}  # taken in turn: every negative is used
    assert all(len({ex.group for ex in u}) == 1 for u in units)
    assert epoch_units(data.groups, 0, 0, 2) == units  # a function of (seed, epoch): resumable
    assert epoch_units(data.groups, 1, 0, 2) != units


def test_ranking_metrics_by_hand():
    # query 0: positive second (RR 1/2); query 1: positive first (1); query 2: no positive (skipped);
    # query 3: positive tied with a negative -> pessimistic rank 2.
    scores = [0.9, 0.7, 0.2, 0.8, 0.1, 0.6, 0.5, 0.5]
    labels = [False, True, False, True, False, False, True, False]
    queries = [0, 0, 0, 1, 1, 2, 3, 3]
    accuracy, mrr, n = ranking_metrics(scores, labels, queries)
    assert n == 3 and mrr == pytest.approx((0.5 + 1 + 0.5) / 3)
    # >= 0.5 counts as "yes": right on pairs 2, 3, 4, 5 and 7 (5 of 8)
    assert accuracy == pytest.approx(5 / 8)


# ----------------------------------------------------------------------------- LoRA placement and images


def test_lora_targets_exclude_the_vision_tower_by_default(reranker):
    model = reranker.backend.model
    language = lora_targets(model, train_vision=False)
    assert len(language) == 2 * 7 and not any("visual" in n for n in language)
    assert {n.rsplit(".", 1)[-1] for n in language} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    everything = lora_targets(model, train_vision=True)
    vision = [n for n in everything if "visual" in n]
    # The vision MLP reuses gate/up/down_proj names: excluded by identity above, included here.
    assert any(n.endswith("mlp.gate_proj") for n in vision) and any(n.endswith("attn.qkv") for n in vision)
    assert set(everything) == set(language) | set(vision)


def _image_task(folder: Path, image_files: list[Path]) -> Path:
    for i, path in enumerate(image_files):
        shutil.copy(path, folder / f"p{i}.png")
    records = [
        {"query": "a cat", "positives": [{"image": "p0.png"}, {"text": "cat", "image": "p1.png"}],
         "negatives": [{"image": "p2.png"}, "a red car"]},
        {"query": {"text": "like this", "image": "p3.png"}, "document": {"image": "p0.png"}, "label": 0},
    ]
    return _write_jsonl(folder / "images.jsonl", records)


@pytest.mark.parametrize("train_vision", [False, True])
def test_image_pairs_train_and_reload(tiny_model_dir, image_files, tmp_path, train_vision):
    data = _image_task(tmp_path, image_files)
    out = tmp_path / "adapter"
    rr = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32")
    report = finetune(rr, data, output_dir=out, max_steps=2, lr=1e-2, batch_size=3, lora_r=4, eval_split=0.0,
                      train_vision=train_vision, progress=False)
    assert report.steps == 2 and not report.bad_records
    weights = _adapter_weights(out)
    vision_b = [w for k, w in weights.items() if "visual" in k and "lora_B" in k]
    if train_vision:
        # lora_B starts at zero: non-zero means gradients flowed through the vision tower.
        assert vision_b and any(w.abs().max() > 0 for w in vision_b)
    else:
        assert not vision_b
        assert rr.backend.stats["vision_cache_hits"] > 0  # frozen tower: features computed once, reused
    docs = [image_files[0], {"text": "cat", "image": image_files[1]}, "a red car"]
    reloaded = LycheeReranker.from_pretrained(tiny_model_dir, device="cpu", dtype="float32", adapter=out)
    assert max(abs(a - b) for a, b in zip(_scores(reloaded, "a cat", docs), _scores(rr, "a cat", docs))) <= 1e-5
