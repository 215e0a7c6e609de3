"""``lychee batch`` on a MonoQwen2-VL adapter directory: Ray Data actors, --local, and the command,
each pair scored once with the library's score (English and Chinese queries, grouped and flat
records, image candidates as relative paths); a text candidate fails alone ("reads image documents
only") while the images are scored, and an image query is that query's error. As
tests/jobs/test_qwen3_reranker.py does for the text family."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
from typer.testing import CliRunner

from lychee_rerank.config import RerankerConfig
from lychee_rerank.jobs.batch import read_output, run_batch

from ..qwen2_vl_support import FAMILY
from ..qwen3_vl_support import library_scores, spread
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture

TOL = 1e-5
IMAGE_ONLY = "reads image documents only"
TEXT_QUERIES = "reads text queries only"


@pytest.fixture(scope="module")
def job(tmp_path_factory, mono_qwen2_vl_images) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("mono-batch")
    names = []
    for p in mono_qwen2_vl_images[:5]:
        shutil.copy(p, folder / p.name)
        names.append(p.name)
    img = [{"image": n} for n in names]
    records = [
        {"query_id": "en", "query": "a cat sitting on a window sill", "candidates": img[:4]},
        {"query_id": 7, "query": "一只黑猫趴在窗台上", "candidates": [img[2], "a text candidate", img[0], img[4]]},
        {"query_id": "image-query", "query": {"text": "like this", "image": names[0]}, "candidates": img[:2]},
    ]
    records += [{"query_id": "flat", "query": "quarterly revenue chart", "candidate": c} for c in (img[1], img[3])]
    path = folder / "input.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    files = [folder / n for n in names]
    calls = {
        "en": ("a cat sitting on a window sill", files[:4]),
        7: ("一只黑猫趴在窗台上", [files[2], files[0], files[4]]),  # candidates 0, 2, 3
        "flat": ("quarterly revenue chart", [files[1], files[3]]),
    }
    return {"path": path, "calls": calls}


@pytest.fixture(scope="module")
def truth(job, mono_qwen2_vl_reranker) -> dict[Any, dict[int, float]]:
    out = {qid: library_scores(mono_qwen2_vl_reranker, query, docs) for qid, (query, docs) in job["calls"].items()}
    out[7] = {i: out[7][k] for k, i in enumerate((0, 2, 3))}
    assert spread(out["en"]) > 1e-3
    return out


def check(records: list[dict], truth: dict[Any, dict[int, float]]) -> None:
    by_id = {json.dumps(r["query_id"]): r for r in records}
    assert sorted(by_id) == sorted(json.dumps(q) for q in [*truth, "image-query"]) and len(records) == len(truth) + 1
    refused = by_id[json.dumps("image-query")]
    assert TEXT_QUERIES in refused["error"] and "results" not in refused, refused
    for qid, scores in truth.items():
        results = {x["index"]: x for x in by_id[json.dumps(qid)]["results"]}
        if qid == 7:  # the text candidate (index 1) fails alone, with its reason
            text = results.pop(1)
            assert IMAGE_ONLY in text["error"] and text["score"] == 0, text
        assert {i: x["score"] for i, x in results.items()} == pytest.approx(scores, abs=TOL), qid
        assert not any("error" in x for x in results.values())


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, mono_qwen2_vl_dir, mono_qwen2_vl_reranker, tmp_path):
    spec = RerankerConfig(backend="lychee", model=str(mono_qwen2_vl_dir), device="cpu", dtype="float32")
    summary = run_batch(job["path"], tmp_path / "ray.jsonl", spec, local=False, concurrency=2, num_cpus_per_actor=0.5,
                        queries_per_batch=2)
    check(read_output(tmp_path / "ray.jsonl"), truth)
    assert (summary.queries, summary.pairs, summary.pair_errors, summary.query_errors) == (4, 10, 1, 1)

    local = run_batch(job["path"], tmp_path / "local.jsonl", spec, local=True, reranker=mono_qwen2_vl_reranker)
    check(read_output(tmp_path / "local.jsonl"), truth)
    assert (local.pairs, local.pair_errors, local.query_errors) == (summary.pairs, 1, 1)


def test_the_command_with_the_family_flag(job, truth, mono_qwen2_vl_dir, tmp_path):
    from lychee_rerank.cli import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["batch", str(job["path"]), str(out), "--local", "--backend", "lychee", "--model",
                                      str(mono_qwen2_vl_dir), "--family", FAMILY, "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    check(read_output(out), truth)
    assert "10 pairs" in result.output
