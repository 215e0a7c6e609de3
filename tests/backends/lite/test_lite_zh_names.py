"""Chinese names of ImageNet classes (CC-CEDICT, built by scripts/build_imagenet_zh.py) as concepts."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from lychee_rerank.backends.lite.concepts import (
    SCENES,
    ZH_WEIGHT,
    concept_labels,
    concept_weights,
    imagenet_names_zh,
)
from lychee_rerank.backends.lite.taxonomy import GROUPS

#: Classes with no hand-made group whose Chinese name is a word people type.
CLASSES = {"pelican": 144, "otter": 360, "mantis": 315, "syringe": 845, "African chameleon": 47, "balloon": 417}


def test_names_are_chinese_words_after_the_core_vocabulary(space):
    names = imagenet_names_zh()
    assert len(names) > 500 and all(0 <= i < 1000 for i in names)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,}", w) for w in names.values())
    core = 1000 + len(GROUPS) + len(SCENES)
    assert space.core == core and space.core_vectors.shape[0] == core
    assert concept_labels()[core:] == list(names.values())
    assert set(CLASSES.values()) <= set(names)


def test_a_named_class_speaks_through_its_chinese_name_too():
    index = CLASSES["otter"]
    w = concept_weights({index: 0.64, 0: 0.04}, np.zeros(len(SCENES)))
    named = list(imagenet_names_zh())
    zh = w[1000 + len(GROUPS) + len(SCENES) :]
    assert zh[named.index(index)] == pytest.approx(ZH_WEIGHT * w[index])
    assert np.count_nonzero(zh) == (1 if 0 not in named else 2)


def test_chinese_queries_find_their_class(space, embedder):
    """A constructed gallery of one-class images: each class's Chinese name, typed as a query,
    ranks that class's image first; with the Chinese names silenced (weight 0) fewer do."""
    images = {name: concept_weights({i: 0.9}, np.zeros(len(SCENES))) for name, i in CLASSES.items()}

    def wins() -> int:
        won = 0
        for name, index in CLASSES.items():
            relevance = space.query_relevance(embedder.query(imagenet_names_zh()[index]))
            ev = {k: space.evidence(w, relevance, space.image_reference(w)) for k, w in images.items()}
            won += max(ev, key=ev.get) == name
        return won

    with_names = wins()
    images = {name: concept_weights({i: 0.9}, np.zeros(len(SCENES)), 0.0) for name, i in CLASSES.items()}
    without = wins()
    assert with_names == len(CLASSES)
    assert without < with_names


def test_build_script_prefers_first_senses_and_falls_back_to_the_head_noun():
    sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))
    from build_imagenet_zh import _candidates

    index = {"crane": [(0, "起重机"), (1, "吊车")], "chameleon": [(0, "变色龙")], "pick": [(2, "拨子")]}
    assert _candidates(index, "crane") == ["起重机"]
    assert _candidates(index, "African chameleon") == ["变色龙"]
    assert _candidates(index, "pick") == ["拨子"]
    assert _candidates(index, "brown wooden chameleon") == []
