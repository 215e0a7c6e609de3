"""Colour names in two languages, the colour histogram, and colour words in queries."""

from __future__ import annotations

import numpy as np
import pytest

from lychee_rerank.backends.lite.colours import (
    COLOUR_NAMES,
    colour_histogram,
    colour_match,
    colour_words,
    dominant_colours,
    histogram_intersection,
)

from .conftest import blank


@pytest.mark.parametrize(
    "rgb, name, zh",
    [
        ((0, 0, 0), "black", "黑色"),
        ((255, 255, 255), "white", "白色"),
        ((128, 128, 128), "gray", "灰色"),
        ((220, 20, 30), "red", "红色"),
        ((250, 140, 20), "orange", "橙色"),
        ((250, 220, 20), "yellow", "黄色"),
        ((30, 160, 60), "green", "绿色"),
        ((20, 200, 210), "cyan", "青色"),
        ((20, 60, 200), "blue", "蓝色"),
        ((130, 40, 200), "purple", "紫色"),
        ((250, 150, 190), "pink", "粉色"),
        ((110, 60, 20), "brown", "棕色"),
    ],
)
def test_flat_colours_get_their_names_in_both_languages(rgb, name, zh):
    hist = colour_histogram(blank(rgb))
    assert abs(hist.sum() - 1) < 1e-9
    top = dominant_colours(hist)[0]
    assert (top.name, top.zh) == (name, zh) and top.share == 1.0


def test_split_image_reports_both_halves():
    image = blank((220, 20, 30), (200, 100))
    image.paste(blank((20, 60, 200), (100, 100)), (100, 0))
    names = {c.name: c.share for c in dominant_colours(colour_histogram(image))}
    assert set(names) == {"red", "blue"} and all(abs(s - 0.5) < 0.02 for s in names.values())


def test_real_photos_have_plausible_colours(analyses):
    assert analyses["no_parking"].colours[0].name in {"red", "blue", "gray", "white"}
    assert "yellow" in {c.name for c in analyses["wet_floor"].colours}
    assert analyses["camera"].colour_hist[[COLOUR_NAMES.index(n) for n in ("black", "white", "gray")]].sum() > 0.95


def test_histogram_intersection_bounds():
    red, blue = colour_histogram(blank((220, 20, 30))), colour_histogram(blank((20, 60, 200)))
    assert histogram_intersection(red, red) == pytest.approx(1.0)
    assert histogram_intersection(red, blue) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "query, expected",
    [
        ("一只black cat趴在窗台上", ["black"]),
        ("红色的禁止标志", ["red"]),
        ("黄色警告牌", ["yellow"]),
        ("黑猫", ["black"]),
        ("white and Grey cars", ["white", "gray"]),
        ("咖啡色沙发", ["brown"]),
        ("金色的头发", ["yellow"]),
        ("咖啡", []),
        ("红茶和白天", []),
        ("现金支付", []),
        ("redundant bluetooth", []),
        # A colour character inside a longer word counts when the word means a colour, as in
        # English ("blackberry" is not "black").
        ("黑莓", []),
        ("棕榈树", []),
        ("明白了", []),
        ("雪白的墙", ["white"]),
        ("粉红色的裙子", ["pink"]),
        ("天蓝色", ["blue"]),
        ("一面红旗", ["red"]),
        ("米色的沙发", ["white"]),  # a fixed colour word that is no dictionary headword
    ],
)
def test_colour_words_in_queries(query, expected):
    assert colour_words(query) == expected


def test_colour_match_counts_a_quarter_of_the_picture_fully():
    hist = np.zeros(len(COLOUR_NAMES))
    hist[COLOUR_NAMES.index("red")] = 0.25
    hist[COLOUR_NAMES.index("white")] = 0.75
    assert colour_match(["red"], hist) == pytest.approx(1.0)
    assert colour_match(["red", "blue"], hist) == pytest.approx(0.5)
    assert colour_match([], hist) == 0.0
