"""``lychee batch`` on a sequence-classification cross-encoder (text only): Ray Data actors, --local,
and the command, each pair scored once with the library's score (English and Chinese texts,
grouped and flat records); an image candidate fails alone ("reads text only") while the texts are
scored, and an image query is that query's error. As tests/jobs/test_qwen3_reranker.py does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from lychee_rerank.config import RerankerConfig
from lychee_rerank.jobs.batch import read_output, run_batch

from ..cross_encoder_support import FAMILY, TEXT_ONLY
from ..qwen3_vl_support import library_scores, spread
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture

TOL = 1e-5
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("ce-batch")
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "picture.png")
    records = [
        {"query_id": "en", "query": "What is the capital of China?", "candidates": TEXTS},
        {"query_id": 7, "query": "中国的首都是哪里？", "candidates": [TEXTS[2], {"image": "picture.png"}, TEXTS[0], TEXTS[3]]},
        {"query_id": "image-query", "query": {"text": "like this", "image": "picture.png"}, "candidates": TEXTS[:2]},
    ]
    records += [{"query_id": "flat", "query": "万有引力是什么", "candidate": c} for c in (TEXTS[1], TEXTS[3])]
    path = folder / "input.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    calls = {
        "en": ("What is the capital of China?", TEXTS),
        7: ("中国的首都是哪里？", [TEXTS[2], TEXTS[0], TEXTS[3]]),  # candidates 0, 2, 3
        "flat": ("万有引力是什么", [TEXTS[1], TEXTS[3]]),
    }
    return {"path": path, "calls": calls}


@pytest.fixture(scope="module")
def truth(job, cross_encoder_reranker) -> dict[Any, dict[int, float]]:
    out = {qid: library_scores(cross_encoder_reranker, query, docs) for qid, (query, docs) in job["calls"].items()}
    out[7] = {i: out[7][k] for k, i in enumerate((0, 2, 3))}  # back to the record's candidate indices
    assert spread(out["en"]) > 1e-2
    return out


def check(records: list[dict], truth: dict[Any, dict[int, float]]) -> None:
    by_id = {json.dumps(r["query_id"]): r for r in records}
    assert sorted(by_id) == sorted(json.dumps(q) for q in [*truth, "image-query"]) and len(records) == len(truth) + 1
    refused = by_id[json.dumps("image-query")]
    assert TEXT_ONLY in refused["error"] and "results" not in refused, refused
    for qid, scores in truth.items():
        results = {x["index"]: x for x in by_id[json.dumps(qid)]["results"]}
        if qid == 7:
            image = results.pop(1)
            assert TEXT_ONLY in image["error"] and image["score"] == 0, image
        assert {i: x["score"] for i, x in results.items()} == pytest.approx(scores, abs=TOL), qid
        assert not any("error" in x for x in results.values())


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, cross_encoder_dir, cross_encoder_reranker, tmp_path):
    spec = RerankerConfig(backend="lychee", model=str(cross_encoder_dir), device="cpu", dtype="float32")
    summary = run_batch(job["path"], tmp_path / "ray.jsonl", spec, local=False, concurrency=2, num_cpus_per_actor=0.5,
                        queries_per_batch=2)
    check(read_output(tmp_path / "ray.jsonl"), truth)
    assert (summary.queries, summary.pairs, summary.pair_errors, summary.query_errors) == (4, 11, 1, 1)

    local = run_batch(job["path"], tmp_path / "local.jsonl", spec, local=True, reranker=cross_encoder_reranker)
    check(read_output(tmp_path / "local.jsonl"), truth)
    assert (local.pairs, local.pair_errors, local.query_errors) == (summary.pairs, 1, 1)


def test_the_command_with_the_family_flag(job, truth, cross_encoder_dir, tmp_path):
    from lychee_rerank.cli import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["batch", str(job["path"]), str(out), "--local", "--backend", "lychee", "--model",
                                      str(cross_encoder_dir), "--family", FAMILY, "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    check(read_output(out), truth)
    assert "11 pairs" in result.output
