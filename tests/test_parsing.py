"""Tolerant 0-10 parsing for scoring='generate'."""

from __future__ import annotations

import pytest

from lychee_rerank.parsing import parse_score


@pytest.mark.parametrize(
    "text, expected",
    [
        ("8.2", 8.2),
        ("Score: 8.2", 8.2),
        ("Score: 8.2/10", 8.2),
        ("得分：7.9", 7.9),
        ("得分:7.9分", 7.9),
        ("final score=9.1", 9.1),
        ("9分", 9.0),
        ("  10 ", 10.0),
        ("0", 0.0),
        ("The image matches well. Relevance score is 6.5 out of 10.", 6.5),
        ("评分为 ８", 8.0),  # full-width digit
        ("I think 7. Score: 3", 3.0),  # the keyword wins over an earlier number
    ],
)
def test_parses(text, expected):
    assert parse_score(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", None, "yes", "no idea", "Score: 12", "-3", "150分"])
def test_unparsable_or_out_of_range_is_none(text):
    assert parse_score(text) is None



def test_whitespace_after_a_keyword_is_read_in_linear_time():
    """A model answer of "score" and a long run of spaces froze the caller (cubic backtracking).

    Run in a child process: the regex engine holds the GIL, so a thread could not be timed out."""
    import subprocess
    import sys

    code = (
        "from lychee_rerank.parsing import parse_score\n"
        "texts = ['score' + ' ' * 20_000, '得分' + ' \\t' * 10_000 + '是', 'rating is' + ' ' * 20_000 + ':' + ' ' * 20_000 + '7']\n"
        "print([parse_score(t) for t in texts])\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("parse_score still running after 20 s") from None
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None, 7.0]"
