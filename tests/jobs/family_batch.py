"""The ``lychee batch`` checks every family's batch test runs (tests/jobs/test_<family>.py): the
library's scores as the truth, the output read against them (one pair failing alone with its
reason, an image query refused where the family refuses one), Ray Data actors and ``--local``, and
the command with ``--family``. Each family module gives its own job, truth and expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pytest
from PIL import Image
from typer.testing import CliRunner

from lychee_rerank.config import RerankerConfig
from lychee_rerank.jobs.batch import read_output, run_batch

from ..qwen3_vl_support import library_scores, spread

TOL = 1e-5
#: The text families' documents (English and Chinese).
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "一只黑猫趴在窗台上，旁边有一杯咖啡。", "stock market report"]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def text_job(folder: Path) -> dict[str, Any]:
    """The text families' job: a JSONL of grouped and flat records, an image candidate (a relative
    path) among texts, an image query; and per query_id what the library is asked (the image
    candidate, index 1 of query 7, left out)."""
    Image.new("RGB", (64, 48), (200, 30, 30)).save(folder / "picture.png")
    records = [
        {"query_id": "en", "query": "What is the capital of China?", "candidates": TEXTS},
        {"query_id": 7, "query": "中国的首都是哪里？", "candidates": [TEXTS[2], {"image": "picture.png"}, TEXTS[0], TEXTS[3]]},
        {"query_id": "image-query", "query": {"text": "like this", "image": "picture.png"}, "candidates": TEXTS[:2]},
    ]
    records += [{"query_id": "flat", "query": "万有引力是什么", "candidate": c} for c in (TEXTS[1], TEXTS[3])]
    calls = {
        "en": ("What is the capital of China?", TEXTS),
        7: ("中国的首都是哪里？", [TEXTS[2], TEXTS[0], TEXTS[3]]),  # candidates 0, 2, 3
        "flat": ("万有引力是什么", [TEXTS[1], TEXTS[3]]),
    }
    return {"path": write_jsonl(folder / "input.jsonl", records), "calls": calls}


@pytest.fixture(scope="module", name="job")
def text_job_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``job`` of the text families' modules (import it): ``text_job`` in a fresh folder."""
    return text_job(tmp_path_factory.mktemp("text-batch"))


def library_truth(reranker: Any, calls: dict, spread_of: Any, min_spread: float,
                  asked_of_7: Optional[tuple[int, ...]] = None) -> dict[Any, dict[int, float]]:
    """{query_id: {candidate index: the library's score}}; ``asked_of_7``: the record indices of the
    candidates query 7's library call was given (the one that fails left out). The scores of
    ``spread_of`` must differ by more than ``min_spread``."""
    out = {qid: library_scores(reranker, query, docs) for qid, (query, docs) in calls.items()}
    if asked_of_7 is not None:
        out[7] = {i: out[7][k] for k, i in enumerate(asked_of_7)}  # back to the record's candidate indices
    assert spread(out[spread_of]) > min_spread
    return out


def check_output(records: list[dict], truth: dict[Any, dict[int, float]], *, failed: tuple[Any, int, str],
                 refused: Optional[str] = None) -> None:
    """Every query once, each pair with the library's score; the candidate ``failed`` = (query_id,
    index, reason) fails alone with its reason and score 0; with ``refused``, the query
    "image-query" is that query's error (no results)."""
    ids = [*truth, "image-query"] if refused else list(truth)
    by_id = {json.dumps(r["query_id"]): r for r in records}
    assert sorted(by_id) == sorted(json.dumps(q) for q in ids) and len(records) == len(ids)
    if refused:
        query = by_id[json.dumps("image-query")]
        assert refused in query["error"] and "results" not in query, query
    failed_qid, failed_index, reason = failed
    for qid, scores in truth.items():
        results = {x["index"]: x for x in by_id[json.dumps(qid)]["results"]}
        if qid == failed_qid:
            bad = results.pop(failed_index)
            assert bad["error"] and reason in bad["error"] and bad["score"] == 0, bad
        assert {i: x["score"] for i, x in results.items()} == pytest.approx(scores, abs=TOL), qid
        assert not any("error" in x for x in results.values())


def check_ray_and_local(job: dict, truth: dict, model_dir: Path, reranker: Any, tmp_path: Path, *,
                        counts: tuple[int, int, int, int], same_errors_locally: bool, **expect: Any) -> None:
    """Ray Data actors (two, two queries a batch) and ``--local`` give the library's scores;
    ``counts``: (queries, pairs, pair errors, query errors) of the Ray run."""
    spec = RerankerConfig(backend="lychee", model=str(model_dir), device="cpu", dtype="float32")  # family from config.json
    summary = run_batch(job["path"], tmp_path / "ray.jsonl", spec, local=False, concurrency=2, num_cpus_per_actor=0.5,
                        queries_per_batch=2)
    check_output(read_output(tmp_path / "ray.jsonl"), truth, **expect)
    assert (summary.queries, summary.pairs, summary.pair_errors, summary.query_errors) == counts

    local = run_batch(job["path"], tmp_path / "local.jsonl", spec, local=True, reranker=reranker)
    check_output(read_output(tmp_path / "local.jsonl"), truth, **expect)
    assert local.pairs == summary.pairs
    if same_errors_locally:
        assert (local.pair_errors, local.query_errors) == counts[2:]


def check_command(job: dict, truth: dict, model_dir: Path, family: str, tmp_path: Path, *, pairs: int,
                  **expect: Any) -> None:
    """``lychee batch --local --family`` writes the library's scores and counts the pairs."""
    from lychee_rerank.cli import app

    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(app, ["batch", str(job["path"]), str(out), "--local", "--backend", "lychee", "--model",
                                      str(model_dir), "--family", family, "--device", "cpu", "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    check_output(read_output(out), truth, **expect)
    assert f"{pairs} pairs" in result.output


def picture_job(folder: Path, pngs: list[Path], texts: list[str], *, second: dict, image_query: dict, failing: dict,
                bare_images: bool) -> dict[str, Any]:
    """The picture families' job: a JSONL of grouped and flat records with relative image paths
    (``pngs`` copied into ``folder`` under their names), ``second`` as query 7's second candidate, ``image_query``, and ``failing`` as that query's last candidate
    (index 2, left out of the library call); and per query_id what the library is asked: images
    resolved to the input's folder, as paths (``bare_images``) or as their record with the path."""

    def resolve(obj: Any) -> Any:
        if isinstance(obj, dict) and "image" in obj:
            return folder / obj["image"] if bare_images else {**obj, "image": folder / obj["image"]}
        return obj

    names = [p.name for p in pngs]
    for p in pngs:
        (folder / p.name).write_bytes(p.read_bytes())
    records = [
        {"query_id": "texts", "query": "a red circle", "candidates": texts},
        {"query_id": 7, "query": "which picture has a circle",
         "candidates": [{"image": names[0]}, second, "a circle", {"image": names[2]}]},
        {"query_id": "image-query", "query": image_query, "candidates": [{"image": names[0]}, "a small picture", failing]},
    ]
    records += [{"query_id": "flat", "query": "green triangles", "candidate": c} for c in (texts[1], {"image": names[1]})]
    calls = {
        "texts": ("a red circle", texts),
        7: ("which picture has a circle", [resolve(c) for c in records[1]["candidates"]]),
        "image-query": (resolve(records[2]["query"]), [resolve(c) for c in records[2]["candidates"][:2]]),
        "flat": ("green triangles", [texts[1], resolve({"image": names[1]})]),
    }
    return {"path": write_jsonl(folder / "input.jsonl", records), "calls": calls}
