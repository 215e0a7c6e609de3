"""Chinese queries through their CC-CEDICT gloss: segmentation, cleaning, relevance, evidence."""

from __future__ import annotations

import numpy as np
import pytest

from lychee_rerank.backends.lite import calibration as cal
from lychee_rerank.backends.lite.concepts import SCENES, concept_weights
from lychee_rerank.backends.lite.glossary import gloss, has_chinese, segment, word_gloss
from lychee_rerank.inputs import Content

from .conftest import blank


def test_segmentation_takes_the_longest_dictionary_word():
    assert segment("夜晚的桥") == ["夜晚", "的", "桥"]
    assert segment("热气球") == ["热气球"]
    # An unknown character still moves the cursor on (no endless loop, nothing dropped).
    assert "".join(segment("㐀桥")) == "㐀桥"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("夜晚的桥", "night; bridge"),  # the particle 的 gives nothing
        ("热气球", "hot air balloon"),
        ("蓝天白云", "blue sky; white cloud"),
        ("pink 自行车 outdoors", "pink bicycle; bike outdoors"),  # Latin text is kept, in place
    ],
)
def test_gloss_of_a_query(query, expected):
    assert gloss(query) == expected


def test_no_gloss_without_chinese_words():
    assert gloss("a cup of coffee") is None
    assert gloss("") is None
    assert gloss("㐀") is None  # Chinese, but not in the dictionary
    assert not has_chinese("café ☕") and has_chinese("咖啡 coffee")


def test_senses_are_cleaned_and_the_common_reading_wins():
    # 鸟 has a common reading (niǎo, "bird") and a rare vulgar one: the one with more senses wins.
    assert word_gloss("鸟") == "bird"
    # Classifiers, cross-references and "Taiwan pr." notes are not translations.
    for word in ("马", "书", "蜗牛", "自行车"):
        text = word_gloss(word)
        assert text and "CL:" not in text and "Taiwan" not in text and "|" not in text, text
    assert word_gloss("了") is None and word_gloss("的") is None  # grammatical particles


@pytest.mark.parametrize(
    ("word", "imagenet_class"),
    [("斑马", 340), ("救护车", 407), ("雨伞", 879), ("蜗牛", 113)],
)
def test_the_gloss_brings_the_right_class_to_the_top(space, embedder, word, imagenet_class):
    """Everyday words that e5 ties to their English class only loosely (the class is not the
    query's best concept without the gloss) and that the gloss puts first."""
    alone = space.query_relevance(embedder.query(word))
    both = space.query_relevance(embedder.query(word), embedder.query(gloss(word)))

    def rank(relevance):
        return int((relevance[:1000] > relevance[imagenet_class]).sum())

    assert rank(alone) > 0
    assert rank(both) == 0


def test_glossed_relevance_stays_standardised(space, embedder):
    """The per-image reference assumes unit-spread relevance: the mix is standardised again."""
    both = space.query_relevance(embedder.query("斑马"), embedder.query("zebra"))
    assert both.mean() == pytest.approx(0.0, abs=1e-9)
    assert both.std() == pytest.approx(1.0, abs=1e-9)
    alone = space.query_relevance(embedder.query("zebra"))
    assert space.query_relevance(embedder.query("zebra"), None) == pytest.approx(alone)


def test_backend_reports_the_gloss_and_uses_its_own_curve(lite_backend, gallery_contents):
    cat = gallery_contents["cat"]
    zh = lite_backend.score_pairs(Content(text="猫"), [cat])[0]
    en = lite_backend.score_pairs(Content(text="cat"), [cat])[0]
    assert zh.evidence["query_gloss"] == word_gloss("猫")
    assert "query_gloss" not in en.evidence
    # Each kind of query goes through the curve fitted on its own kind of evidence.
    assert zh.evidence["channels"]["tags"] == pytest.approx(cal.CONCEPT_GLOSSED(zh.evidence["concept_evidence"]), abs=1e-3)
    assert en.evidence["channels"]["tags"] == pytest.approx(cal.CONCEPT(en.evidence["concept_evidence"]), abs=1e-3)
    assert zh.score > 0.5 and en.score > 0.5


def test_a_bare_colour_is_not_an_answer(lite_backend):
    """"red car" against a plain red picture: the colour matches fully, the subject not at all.
    A colour word qualifies the subject, so the picture stays low."""
    red = Content(image=blank((220, 20, 20)))
    for query in ("red car", "红色的汽车"):
        result = lite_backend.score_pairs(Content(text=query), [red])[0]
        assert result.evidence["query_colours"] == ["red"]
        assert result.score < 0.2, (query, result.evidence["channels"])


def test_glossed_curve_is_fitted_on_its_own_pairs():
    """Glossed relevance is more peaked, so its evidence runs higher: its curve sits to the right
    of the plain one (same probability needs more evidence)."""
    assert cal.CONCEPT_GLOSSED.centre > cal.CONCEPT.centre
    z = np.linspace(0, 10, 11)
    assert all(cal.CONCEPT_GLOSSED(x) <= cal.CONCEPT(x) for x in z)
    # and one image's weights are still a distribution over the concepts
    w = concept_weights({340: 0.9}, np.zeros(len(SCENES)))
    assert w.sum() == pytest.approx(1.0)
