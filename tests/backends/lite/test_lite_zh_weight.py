"""The classes' Chinese names count less for a query without Chinese characters."""

from __future__ import annotations

import numpy as np
import pytest

from lychee_rerank.backends.lite.concepts import (
    SCENES,
    ZH_WEIGHT,
    ZH_WEIGHT_NO_CJK,
    concept_weights,
    imagenet_names_zh,
    zh_weight_for,
)
from lychee_rerank.backends.lite.taxonomy import GROUPS

from .conftest import blank

OTTER = 360


def test_query_language_picks_the_weight():
    assert ZH_WEIGHT_NO_CJK < ZH_WEIGHT
    assert zh_weight_for("otter swimming") == ZH_WEIGHT_NO_CJK
    assert zh_weight_for("") == ZH_WEIGHT_NO_CJK
    assert zh_weight_for(None) == ZH_WEIGHT_NO_CJK
    assert zh_weight_for("水獭") == ZH_WEIGHT
    assert zh_weight_for("可爱的 otter") == ZH_WEIGHT
    # Japanese kana alone are not Chinese characters; a kanji is.
    assert zh_weight_for("カワウソ") == ZH_WEIGHT_NO_CJK


@pytest.mark.parametrize("weight", [0.0, ZH_WEIGHT_NO_CJK, ZH_WEIGHT])
def test_chinese_name_weight_is_relative_to_its_class(weight):
    w = concept_weights({OTTER: 0.64}, np.zeros(len(SCENES)), weight)
    zh = w[1000 + len(GROUPS) + len(SCENES) :]
    named = list(imagenet_names_zh())
    assert zh[named.index(OTTER)] == pytest.approx(weight * w[OTTER])
    assert w.sum() == pytest.approx(1.0)


def test_default_is_the_chinese_query_weight():
    a = concept_weights({OTTER: 0.64}, np.zeros(len(SCENES)))
    b = concept_weights({OTTER: 0.64}, np.zeros(len(SCENES)), ZH_WEIGHT)
    np.testing.assert_array_equal(a, b)


def test_backend_uses_the_query_language(lite_backend, space, embedder):
    """An English and a Chinese query over the same image read different concept weights: the
    evidence the backend reports equals the one computed with the matching weight."""
    from lychee_rerank.backends.lite.glossary import gloss
    from lychee_rerank.inputs import to_content

    doc = to_content(blank((90, 140, 200), (64, 48)))
    analysis, _ = lite_backend.analyse(doc)
    for text in ("otter", "水獭"):
        got = lite_backend.score_pairs(to_content(text), [doc])[0].evidence["concept_evidence"]
        w = concept_weights(dict(analysis.class_probs), analysis.scenes, zh_weight_for(text))
        glossed = gloss(text)  # the Chinese query is matched through its English gloss as well
        assert (glossed is None) == (text == "otter")
        gloss_vector = embedder.query(glossed) if glossed else None
        relevance = space.query_relevance(embedder.query(text), gloss_vector)
        assert got == pytest.approx(space.evidence(w, relevance, space.image_reference(w)), abs=1e-4)
