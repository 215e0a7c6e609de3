"""From raw similarities to 0-1 relevance: fixed, documented, monotonic maps.

Raw e5 cosines bunch between ~0.7 and ~0.9 whatever the pair, so a raw 0.80 means nothing to
someone setting ``--threshold``. Each kind of similarity goes through a logistic curve
``1 / (1 + exp(-(x - centre) / width))`` whose centre sits between what unrelated and related
pairs typically score. For text the centre is relative to the query's own baseline (its median
similarity to fixed unrelated reference texts in the document's language, see ``E5_TEXT``);
for images it is fixed. The constants were read off small hand-made sets of related and
unrelated pairs (English, Chinese and cross-language; not the evaluation set) and never change
at run time, so the same pair always gets the same score and, for a given query, a higher
similarity never gets a lower one.

Reading the result: ~0.5 is "about as similar as the low end of related pairs"; unrelated
pairs mostly land below 0.2 and clearly related ones above 0.8.

Channels (tags, OCR text, caption, colours, image embedding) are then fused by :func:`combine`,
a noisy-OR in which the best channel counts fully and the others progressively less; it is
monotonic in every channel, one strong piece of evidence is enough, and agreeing pieces add a
little without ever passing 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Logistic:
    """``1 / (1 + exp(-(x - centre) / width))``: monotonic increasing for ``width > 0``."""

    centre: float
    width: float

    def __call__(self, x: float) -> float:
        z = (float(x) - self.centre) / self.width
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)


@dataclass(frozen=True)
class Relative:
    """A logistic whose centre is ``baseline + margin``: relevance is judged by how much more
    similar a document is to the query than unrelated text of the same kind and language."""

    margin: float
    width: float

    def at(self, baseline: float) -> Logistic:
        return Logistic(baseline + self.margin, self.width)


#: e5 cosines depend on the query and on the document's language as much as on relevance: a
#: short Chinese query scores ~0.81 against any Chinese sentence and ~0.73 against English ones
#: (English queries ~0.74 against both). So each query is first compared with fixed, unrelated
#: reference texts (below), and a document's cosine is read relative to the median for its
#: language: English, Chinese, or both (bilingual signs, menus), see :func:`text_kind`.
#:
#: Query vs sentence-like text (OCR, captions, text documents), relative to that baseline, on a
#: bilingual set of 24 query/passage pairs: related median +0.082 (p10 +0.041), unrelated
#: median +0.005 (p90 +0.029); ranking AUC 0.97 (0.88 for raw cosines).
E5_TEXT = Relative(margin=0.035, width=0.015)
#: Concept (ConSE) evidence of an image for a text query, a standardised score (see
#: :mod:`.concepts`), to the probability that the image is relevant. A logistic regression of
#: relevance (label >= 1) on the evidence, fitted on the TUNING half of the photo set only
#: (``scripts/fit_lite_calibration.py``, which also draws ``docs/lite-reliability.png`` from the
#: held-out half). Monotonic increasing: more evidence never gives a lower score.
#:
#: Two curves, one per kind of query relevance. ``CONCEPT`` is for a query matched on its own
#: (no Chinese words with a dictionary gloss); ``CONCEPT_GLOSSED`` for a Chinese or mixed query matched
#: through its text and its English gloss together (:mod:`.glossary`). The two views agree on the
#: concepts the query is about, so the glossed relevance is more peaked. Its evidence runs
#: higher for relevant and irrelevant images alike: on the tuning half the irrelevant pairs'
#: 90th percentile is 3.0 against 2.1. One curve for both would overrate a glossed query's
#: images and underrate an English query's. Fitted on their own pairs, each curve means the same
#: thing: about the share of relevant images among pairs with that score.
CONCEPT = Logistic(centre=3.581, width=0.707)
CONCEPT_GLOSSED = Logistic(centre=6.674, width=1.140)
#: Gate on how far a text stands out for the query: its cosine to the query, standardised by the
#: query's cosines to the ~1100 concept names. Related texts stand 4.5-7 spreads out, unrelated
#: ones below 0; a near-empty query ("x") is about as close to a config file as to anything (~2-3).
QUERY_SPECIFIC = Logistic(centre=3.5, width=0.4)
#: EfficientNet-Lite0 pooled features (post-ReLU6, so cosines are >= 0). Over the example
#: gallery: different images median 0.17, p90 0.46 (pages of text resemble each other, up to
#: 0.93); crops, flips, brightness changes and re-scales of one photo median 0.97, p10 0.86.
IMAGE_EMBEDDING = Logistic(centre=0.6, width=0.08)

#: Everyday sentences about nothing in particular (the text baselines), English then Chinese.
REFERENCE_SENTENCES_EN: tuple[str, ...] = (
    "The weather is nice today, with a light breeze in the afternoon.",
    "Please remember to bring your passport to the airport.",
    "The library is closed for renovation until next month.",
    "He spent the weekend repairing the old fence in the garden.",
    "Quarterly maintenance of the elevator is scheduled for Tuesday.",
    "The recipe needs two eggs, a cup of flour and some butter.",
    "Our team won the football match by two goals.",
    "The museum exhibits paintings from the nineteenth century.",
)
REFERENCE_SENTENCES_ZH: tuple[str, ...] = (
    "今天天气很好，下午有一点微风。",
    "请记得带上护照去机场。",
    "图书馆正在装修，下个月才开放。",
    "他周末在花园里修理旧篱笆。",
    "电梯的季度维护安排在星期二。",
    "这个食谱需要两个鸡蛋、一杯面粉和一些黄油。",
    "我们队以两球的优势赢得了足球比赛。",
    "博物馆展出十九世纪的油画。",
)


def median(values: "Iterable[float]") -> float:
    ordered = sorted(float(x) for x in values)
    if not ordered:
        return 0.0
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def text_kind(text: str) -> str:
    """Which reference baseline fits a text: ``text_en``, ``text_zh`` or ``text_mixed``.

    A few Chinese characters are enough to make e5 treat a text as Chinese-like (a bilingual
    sign scores like Chinese text against a Chinese query), so anything with both scripts is
    "mixed" and compared with bilingual references.
    """
    share = cjk_share(text)
    if share >= 0.95:
        return "text_zh"
    if share <= 0.02:
        return "text_en"
    return "text_mixed"


def cjk_share(text: str) -> float:
    """Share of CJK characters among the letters of ``text`` (0 for English, 1 for Chinese)."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")
    latin = sum(1 for ch in text if ch.isascii() and ch.isalpha())
    return cjk / (cjk + latin) if cjk + latin else 0.0


def noisy_or(weighted: Iterable[tuple[float, float]]) -> float:
    """``1 - prod(1 - w * s)`` over (weight, score) pairs with both in 0-1; 0 for no evidence."""
    miss = 1.0
    for weight, score in weighted:
        miss *= 1.0 - min(max(weight, 0.0), 1.0) * min(max(score, 0.0), 1.0)
    return 1.0 - miss


#: How much the second-best channel counts, relative to the best (the third counts DECAY**2...).
DECAY = 0.3


def combine(weighted: Iterable[tuple[float, float]], decay: float = DECAY) -> float:
    """Fuse channel scores: a noisy-OR over the weighted scores sorted best first, the k-th
    down-weighted by ``decay**k``.

    The best piece of evidence decides; agreeing evidence adds a little. A plain noisy-OR lets
    two mediocre, unrelated coincidences (a generic tag at 0.9 and an OCR line at 0.75) beat one
    excellent match, which is what users see as nonsense. Still monotonic in every channel: the
    sorted values never decrease when one input increases, and the noisy-OR of them is monotonic.
    """
    values = sorted((min(max(w, 0.0), 1.0) * min(max(v, 0.0), 1.0) for w, v in weighted), reverse=True)
    return noisy_or((decay**k, v) for k, v in enumerate(values))


def tag_confidence(prob: float, full: float = 0.3) -> float:
    """How much a tag's probability lets it speak for the image: ``sqrt(min(1, p / full))``.

    A tag the classifier gives 30 % or more counts fully; a 5 % runner-up still counts for 0.4,
    because ImageNet spreads one object over sibling classes.
    """
    return math.sqrt(min(1.0, max(prob, 0.0) / full))


def blend_lexical(semantic: float, lexical: float, pull: float = 0.4) -> float:
    """Let exact-term evidence raise a semantic score, never lower it.

    ``semantic + pull * max(0, lexical - semantic)``: a cross-language match (no shared terms)
    keeps its semantic score; a document that has the query's exact terms moves ``pull`` of the
    way towards its BM25 score. Monotonic in both arguments.
    """
    return semantic + pull * max(0.0, lexical - semantic)
