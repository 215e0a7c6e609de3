"""``lychee batch`` on a real local Ray instance and with --local: every pair once, library scores,
errors written, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lychee_rerank.config import RerankerConfig
from lychee_rerank.jobs.batch import read_output, run_batch

from ..ray_support import ray_local  # noqa: F401 - the shared session fixture

TOL = 1e-5


# --------------------------------------------------------------------------- data
def make_input(
    folder: Path, image_files: list[Path], queries: int = 30, per_query: int = 10, with_image: bool = True
) -> tuple[Path, dict[Any, dict]]:
    """A JSONL of grouped and flat records (a few hundred pairs), relative image paths and bad records.

    Returns the file and, per query_id, what the library should be asked (query, resolved docs).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for img in image_files[:2]:
        (folder / img.name).write_bytes(img.read_bytes())
    lines: list[dict[str, Any]] = []
    expected: dict[Any, dict] = {}
    for q in range(queries):
        qid: Any = q if q % 5 == 0 else f"q{q}"  # ints and strings both stay as given
        query = f"topic {q % 7} question {q}"
        docs: list[Any] = [f"passage {q}-{i} on topic {(q + i) % 7}" for i in range(per_query)]
        if q == 3:
            if with_image:
                docs[0] = {"text": "a picture", "image": image_files[0].name}  # relative to the input file
            docs[1] = {"image": "no-such-file.png"}  # a bad candidate: scored as an error
        if q % 4 == 1:  # flat pairs for some queries
            lines.extend({"query_id": qid, "query": query, "candidate": d} for d in docs)
        else:
            lines.append({"query_id": qid, "query": query, "candidates": docs})
        resolved = [
            {**d, "image": str(folder / d["image"])} if isinstance(d, dict) else d for d in docs
        ]
        expected[qid] = {"query": query, "docs": resolved}
    lines.append({"query_id": "empty", "query": "", "candidates": ["x"]})  # unusable query
    path = folder / "input.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for record in lines:
            fh.write(json.dumps(record) + "\n")
        fh.write("{not json\n")
    return path, expected


def library_scores(reranker: Any, expected: dict[Any, dict]) -> dict[Any, dict[int, tuple[float, bool]]]:
    """query_id -> {index: (score, failed)} from ``LycheeReranker.rerank``: the yardstick."""
    out = {}
    for qid, call in expected.items():
        out[qid] = {r.index: (r.score, r.error is not None) for r in reranker.rerank(call["query"], call["docs"])}
    return out


def check_output(records: list[dict], truth: dict[Any, dict[int, tuple[float, bool]]]) -> None:
    """Every query once, every pair once, the library's scores, and the bad records as errors."""
    ids = [r["query_id"] for r in records]
    assert len(ids) == len(set(json.dumps(i) for i in ids)), "a query was written twice"
    by_id = {json.dumps(r["query_id"]): r for r in records}
    for qid, scores in truth.items():
        record = by_id[json.dumps(qid)]
        got = {r["index"]: r for r in record["results"]}
        assert sorted(got) == sorted(scores), f"query {qid}: pairs lost or duplicated"
        assert len(record["results"]) == len(scores)
        for index, (score, failed) in scores.items():
            assert abs(got[index]["score"] - score) <= TOL, (qid, index, got[index]["score"], score)
            assert ("error" in got[index]) == failed
        assert sorted(r["rank"] for r in record["results"]) == list(range(1, len(scores) + 1))
    assert "error" in by_id[json.dumps("empty")]
    # The line that is not JSON: no usable id, so null and where it was (never a name a user could use).
    assert any(r["query_id"] is None and r["where"].startswith("line ") and "error" in r for r in records)
    assert len(records) == len(truth) + 2
    assert any("error" in r for r in by_id[json.dumps("q3")]["results"])


# --------------------------------------------------------------------------- tests
def test_ray_matches_library_and_local_tiny(ray_local, tmp_path, tiny_model_dir, reranker, image_files) -> None:
    """Tiny checkpoint, 2 actors: 300 pairs, each once, library scores; --local gives the same."""
    path, expected = make_input(tmp_path / "data", image_files)
    truth = library_scores(reranker, expected)
    spec = RerankerConfig(backend="lychee", model=str(tiny_model_dir), device="cpu", dtype="float32")

    summary = run_batch(path, tmp_path / "ray.jsonl", spec, local=False, concurrency=2, num_cpus_per_actor=0.5,
                        queries_per_batch=4)
    ray_records = read_output(tmp_path / "ray.jsonl")
    check_output(ray_records, truth)
    assert summary.pairs == sum(len(v) for v in truth.values()) and summary.pair_errors == 1
    assert summary.query_errors == 2

    local = run_batch(path, tmp_path / "local.jsonl", spec, local=True, reranker=reranker)
    local_records = read_output(tmp_path / "local.jsonl")
    check_output(local_records, truth)
    assert local.pairs == summary.pairs
    ray_scores = {json.dumps(r["query_id"]): r.get("results") for r in ray_records}
    for r in local_records:
        other = ray_scores[json.dumps(r["query_id"])]
        if other is not None:
            assert {x["index"]: x["score"] for x in r["results"]} == pytest.approx({x["index"]: x["score"] for x in other}, abs=TOL)


def test_cli_ray_lite_backend(ray_local, tmp_path, image_files) -> None:
    """The `lychee batch` command on Ray with the lite backend (2 actors) and with --local."""
    from lychee_rerank import LycheeReranker
    from lychee_rerank.cli import app

    path, expected = make_input(tmp_path / "data", image_files, queries=20, per_query=10, with_image=False)
    truth = library_scores(LycheeReranker.load("lite"), expected)
    runner = CliRunner()
    for name, extra in (("ray.jsonl", ["--concurrency", "2", "--num-cpus-per-actor", "0.5"]), ("local.jsonl", ["--local"])):
        result = runner.invoke(app, ["batch", str(path), str(tmp_path / name), "--backend", "lite", *extra])
        assert result.exit_code == 0, result.output
        check_output(read_output(tmp_path / name), truth)
        assert "pairs/s" in result.output and "200 pairs" in result.output


def test_killed_run_resumes_without_loss_or_duplicates(ray_local, tmp_path, tiny_model_dir, reranker, image_files) -> None:
    """Kill the CLI mid-run, leave a half-written line, rerun (on Ray): complete, no duplicates."""
    path, expected = make_input(tmp_path / "data", image_files, queries=600, per_query=2)
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    command = [sys.executable, "-m", "lychee_rerank.cli", "batch", str(path), str(out), "--local", "--backend", "lychee",
               "--model", str(tiny_model_dir), "--device", "cpu", "--dtype", "float32", "--queries-per-batch", "1"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 20:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = out.read_bytes().count(b"\n")
    assert 20 <= written < len(expected), f"the run was not killed midway ({written} lines)"
    with out.open("a", encoding="utf-8") as fh:  # a crash in the middle of a line
        fh.write('{"query_id": "q599", "results": [{"index": 0, "sco')

    summary = run_batch(path, out, RerankerConfig(backend="lychee", model=str(tiny_model_dir), device="cpu", dtype="float32"),
                        concurrency=2, num_cpus_per_actor=0.5, queries_per_batch=32)
    assert summary.skipped == written and summary.queries == len(expected) + 2 - written
    check_output(read_output(out), library_scores(reranker, expected))

    again = run_batch(path, out, local=True, reranker=reranker)  # nothing left to do
    assert again.queries == 0 and again.skipped == len(expected) + 2


def test_parquet_in_and_out(tmp_path, reranker, image_files) -> None:
    """Parquet input and output (--local path), resumable through the sidecar."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"query_id": f"p{q}", "query": f"topic {q}", "candidate": f"text {q}-{i}"} for q in range(6) for i in range(4)]
    src = tmp_path / "pairs.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    out = tmp_path / "scores.parquet"
    first = run_batch(src, out, local=True, reranker=reranker)
    assert first.pairs == 24 and not (tmp_path / "scores.parquet.partial.jsonl").exists()
    records = read_output(out)
    assert sorted(r["query_id"] for r in records) == [f"p{q}" for q in range(6)]
    for r in records:
        q = int(r["query_id"][1:])
        lib = {x.index: x.score for x in reranker.rerank(f"topic {q}", [f"text {q}-{i}" for i in range(4)])}
        assert {x["index"]: x["score"] for x in r["results"]} == pytest.approx(lib, abs=TOL)
    assert run_batch(src, out, local=True, reranker=reranker).skipped == 6
    assert len(read_output(out)) == 6


def test_invalid_utf8_fails_its_record_only(tmp_path, reranker) -> None:
    """One invalid UTF-8 byte (issue 13, item 10): that record's error line, every other record written.
    Its query_id is readable, so it is kept (issue 20, item 16)."""
    good = [{"query_id": f"g{i}", "query": f"topic {i} 猫", "candidates": [f"text {i} 一只黑猫", "other"]} for i in range(3)]
    raw = [json.dumps(r, ensure_ascii=False).encode("utf-8") for r in good]
    bad = b'{"query_id": "bad", "query": "caf\xe9", "candidates": ["x"]}'  # latin-1 e-acute: invalid UTF-8
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b"\n".join([raw[0], bad, raw[1], raw[2]]) + b"\n")
    out = tmp_path / "out.jsonl"
    summary = run_batch(src, out, local=True, reranker=reranker)
    records = {r["query_id"]: r for r in read_output(out)}
    assert sorted(records) == ["bad", "g0", "g1", "g2"]
    assert records["bad"]["error"] == "line 2: not valid UTF-8 (byte 0xe9 at column 34)"
    assert summary.query_errors == 1
    for i in range(3):
        lib = {x.index: x.score for x in reranker.rerank(f"topic {i} 猫", [f"text {i} 一只黑猫", "other"])}
        assert {x["index"]: x["score"] for x in records[f"g{i}"]["results"]} == pytest.approx(lib, abs=TOL)
