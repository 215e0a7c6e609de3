"""``lychee batch`` against careless and hostile inputs (issue 20, items 14-16).

Streams and devices as OUTPUT/INPUT run the real ``lychee`` command in a watched subprocess
(bounded in time and memory: the old code hung or grew without end); ids and memory use the
library path that command runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lychee_rerank.jobs.batch import read_output, run_batch

from ..process_watch import LYCHEE, REPO, run_watched

TOL = 1e-5
MAX_LINE_BYTES = 64 * 2**20  # lychee_rerank.lines.MAX_LINE_BYTES


def strict_json(line: str) -> Any:
    """JSON as the RFC has it: NaN/Infinity are not JSON."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture()
def two_queries(tmp_path: Path) -> Path:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"query_id": "a", "query": "a cat", "candidates": ["a black cat", "a red car"]}) + "\n"
        + json.dumps({"query_id": "b", "query": "coffee", "candidates": ["coffee on a table"]}) + "\n",
        encoding="utf-8",
    )
    return src


# --------------------------------------------------------------------------- item 15
def test_output_to_a_pipe_streams_without_resume(tiny_model_dir, two_queries, reranker):
    """OUT=/dev/stdout into a pipe: the old resume check read the pipe and hung forever."""
    rc, out, err = run_watched(
        [LYCHEE, "batch", "--local", "--model", str(tiny_model_dir), str(two_queries), "/dev/stdout"],
        timeout=240, max_rss_mb=3000,
    )
    assert rc == 0, err
    records = {r["query_id"]: r for r in map(strict_json, out.splitlines())}
    assert sorted(records) == ["a", "b"]
    library = {r.index: r.score for r in reranker.rerank("a cat", ["a black cat", "a red car"])}
    assert {r["index"]: r["score"] for r in records["a"]["results"]} == pytest.approx(library, abs=TOL)


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/full"])
def test_output_to_a_device_is_a_stream_or_one_line_error(tiny_model_dir, two_queries, device):
    """/dev/null gave Errno 22 (fsync), /dev/zero and /dev/full were read back as endless lines (3 GB+)."""
    rc, out, err = run_watched(
        [LYCHEE, "batch", "--local", "--model", str(tiny_model_dir), str(two_queries), device],
        timeout=240, max_rss_mb=3000,
    )
    if device == "/dev/full":
        assert rc == 1
        assert "error: " in err and "/dev/full" in err and "No space left on device" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2  # the model line, the error
    else:
        assert rc == 0, err
        assert "2 queries, 3 pairs" in err


def test_endless_input_is_one_line_error(tiny_model_dir, tmp_path):
    """INPUT=/dev/zero grew past 3.4 GB reading one endless line."""
    rc, out, err = run_watched(
        [LYCHEE, "batch", "--local", "--model", str(tiny_model_dir), "/dev/zero", str(tmp_path / "out.jsonl")],
        timeout=60, max_rss_mb=2000,
    )
    assert rc == 1 and "error: INPUT /dev/zero is a character device" in err and "Traceback" not in err


def test_a_line_over_the_limit_fails_alone(tiny_model_dir, tmp_path):
    """Lines are read with a bounded length: an over-long one is its record's error (held in memory
    up to the limit only), the records around it are scored."""
    src = tmp_path / "in.jsonl"
    with src.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"query_id": "ok", "query": "a cat", "candidates": ["a cat"]}) + "\n")
        fh.write(json.dumps({"query_id": "long", "query": "a cat", "candidates": ["x" * (MAX_LINE_BYTES + 10)]}) + "\n")
        fh.write(json.dumps({"query_id": "after", "query": "a dog", "candidates": ["a dog"]}) + "\n")
    out = tmp_path / "out.jsonl"
    rc, _, err = run_watched([LYCHEE, "batch", "--local", "--model", str(tiny_model_dir), str(src), str(out)],
                             timeout=240, max_rss_mb=2500)
    assert rc == 0, err
    records = {r["query_id"] or r["where"]: r for r in read_output(out)}
    assert sorted(records) == ["after", "line 2", "ok"]
    assert records["line 2"]["error"].startswith(f"line 2: line is longer than {MAX_LINE_BYTES:,} bytes")
    assert "results" in records["ok"] and "results" in records["after"]


# --------------------------------------------------------------------------- item 16
def test_ids_never_collide_are_json_and_survive_bad_bytes(tmp_path, reranker):
    lines = [
        json.dumps({"query_id": "<line 2>", "query": "a cat", "candidates": ["a black cat", "a red car"]}).encode(),
        json.dumps({"query": "no id here", "candidates": ["x"]}).encode(),  # line 2: no query_id
        b'{"query_id": NaN, "query": "a cat", "candidates": ["x"]}',
        b'{"query_id": 1e999, "query": "a cat", "candidates": ["x"]}',
        b'{"query_id": "b", "query": "caf\xe9", "candidates": ["x"]}',  # latin-1: invalid UTF-8, id readable
        b'{"query_id": "c\xe9", "query": "cafe", "candidates": ["x"]}',  # the bad byte is in the id itself
        b'{"query_id": "d", "query": "a dog", "candidates": ["a dog", "\\ud800 lone surrogate"]}',
    ]
    src = tmp_path / "ids.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    summary = run_batch(src, out, local=True, reranker=reranker)
    raw = out.read_text(encoding="utf-8").splitlines()
    records = [strict_json(line) for line in raw]  # every line is JSON: no bare NaN/Infinity
    by_id = {json.dumps(r["query_id"]) if r["query_id"] is not None else r["where"]: r for r in records}
    assert len(records) == len(by_id) == 7

    # The user's query whose id looks like a generated name is scored, not dropped.
    user = by_id['"<line 2>"']
    library = {r.index: r.score for r in reranker.rerank("a cat", ["a black cat", "a red car"])}
    assert {r["index"]: r["score"] for r in user["results"]} == pytest.approx(library, abs=TOL)
    # Records without a usable id: null id and where they were, never a name a user could have.
    assert by_id["line 2"] == {"query_id": None, "where": "line 2", "error": "line 2: no query_id"}
    for n in (3, 4):
        assert by_id[f"line {n}"]["query_id"] is None and "not valid JSON" in by_id[f"line {n}"]["error"]
    # A readable id is kept; the bad bytes are that record's error.
    assert by_id['"b"'] == {"query_id": "b", "error": "line 5: not valid UTF-8 (byte 0xe9 at column 32)"}
    assert by_id["line 6"]["query_id"] is None and "not valid UTF-8 (byte 0xe9 at column 16)" in by_id["line 6"]["error"]
    # A lone surrogate in a candidate fails that candidate only, and the line is still UTF-8 JSON.
    d = by_id['"d"']["results"]
    assert [("error" in r) for r in sorted(d, key=lambda r: r["index"])] == [False, True]
    assert summary.query_errors == 5

    # Resume: nothing left to do, nothing written twice.
    again = run_batch(src, out, local=True, reranker=reranker)
    assert again.skipped == 7 and again.queries == 0
    assert out.read_text(encoding="utf-8").splitlines() == raw


def test_ids_in_parquet_output_resume_too(tmp_path, reranker):
    pytest.importorskip("pyarrow")
    src = tmp_path / "ids.jsonl"
    src.write_text(
        json.dumps({"query_id": "<line 2>", "query": "a cat", "candidates": ["a cat"]}) + "\n"
        + json.dumps({"query": "no id", "candidates": ["x"]}) + "\n"
        + json.dumps({"query_id": 7, "query": "a dog", "candidates": ["a dog"]}) + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.parquet"
    run_batch(src, out, local=True, reranker=reranker)
    records = read_output(out)
    assert sorted(json.dumps(r["query_id"]) for r in records) == ['"<line 2>"', "7", "null"]
    assert next(r for r in records if r["query_id"] is None)["where"] == "line 2"
    assert run_batch(src, out, local=True, reranker=reranker).skipped == 3
    assert len(read_output(out)) == 3


# --------------------------------------------------------------------------- item 14
_BATCH_RSS = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from tests.process_watch import rss_growth_mb
from lychee_rerank import LycheeReranker
from lychee_rerank.jobs.batch import read_output, run_batch

model, folder, n = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
unit = "The quick brown fox jumps over the lazy dog 一只黑猫. "
rr = LycheeReranker.from_pretrained(model, device="cpu", dtype="float32")

def job(name, text):
    src = folder / f"{name}.jsonl"
    src.write_text(json.dumps({"query_id": name, "query": "a cat", "candidates": [text, "short"]}, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    del text
    run_batch(src, folder / f"{name}.out.jsonl", local=True, reranker=rr)
    return read_output(folder / f"{name}.out.jsonl")[0]["results"]

job("warm", "short")
small, small_mb = rss_growth_mb(lambda: job("small", unit * 200))  # already over max_doc_tokens
big, big_mb = rss_growth_mb(lambda: job("big", unit * (n // len(unit.encode()))))
print(json.dumps({"growth_mb": big_mb - small_mb, "small_mb": small_mb, "small": small, "big": big}))
"""


def test_a_huge_candidate_is_cut_before_it_is_tokenized(tiny_model_dir, tmp_path):
    """A 50 MB candidate peaked at 20 GB: the whole text was tokenized, then cut. Now a 10 MB one
    costs about its own bytes (read, parsed), not its tokens; its scores are the over-limit one's."""
    proc = subprocess.run([sys.executable, "-c", _BATCH_RSS, REPO, str(tiny_model_dir), str(tmp_path), str(10 * 2**20)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # Same kept tokens: the same scores and ranks.
    assert [(r["index"], r["rank"]) for r in out["big"]] == [(r["index"], r["rank"]) for r in out["small"]]
    assert [r["score"] for r in out["big"]] == pytest.approx([r["score"] for r in out["small"]], abs=TOL)
    assert out["growth_mb"] < 150, out  # the 10 MB text and its line, a few times over; before: +1.9 GB
