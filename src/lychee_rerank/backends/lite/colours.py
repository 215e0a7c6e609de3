"""Dominant colour names (English and Chinese) and a colour-name histogram.

Every pixel of a small thumbnail is given one of twelve basic colour names by fixed HSV rules;
the share of each name is the image's colour histogram. Names are what users type ("red sign",
"黄色的警告牌"), and the histogram doubles as the colour feature for image-to-image similarity
(histogram intersection). No learning, no randomness: the same pixels always give the same names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .glossary import CJK_RUN, segment, word_gloss

#: (English, Chinese) in histogram order.
COLOURS: tuple[tuple[str, str], ...] = (
    ("black", "黑色"),
    ("white", "白色"),
    ("gray", "灰色"),
    ("red", "红色"),
    ("orange", "橙色"),
    ("yellow", "黄色"),
    ("green", "绿色"),
    ("cyan", "青色"),
    ("blue", "蓝色"),
    ("purple", "紫色"),
    ("pink", "粉色"),
    ("brown", "棕色"),
)
COLOUR_NAMES = tuple(en for en, _ in COLOURS)
_INDEX = {en: i for i, en in enumerate(COLOUR_NAMES)}

#: A colour counts as dominant from this share of the pixels on.
DOMINANT_SHARE = 0.08
THUMBNAIL = 96


@dataclass(frozen=True)
class ColourShare:
    name: str
    zh: str
    share: float


def colour_histogram(image: Image.Image) -> np.ndarray:
    """Share of the pixels (of a thumbnail) carrying each of the twelve colour names; sums to 1."""
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32).reshape(-1, 3)
    h = hsv[:, 0] * (360.0 / 255.0)
    s = hsv[:, 1] / 255.0
    v = hsv[:, 2] / 255.0
    labels = _name_pixels(h, s, v)
    hist = np.bincount(labels, minlength=len(COLOURS)).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def _name_pixels(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fixed HSV rules, applied in order (first match wins), vectorised over pixels."""
    out = np.full(h.shape, -1, dtype=np.int64)

    def assign(mask: np.ndarray, name: str) -> None:
        free = (out < 0) & mask
        out[free] = _INDEX[name]

    assign(v < 0.18, "black")
    assign((s < 0.12) & (v > 0.85), "white")
    assign(s < 0.18, "gray")
    # Dark, moderately saturated reds/oranges/yellows read as brown (wood, coffee, fur).
    assign((h >= 10) & (h < 50) & (v < 0.62), "brown")
    assign(((h >= 330) | (h < 10)) & (s < 0.55) & (v > 0.7), "pink")
    assign((h >= 345) | (h < 12), "red")
    assign((h >= 12) & (h < 40), "orange")
    assign((h >= 40) & (h < 68), "yellow")
    assign((h >= 68) & (h < 165), "green")
    assign((h >= 165) & (h < 195), "cyan")
    assign((h >= 195) & (h < 260), "blue")
    assign((h >= 260) & (h < 290), "purple")
    assign(out < 0, "pink")  # 290..345: magenta and pink hues
    return out


def dominant_colours(hist: np.ndarray, min_share: float = DOMINANT_SHARE) -> list[ColourShare]:
    """Colour names covering at least ``min_share`` of the image, largest first."""
    order = np.argsort(-hist, kind="stable")
    return [ColourShare(COLOURS[i][0], COLOURS[i][1], round(float(hist[i]), 3)) for i in order if hist[i] >= min_share]


def histogram_intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two colour histograms, 0 (no shared colour) to 1 (same distribution)."""
    return float(np.minimum(np.asarray(a), np.asarray(b)).sum())


# ---------------------------------------------------------------------------- colour words in queries
_EN_WORDS = {
    "black": "black",
    "white": "white",
    "gray": "gray",
    "grey": "gray",
    "silver": "gray",
    "red": "red",
    "orange": "orange",
    "yellow": "yellow",
    "golden": "yellow",
    "gold": "yellow",
    "green": "green",
    "cyan": "cyan",
    "teal": "cyan",
    "turquoise": "cyan",
    "blue": "blue",
    "navy": "blue",
    "purple": "purple",
    "violet": "purple",
    "pink": "pink",
    "magenta": "pink",
    "brown": "brown",
    "ginger": "orange",
}
_ZH_CHARS = {
    "黑": "black",
    "白": "white",
    "灰": "gray",
    "红": "red",
    "橙": "orange",
    "橘": "orange",
    "黄": "yellow",
    "绿": "green",
    "青": "cyan",
    "蓝": "blue",
    "紫": "purple",
    "粉": "pink",
    "棕": "brown",
    "褐": "brown",
}
#: Colour words whose characters are too ambiguous alone ("金" is also money, "银" a bank).
_ZH_WORDS = {"金色": "yellow", "银色": "gray", "咖啡色": "brown", "米色": "white"}
#: Words whose English gloss names a colour although they are not about one (the gloss rule
#: of :func:`colour_words` would take 红茶 "black tea" as black). Other such words need no entry:
#: their gloss names no colour (白天 "daytime", 青年 "youth", 黑板 "blackboard").
_ZH_NOT_COLOUR = {"白银", "白领", "红包", "红茶", "红酒", "绿茶", "黄金"}
_EN_RE = re.compile(r"[a-z]+")


def _english_colours(text: str) -> list[str]:
    """Colour names of the English colour words in ``text``, whole words only."""
    return [_EN_WORDS[w] for w in _EN_RE.findall(text.lower()) if w in _EN_WORDS]


def colour_words(text: str) -> list[str]:
    """Colour names (English keys) a query asks for, in either language, without repeats.

    English words match whole words. Chinese is first cut into dictionary words (the segmenter
    of :mod:`.glossary`), and then the same whole-word rule holds. A colour character alone ("黑猫"
    is 黑 + 猫) or in an ``X色`` word counts. Inside a longer word it counts only if the word's
    English gloss names a colour: 雪白 "snow white" and 红旗 "red flag" do, but 黑莓
    "blackberry", 棕榈 "palm" and 明白 "understand" do not, just as "blackberry" is not "black".
    A short list of common words is never about colour ("红茶" black tea, "白天" daytime).
    "金色", "银色" and "咖啡色" are matched as whole words.
    """
    found: list[str] = []

    def add(name: str | None) -> None:
        if name and name not in found:
            found.append(name)

    for name in _english_colours(text):
        add(name)
    for run in CJK_RUN.findall(text):
        # Fixed colour words first, wherever they stand: 米色 (beige) is no dictionary headword,
        # so the segmenter would cut it into 米 + 色.
        for word, name in _ZH_WORDS.items():
            if word in run:
                add(name)
        for word in segment(run):
            if word in _ZH_NOT_COLOUR:
                continue
            if word in _ZH_WORDS:
                add(_ZH_WORDS[word])
                continue
            chars = [_ZH_CHARS[ch] for ch in word if ch in _ZH_CHARS]
            if not chars:
                continue
            if len(word) == 1:
                add(chars[0])
                continue
            named = _english_colours(word_gloss(word) or "")
            for name in named or (chars if word.endswith("色") else []):
                add(name)
    return found


def colour_match(words: list[str], hist: np.ndarray, full_share: float = 0.25) -> float:
    """How well an image's colours answer the colour words: mean over words of
    ``min(1, share / full_share)``; a colour covering a quarter of the picture counts fully."""
    if not words:
        return 0.0
    values = [min(1.0, float(hist[_INDEX[w]]) / full_share) for w in words]
    return float(sum(values) / len(values))
