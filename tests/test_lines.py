"""The package's one line rule (``\\n`` only), for files and for text already in memory."""

from __future__ import annotations

from lychee_rerank.lines import split_lines


def test_split_lines_breaks_at_newline_only():
    text = "one\u2028still one\r\ntwo\x0cstill two\x85\nthree\r"
    assert split_lines(text) == ["one\u2028still one", "two\x0cstill two\x85", "three"]
