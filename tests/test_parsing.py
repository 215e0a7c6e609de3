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
