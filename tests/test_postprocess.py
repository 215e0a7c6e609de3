"""Each post-processing rule (seed 002/003), on hand-made scores."""

from __future__ import annotations

import pytest

from lychee_rerank.postprocess import PostProcessOptions, rank
from lychee_rerank.results import PairScore


def _rank(values, errors=None, **options):
    scores = [PairScore(score=v) for v in values]
    for i, message in (errors or {}).items():
        scores[i] = PairScore(error=message)
    return rank(scores, [f"doc{i}" for i in range(len(values))], PostProcessOptions(**options))


def test_sorted_best_first_with_ranks_and_indices():
    out = _rank([0.2, 0.9, 0.5])
    assert [r.index for r in out] == [1, 2, 0]
    assert [r.rank for r in out] == [1, 2, 3]
    assert out[0].document == "doc1"


def test_sort_is_stable_for_equal_scores():
    out = _rank([0.5, 0.7, 0.5, 0.7, 0.5])
    assert [r.index for r in out] == [1, 3, 0, 2, 4]


def test_threshold_then_top_k():
    out = _rank([0.1, 0.8, 0.6, 0.9, 0.4], score_threshold=0.5)
    assert [r.index for r in out] == [3, 1, 2]
    out = _rank([0.1, 0.8, 0.6, 0.9, 0.4], score_threshold=0.5, top_k=2)
    assert [r.index for r in out] == [3, 1]
    assert _rank([0.1, 0.2], top_k=0) == []
    assert len(_rank([0.3, 0.2], top_k=10)) == 2
    assert [r.index for r in _rank([0.5, 0.49999], score_threshold=0.5)] == [0]  # inclusive


def test_near_tie_flags_neighbours_only():
    out = _rank([0.80, 0.795, 0.5, 0.2, 0.205], tie_epsilon=0.01)
    flags = {r.index: r.tie for r in out}
    assert flags == {0: True, 1: True, 2: False, 3: True, 4: True}
    assert not any(r.tie for r in _rank([0.80, 0.795], tie_epsilon=0.001))


def test_normalize_min_max_and_display_scale():
    out = _rank([0.2, 0.6, 0.4], normalize=True)
    assert [round(r.score, 6) for r in out] == [1.0, 0.5, 0.0]
    assert [r.raw_score for r in out] == [0.6, 0.4, 0.2]
    out = _rank([0.25, 0.75], scale=10.0)
    assert [r.score for r in out] == [7.5, 2.5]
    out = _rank([0.25, 0.75], scale=10.0, score_threshold=5)  # threshold in the display scale
    assert [r.index for r in out] == [1]
    assert [r.score for r in _rank([0.3, 0.3], normalize=True)] == [1.0, 1.0]


def test_failed_documents_come_last_and_are_never_dropped():
    out = _rank([0.9, 0.0, 0.1, 0.7], errors={1: "corrupt image"}, score_threshold=0.5, top_k=1)
    assert [(r.index, r.error) for r in out] == [(0, None), (1, "corrupt image")]
    assert out[-1].score == 0.0 and out[-1].rank == 2


@pytest.mark.parametrize("bad", [dict(top_k=-1), dict(scale=5.0), dict(tie_epsilon=-0.1)])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        PostProcessOptions(**bad)
