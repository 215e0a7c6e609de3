"""The score calibration: deterministic, monotonic, bounded, and readable at a threshold."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lychee_rerank.backends.lite import calibration as cal

CURVES = [cal.E5_TEXT.at(0.74), cal.E5_TEXT.at(0.81), cal.IMAGE_EMBEDDING]


@pytest.mark.parametrize("curve", CURVES)
def test_curves_are_monotonic_bounded_and_centred(curve):
    xs = np.linspace(-1, 1, 2001)
    ys = [curve(x) for x in xs]
    assert all(0.0 <= y <= 1.0 for y in ys)
    assert all(b >= a for a, b in zip(ys, ys[1:]))
    assert ys[-1] > ys[0]
    assert curve(curve.centre) == pytest.approx(0.5)
    assert [curve(x) for x in xs] == ys  # deterministic


def test_raw_e5_cosines_are_spread_out():
    """Raw cosines bunch near 0.8; calibrated, typical unrelated and related pairs are far apart."""
    english_query = cal.E5_TEXT.at(0.74)  # a typical English query's baseline
    # unrelated pairs sit at the baseline (+0.005 median), related ones well above (+0.082)
    assert english_query(0.745) < 0.15 < 0.9 < english_query(0.822)


def test_relative_curves_are_stricter_for_generous_queries():
    """A query that is close to any text of a language must beat a higher bar in it."""
    lenient, strict = cal.E5_TEXT.at(0.73), cal.E5_TEXT.at(0.81)
    xs = np.linspace(0.6, 1.0, 401)
    assert all(strict(x) <= lenient(x) for x in xs)
    assert strict(0.82) < 0.5 < lenient(0.82)


def test_median_and_cjk_share():
    assert cal.median([0.3, 0.1, 0.2]) == pytest.approx(0.2)
    assert cal.median([0.1, 0.2, 0.3, 0.4]) == pytest.approx(0.25)
    assert cal.median([]) == 0.0
    assert cal.cjk_share("no parking") == 0.0
    assert cal.cjk_share("禁止停车") == 1.0
    assert 0.2 < cal.cjk_share("禁止停车 NO PARKING") < 0.5
    assert cal.cjk_share("12:00 ¥78") == 0.0


def test_combine_lets_the_best_channel_decide_and_is_monotonic():
    grid = [0.0, 0.3, 0.6, 0.9, 1.0]
    for a, b, c in itertools.product(grid, repeat=3):
        value = cal.combine([(1.0, a), (0.35, b), (1.0, c)])
        assert max(a, 0.35 * b, c) - 1e-12 <= value <= 1.0
        assert cal.combine([(1.0, min(1.0, a + 0.05)), (0.35, b), (1.0, c)]) >= value - 1e-12
    # two mediocre coincidences do not beat one excellent match
    assert cal.combine([(1.0, 0.9), (1.0, 0.75)]) < cal.combine([(1.0, 0.99)])
    assert cal.combine([]) == 0.0


def test_noisy_or_is_monotonic_in_every_channel_and_bounded():
    grid = [0.0, 0.2, 0.5, 0.9, 1.0]
    for a, b, c in itertools.product(grid, repeat=3):
        value = cal.noisy_or([(0.9, a), (0.35, b), (1.0, c)])
        assert 0.0 <= value <= 1.0
        assert value >= max(0.9 * a, 0.35 * b, c) - 1e-12
        for bump in (0.05,):
            assert cal.noisy_or([(0.9, min(1, a + bump)), (0.35, b), (1.0, c)]) >= value
    assert cal.noisy_or([]) == 0.0


def test_lexical_blend_never_lowers_semantic_and_is_monotonic():
    grid = np.linspace(0, 1, 21)
    for s, lex in itertools.product(grid, grid):
        value = cal.blend_lexical(s, lex)
        assert s - 1e-12 <= value <= 1.0
        assert cal.blend_lexical(s, min(1.0, lex + 0.05)) >= value
        assert cal.blend_lexical(min(1.0, s + 0.05), lex) >= value - 1e-12


def test_tag_confidence():
    values = [cal.tag_confidence(p) for p in np.linspace(0, 1, 101)]
    assert values[0] == 0.0 and values[-1] == 1.0
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert cal.tag_confidence(0.3) == 1.0
