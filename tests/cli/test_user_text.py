"""User text through the CLI (issue 20, items 11-12): never Rich markup, and lines split at ``\\n`` only."""

from __future__ import annotations

import json
import os
import subprocess

from typer.testing import CliRunner

from lychee_rerank.cli import app

from ..process_watch import LYCHEE, run_watched

runner = CliRunner()

#: Texts Rich would read as markup (or emoji codes): each must print exactly as typed.
MARKUP = ["<s>[INST] hi [/INST] answer", "[quote]x[/quote]", "[bold red]loud[/]", ":cat: [link=http://a]b[/link]"]


def test_markup_in_documents_and_query_prints_literally_from_the_console_script(tiny_model_dir):
    """`--text "<s>[INST] hi [/INST] answer"` ended in MarkupError (exit 1) after scoring."""
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(tiny_model_dir), "[/q] [b]query", "--text", *MARKUP],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "MarkupError" not in proc.stderr
    table = proc.stdout
    for text in MARKUP:
        assert text in table, text  # "[quote]x[/quote]" printed "x"; ":cat:" printed an emoji


def test_markup_in_paths_templates_and_errors_prints_literally(tiny_model_dir, tmp_path):
    # An error quoting a user path.
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--text", "d",
                                 "--template", "web_search", "--templates-file", str(tmp_path / "[/x].json")])
    assert result.exit_code == 2 and f"template file not found: {tmp_path / '[/x].json'}" in result.output
    # A warning quoting a document path.
    result = runner.invoke(app, ["analyze", "--model", str(tiny_model_dir), "q", "[/x] [b]y.png"])
    assert result.exit_code == 0, result.output
    assert "no image file '[/x] [b]y.png'; scoring it as text" in result.output
    # The model line shows the path as given.
    link = tmp_path / "[dim]tiny"
    link.symlink_to(tiny_model_dir, target_is_directory=True)
    result = runner.invoke(app, ["rerank", "--model", str(link), "q", "--text", "d", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "[dim]tiny" in result.stderr
    # A user instruction template, listed.
    user = tmp_path / "t.json"
    user.write_text(json.dumps({"[/mine]": "Given [b]this[/b]"}))
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--text", "d",
                                 "--templates-file", str(user), "--template", "nope"])
    assert result.exit_code == 2 and "[/mine]" in result.output
    # Server settings refused, quoting the bad value.
    result = runner.invoke(app, ["serve", "--backend", "[/x]"])
    assert result.exit_code == 2 and "unknown backend '[/x]'" in result.output


def test_docs_file_lines_end_at_newline_only(tiny_model_dir, tmp_path):
    """A 3-line file gave 5 documents: form feed and U+2028 split lines, so indices drifted."""
    lines = ["a\x0cb", "c\u2028d\u0085e\x1cf", "g\u2029h [/i]"]
    docs = tmp_path / "docs.txt"
    docs.write_bytes(("\r\n".join(lines) + "\n\n").encode("utf-8"))  # CRLF, a trailing blank line
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--docs-file", str(docs), "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert {r["index"]: r["source"] for r in records} == dict(enumerate(lines))
    # The same from stdin.
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--docs-file", "-", "--format", "json"],
                           input=docs.read_bytes())
    assert result.exit_code == 0, result.output
    assert {r["index"]: r["source"] for r in json.loads(result.stdout)} == dict(enumerate(lines))


def test_docs_file_problems_are_one_line_errors(tiny_model_dir, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\ncaf\xe9\n")
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--docs-file", str(bad)])
    assert result.exit_code == 2 and "line 2: not valid UTF-8 (byte 0xe9 at column 4)" in result.output
    # An endless device is refused up front (it was read without end); watched: the old code grew.
    rc, _, err = run_watched([LYCHEE, "rerank", "--model", str(tiny_model_dir), "q", "--docs-file", "/dev/zero"],
                             timeout=60, max_rss_mb=2000)
    assert rc == 2 and "is a character device" in err
    result = runner.invoke(app, ["rerank", "--model", str(tiny_model_dir), "q", "--docs-file", str(tmp_path / "none")])
    assert result.exit_code == 2 and "No such file or directory" in result.output
