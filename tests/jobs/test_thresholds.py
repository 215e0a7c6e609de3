"""Threshold calibration against values worked out by hand."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from lychee_rerank.postprocess import PostProcessOptions, rank
from lychee_rerank.results import PairScore
from lychee_rerank.jobs.thresholds import best_f1, pr_curve, threshold_table, write_pr_curve

# Ranked: 0.9 R, 0.8 R, 0.7 -, 0.6 R, 0.5 -, 0.4 -   (3 relevant, 3 not)
SCORES = [0.5, 0.9, 0.4, 0.8, 0.6, 0.7]
LABELS = [0, 1, 0, 1, 1, 0]
# threshold: (tp, fp, precision, recall, f1), by hand
EXPECTED = {
    0.9: (1, 0, 1.0, 1 / 3, 0.5),
    0.8: (2, 0, 1.0, 2 / 3, 0.8),
    0.7: (2, 1, 2 / 3, 2 / 3, 2 / 3),
    0.6: (3, 1, 0.75, 1.0, 6 / 7),
    0.5: (3, 2, 0.6, 1.0, 0.75),
    0.4: (3, 3, 0.5, 1.0, 2 / 3),
}


def test_curve_matches_hand_computed_values():
    curve = pr_curve(SCORES, LABELS)
    assert curve.thresholds == [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    for point in curve.points:
        tp, fp, precision, recall, f1 = EXPECTED[point.threshold]
        assert (point.tp, point.fp, point.kept) == (tp, fp, tp + fp)
        assert point.precision == pytest.approx(precision)
        assert point.recall == pytest.approx(recall)
        assert point.f1 == pytest.approx(f1)


def test_operating_points_from_the_data():
    rows = {r.name: r for r in threshold_table(SCORES, LABELS)}
    # strict: thresholds with precision >= 0.95 are 0.9 and 0.8; the smallest is 0.8.
    assert rows["strict"].threshold == 0.8 and rows["strict"].recall == pytest.approx(2 / 3)
    # balanced: best F1 6/7 at 0.6.
    assert rows["balanced"].threshold == 0.6 and rows["balanced"].f1 == pytest.approx(6 / 7)
    # explore: recall >= 0.9 at 0.6, 0.5, 0.4; the largest is 0.6.
    assert rows["explore"].threshold == 0.6 and rows["explore"].kept == 4
    # Tighter targets move the points: precision >= 0.7 first fails below 0.6.
    rows = {r.name: r for r in threshold_table(SCORES, LABELS, strict_precision=0.7, explore_recall=0.5)}
    assert rows["strict"].threshold == 0.6
    assert rows["explore"].threshold == 0.8


def test_threshold_keeps_what_the_engine_keeps():
    """A row's ``kept`` is what ``score_threshold`` leaves in a real ranking."""
    for row in threshold_table(SCORES, LABELS):
        ranked = rank([PairScore(score=s) for s in SCORES], list(range(len(SCORES))), PostProcessOptions(score_threshold=row.threshold))
        assert len(ranked) == row.kept
        assert sum(LABELS[r.index] for r in ranked) / len(ranked) == pytest.approx(row.precision)


def test_ties_are_one_cut():
    # 0.9: one relevant, one not; 0.5: one relevant, one not.
    curve = pr_curve([0.9, 0.9, 0.5, 0.5], [True, False, True, False])
    assert [(p.threshold, p.tp, p.fp) for p in curve.points] == [(0.9, 1, 1), (0.5, 2, 2)]
    rows = {r.name: r for r in threshold_table([0.9, 0.9, 0.5, 0.5], [True, False, True, False])}
    assert rows["strict"].threshold is None and "never reaches 0.95" in rows["strict"].note
    assert rows["balanced"].threshold == 0.5 and rows["balanced"].f1 == pytest.approx(2 / 3)
    assert rows["explore"].threshold == 0.5


def test_best_f1_prefers_the_larger_threshold_on_equal_f1():
    # 0.8: tp1 fp0 -> P 1, R .5, F1 2/3;  0.3: tp2 fp2 -> P .5, R 1, F1 2/3.
    point = best_f1(pr_curve([0.8, 0.3, 0.3, 0.3], [1, 1, 0, 0]))
    assert point is not None and point.threshold == 0.8


def test_graded_labels_count_when_positive():
    assert [p.tp for p in pr_curve([0.9, 0.6, 0.3], [2, 0, 1]).points] == [1, 1, 2]
    with pytest.raises(ValueError, match=">= 0"):
        pr_curve([0.5], [-1])


def test_no_relevant_examples():
    curve = pr_curve([0.2, 0.7], [0, 0])
    assert all(math.isnan(r) for r in curve.recall) and curve.precision == [0.0, 0.0]
    rows = threshold_table([0.2, 0.7], [0, 0])
    assert [r.threshold for r in rows] == [None, None, None]
    assert all("no relevant examples" in r.note for r in rows)


def test_all_scores_equal():
    rows = {r.name: r for r in threshold_table([0.5] * 4, [1, 0, 0, 1])}
    assert rows["balanced"].threshold == 0.5 and rows["balanced"].precision == 0.5 and rows["balanced"].recall == 1.0
    assert rows["strict"].threshold is None
    assert "all scores are equal" in rows["balanced"].note


def test_no_irrelevant_examples():
    rows = {r.name: r for r in threshold_table([0.3, 0.9, 0.6], [1, 1, 1])}
    assert rows["strict"].threshold == 0.3 and rows["strict"].kept == 3  # precision 1 everywhere
    assert rows["explore"].threshold == 0.3  # recall 0.9 needs all three


def test_bad_input():
    with pytest.raises(ValueError, match="no scores"):
        pr_curve([], [])
    with pytest.raises(ValueError, match="labels"):
        pr_curve([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="NaN"):
        pr_curve([float("nan")], [1])


def test_png_is_written_and_rows_returned(tmp_path):
    path = tmp_path / "plots" / "pr.png"
    rows = write_pr_curve(path, SCORES, LABELS, title="hand case")
    assert [r.name for r in rows] == ["strict", "balanced", "explore"]
    assert rows == threshold_table(SCORES, LABELS)
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (600, 450)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 16) or []) > 10  # a drawing, not a blank canvas
    # Without positives it still writes a (labelled) figure.
    empty = write_pr_curve(tmp_path / "empty.png", [0.1, 0.2], [0, 0])
    assert (tmp_path / "empty.png").stat().st_size > 0 and empty[0].threshold is None
