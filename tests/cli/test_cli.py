"""The `lychee` command: a real subprocess for the acceptance case, CliRunner for the rest."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lychee_rerank.cli import app

LYCHEE = str(Path(sys.executable).parent / "lychee")
runner = CliRunner()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([LYCHEE, *args], capture_output=True, text=True, timeout=600, env=full_env)


def test_rerank_images_json_from_the_console_script(tiny_model_dir, image_files, reranker):
    proc = run_cli("rerank", "--model", str(tiny_model_dir), "a cat", str(image_files[0]), str(image_files[1]), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["rank"] for r in records] == [1, 2]
    assert {r["source"] for r in records} == {str(image_files[0]), str(image_files[1])}
    assert {"rank", "index", "score", "source"} <= set(records[0])
    # Same scores as the library: the interface must not change a pair's score.
    library = {r.index: r.score for r in reranker.rerank("a cat", image_files[:2])}
    for r in records:
        assert r["score"] == pytest.approx(library[r["index"]], abs=1e-6)
    assert "cpu" in proc.stderr and "float32" in proc.stderr  # the model line on stderr


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    return result


def test_directory_glob_missing_and_corrupt_docs(tiny_model_dir, image_files, tmp_path):
    folder = image_files[0].parent
    (tmp_path / "broken.png").write_bytes(b"garbage")
    result = _invoke(
        "rerank", "--model", str(tiny_model_dir), "a cat", str(folder), str(folder / "img*.png"),
        str(tmp_path / "broken.png"), str(tmp_path / "absent.png"), "--format", "json",
    )
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert len(records) == 4 + 4 + 2
    errors = [r for r in records if r["error"]]
    assert [r["rank"] for r in errors] == [9, 10]
    assert any("not a supported image" in r["error"] for r in errors)
    assert any("image file not found" in r["error"] for r in errors)


def test_text_docs_file_csv_threshold_top_k_template(tiny_model_dir, tmp_path):
    docs = tmp_path / "docs.txt"
    docs.write_text("a black cat\n\ncoffee on a table\nred car\n一只黑猫\n")
    result = _invoke("rerank", "--model", str(tiny_model_dir), "cat", "--docs-file", str(docs), "--format", "csv", "--template", "web_search")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 4 and rows[0]["rank"] == "1"
    scores = sorted((float(r["score"]) for r in rows), reverse=True)
    result = _invoke("rerank", "--model", str(tiny_model_dir), "cat", "--docs-file", str(docs), "--format", "json", "--top-k", "2")
    assert len(json.loads(result.stdout)) == 2
    result = _invoke("rerank", "--model", str(tiny_model_dir), "cat", "--docs-file", str(docs), "--format", "json",
                     "--threshold", str(scores[1] * 10), "--scale", "10")
    assert [round(r["score"], 4) for r in json.loads(result.stdout)] == [round(s * 10, 4) for s in scores[:2]]


def test_text_flag_table_output_and_query_image(tiny_model_dir, image_files):
    result = _invoke("rerank", "--model", str(tiny_model_dir), "cat", "--text", "one doc", "another doc")
    assert result.exit_code == 0, result.output
    assert "one doc" in result.stdout and "rank" in result.stdout
    result = _invoke("rerank", "--model", str(tiny_model_dir), "", "--query-image", str(image_files[2]), "--text", "a", "b", "--format", "json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 2


def test_errors_exit_non_zero_with_a_message(tiny_model_dir, tmp_path):
    result = _invoke("rerank", "--model", str(tiny_model_dir), "", "--text", "doc")
    assert result.exit_code == 2 and "query is empty" in result.output
    result = _invoke("rerank", "--model", str(tiny_model_dir), "q")
    assert result.exit_code == 2 and "no documents" in result.output
    result = _invoke("rerank", "--model", str(tmp_path / "nowhere"), "q", "--text", "d")
    assert result.exit_code == 1 and "could not load model" in result.output
    result = _invoke("rerank", "--model", str(tiny_model_dir), "q", "--text", "d", "--template", "nope")
    assert result.exit_code == 2 and "unknown template" in result.output


def test_templates_command(tmp_path):
    user = tmp_path / "t.json"
    user.write_text(json.dumps({"legal": "Given a clause"}))
    result = _invoke("templates", "--templates-file", str(user))
    assert result.exit_code == 0 and "web_search" in result.stdout and "legal\tGiven a clause" in result.stdout


def test_progress_goes_to_stderr_not_stdout(tiny_model_dir):
    docs = [f"doc {i}" for i in range(8)]
    proc = run_cli("rerank", "--model", str(tiny_model_dir), "q", "--text", *docs, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 8  # stdout is pure JSON


def test_jsonl_output_is_one_record_per_line(tiny_model_dir):
    result = _invoke("rerank", "--model", str(tiny_model_dir), "cat", "--text", "a", "b", "c", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and [json.loads(line)["rank"] for line in lines] == [1, 2, 3]


def test_analyze_explains_one_pair(tiny_model_dir, image_files, reranker):
    result = _invoke("analyze", "--model", str(tiny_model_dir), "a cat", "a black cat", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["score"] == pytest.approx(reranker.score("a cat", "a black cat"), abs=1e-6)
    assert data["yes_logit"] is not None and data["instruction"].startswith("Given a web search query")
    assert "<Query>:a cat\n<Document>:a black cat" in data["prompt"]
    result = _invoke("analyze", "--model", str(tiny_model_dir), "", "--query-image", str(image_files[0]), "--doc-image", str(image_files[1]), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["prompt"].count("<|vision_start|>") == 2
    result = _invoke("analyze", "--model", str(tiny_model_dir), "", "doc")
    assert result.exit_code == 2 and "query is empty" in result.output


def test_unknown_backend_is_refused(tiny_model_dir):
    result = _invoke("rerank", "--backend", "magic", "cat", "--text", "a")
    assert result.exit_code == 2 and "unknown backend" in result.output


def test_eval_prints_metrics_side_by_side_and_writes_the_pr_curve(tiny_model_dir, tmp_path, photos):
    gallery = tmp_path / "gallery"
    gallery.mkdir()
    for i, photo in enumerate(photos[:4]):
        photo.save(gallery / f"p{i}.png")
    labelled = tmp_path / "set.jsonl"
    labelled.write_text(
        "\n".join(
            json.dumps(row)
            for row in [
                {"id": "a", "lang": "en", "query": "first", "relevant": {"p0.png": 2, "p1.png": 1}},
                {"id": "b", "lang": "zh", "query": "第二", "relevant": {"p2.png": 1}},
                {"id": "c", "lang": "en", "query": "third", "relevant": {"p3.png": 2}},
            ]
        )
    )
    png = tmp_path / "pr.png"
    result = _invoke("eval", str(labelled), "--images", str(gallery), "--system", str(tiny_model_dir),
                     "--system", str(tiny_model_dir), "--k", "3", "--pr-curve", str(png), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = data["metrics"]
    assert [(r["set"], r["queries"]) for r in rows[:3]] == [("all", 3), ("en", 2), ("zh", 1)]
    assert len(rows) == 6 and rows[0]["nDCG@3"] == pytest.approx(rows[3]["nDCG@3"])  # same system twice
    assert all(0 <= r["MRR"] <= 1 and 0 <= r["Recall@3"] <= 1 for r in rows)
    for i in (1, 2):
        assert (tmp_path / f"pr-{i}.png").read_bytes()[:4] == b"\x89PNG"
    names = [r["name"] for r in next(iter(data["thresholds"].values()))]
    assert names == ["strict", "balanced", "explore"]


def test_exit_non_zero_when_nothing_could_be_scored(tiny_model_dir, image_files, tmp_path):
    """Issue 13, item 12: every document failing is a failure of the command, said on stderr."""
    missing = str(tmp_path / "missing_dir")
    proc = run_cli("rerank", "--model", str(tiny_model_dir), "a rocket", missing, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert "none of the 1 document(s) could be scored" in proc.stderr
    records = json.loads(proc.stdout)  # the error records are still written, on stdout
    assert len(records) == 1 and "image file not found" in records[0]["error"]
    # One document scored (even if --top-k 0 hides it): success, with the warning.
    result = _invoke("rerank", "--model", str(tiny_model_dir), "a rocket", missing, str(image_files[0]), "--top-k", "0")
    assert result.exit_code == 0, result.output
    assert "1 document(s) could not be scored" in result.output


def test_sigterm_to_lychee_ui_leaves_no_process_behind():
    """Issue 13, item 13: `lychee ui` hands signals to Streamlit (exec) and exits with it."""
    import signal
    import time
    import urllib.request

    from ..ui.browser import free_port, session_members, stop_session

    port = free_port()
    proc = subprocess.Popen(
        [LYCHEE, "ui", "--backend", "lite", "--port", str(port), "--host", "127.0.0.1"],
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own session: every process it starts can be found (and cleaned up)
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, "lychee ui exited early"
            assert time.monotonic() < deadline, "lychee ui never answered"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        assert session_members(proc.pid), "the UI server is running"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while session_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert session_members(proc.pid) == [], "a process of `lychee ui` survived its SIGTERM"
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
    finally:
        stop_session(proc, grace_s=5)


def test_device_and_fifo_documents_are_refused_by_the_cli(tiny_model_dir, image_files, tmp_path):
    """Issue 13, item 11 through the CLI: the shared image reader refuses them, the rest is scored."""
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    result = _invoke("rerank", "--model", str(tiny_model_dir), "a cat", str(link), str(fifo), str(image_files[0]),
                     "--format", "json")
    assert result.exit_code == 0, result.output
    records = {r["index"]: r for r in json.loads(result.stdout)}
    assert records[2]["error"] is None
    for i in (0, 1):
        assert "not a regular file" in records[i]["error"]


def test_special_token_text_is_plain_unless_asked(tiny_model_dir):
    """Issue 13, items 7-8 through the CLI: escaped by default; --keep-special-tokens fails that document alone."""
    docs = ["see <|image_pad|> here", "a black cat"]
    result = _invoke("rerank", "--model", str(tiny_model_dir), "a cat", "--text", *docs, "--format", "json")
    assert result.exit_code == 0, result.output
    assert all(r["error"] is None for r in json.loads(result.stdout))
    result = _invoke("rerank", "--model", str(tiny_model_dir), "a cat", "--text", *docs, "--format", "json",
                     "--keep-special-tokens")
    assert result.exit_code == 0, result.output
    records = {r["index"]: r for r in json.loads(result.stdout)}
    assert records[1]["error"] is None
    assert "1 image placeholders for 0 images" in records[0]["error"]


def test_analyze_reads_an_image_path_like_rerank(tiny_model_dir, image_files, reranker):
    """`lychee analyze Q gallery/x.jpg` scored the path as text while `lychee rerank` read the image."""
    path = str(image_files[0])
    result = _invoke("analyze", "--model", str(tiny_model_dir), "a cat", path, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["document_read_as"].startswith(f"image {path}")
    # The shared fixture's vision cache may hold this image's features from another batch: FP32 parity, 1e-5.
    assert data["score"] == pytest.approx(reranker.rerank("a cat", [image_files[0]])[0].score, abs=1e-5)
    assert "<|vision_start|>" in data["prompt"]
    rerank = run_cli("rerank", "--model", str(tiny_model_dir), "a cat", path, "--format", "json")
    assert json.loads(rerank.stdout)[0]["score"] == pytest.approx(data["score"], abs=1e-6)  # same pair, same score

    as_text = _invoke("analyze", "--model", str(tiny_model_dir), "a cat", path, "--text", "--json")
    text_data = json.loads(as_text.stdout)
    assert text_data["document_read_as"] == "text"
    assert text_data["score"] == pytest.approx(reranker.score("a cat", path), abs=1e-6)
    assert "<|vision_start|>" not in text_data["prompt"]
    missing = _invoke("analyze", "--model", str(tiny_model_dir), "a cat", "no/such/photo.jpg")
    assert missing.exit_code == 0 and "scoring it as text" in missing.output
