"""``lychee batch`` on a jina-reranker-m0 checkpoint: Ray Data actors, --local, and the command, each
pair scored once with the library's score (texts, images, an image query); a corrupt image candidate
fails alone. As tests/jobs/test_qwen3_vl.py does for Qwen3-VL-Reranker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lychee_rerank.config import RerankerConfig
from lychee_rerank.jobs.batch import read_output, run_batch

from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
    library_scores,
    spread,
)
from ..ray_support import ray_local  # noqa: F401 - the shared session fixture

TOL = 1e-5


@pytest.fixture(scope="module")
def job(tmp_path_factory, jina_m0_pngs: list[Path]) -> dict[str, Any]:
    """A JSONL of grouped and flat records with relative image paths, an image query, a corrupt image
    candidate; and per query_id what the library is asked (images resolved to the input's folder)."""
    folder = tmp_path_factory.mktemp("jm0-batch")
    names = []
    for p in jina_m0_pngs:
        (folder / p.name).write_bytes(p.read_bytes())
        names.append(p.name)
    (folder / "broken.png").write_bytes(jina_m0_pngs[0].read_bytes()[:60])
    records = [
        {"query_id": "texts", "query": "a red circle", "candidates": TEXTS},
        {"query_id": 7, "query": "which picture has a circle",
         "candidates": [{"image": names[0]}, {"image": names[1]}, "a circle", {"image": names[2]}]},
        {"query_id": "image-query", "query": {"image": names[2]},
         "candidates": [{"image": names[0]}, "a small picture", {"image": "broken.png"}]},
    ]
    records += [{"query_id": "flat", "query": "green triangles", "candidate": c} for c in (TEXTS[1], {"image": names[1]})]
    path = folder / "input.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    def resolve(obj: Any) -> Any:
        return folder / obj["image"] if isinstance(obj, dict) and "image" in obj else obj

    calls = {
        "texts": ("a red circle", TEXTS),
        7: ("which picture has a circle", [resolve(c) for c in records[1]["candidates"]]),
        "image-query": (resolve(records[2]["query"]), [resolve(c) for c in records[2]["candidates"][:2]]),
        "flat": ("green triangles", [TEXTS[1], resolve({"image": names[1]})]),
    }
    return {"path": path, "calls": calls}


@pytest.fixture(scope="module")
def truth(job, jina_m0_reranker) -> dict[Any, dict[int, float]]:
    out = {qid: library_scores(jina_m0_reranker, query, docs) for qid, (query, docs) in job["calls"].items()}
    assert spread(out[7]) > 1e-3  # the pictures score apart
    return out


def check(records: list[dict], truth: dict[Any, dict[int, float]]) -> None:
    by_id = {json.dumps(r["query_id"]): r for r in records}
    assert sorted(by_id) == sorted(json.dumps(q) for q in truth) and len(records) == len(truth)
    for qid, scores in truth.items():
        results = {x["index"]: x for x in by_id[json.dumps(qid)]["results"]}
        if qid == "image-query":  # the corrupt candidate (index 2) fails alone
            broken = results.pop(2)
            assert broken["error"] and broken["score"] == 0
        assert {i: x["score"] for i, x in results.items()} == pytest.approx(scores, abs=TOL), qid
        assert not any("error" in x for x in results.values())


def test_ray_actors_and_local_give_the_library_scores(ray_local, job, truth, jina_m0_dir, jina_m0_reranker, tmp_path):
    spec = RerankerConfig(backend="lychee", model=str(jina_m0_dir), device="cpu", dtype="float32")  # family from config.json
    summary = run_batch(job["path"], tmp_path / "ray.jsonl", spec, local=False, concurrency=2, num_cpus_per_actor=0.5,
                        queries_per_batch=2)
    check(read_output(tmp_path / "ray.jsonl"), truth)
    assert (summary.queries, summary.pairs, summary.pair_errors, summary.query_errors) == (4, 13, 1, 0)

    local = run_batch(job["path"], tmp_path / "local.jsonl", spec, local=True, reranker=jina_m0_reranker)
    check(read_output(tmp_path / "local.jsonl"), truth)
    assert local.pairs == summary.pairs


def test_the_command_with_the_family_flag(job, truth, jina_m0_dir, tmp_path):
    from lychee_rerank.cli import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["batch", str(job["path"]), str(out), "--local", "--backend", "lychee", "--model",
                                      str(jina_m0_dir), "--family", FAMILY, "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    check(read_output(out), truth)
    assert "13 pairs" in result.output
