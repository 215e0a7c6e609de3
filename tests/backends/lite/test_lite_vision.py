"""EfficientNet-Lite0 tags, coarse groups and embeddings on real photos."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np

from lychee_rerank.backends.lite.taxonomy import GROUPS
from lychee_rerank.backends.lite.vision import group_tags, imagenet_classes, top_tags

COFFEE_LIKE = {"espresso", "cup", "coffee mug", "coffeepot", "espresso maker"}


def test_class_names_ship_as_a_data_file_with_attribution():
    data = json.loads(resources.files("lychee_rerank").joinpath("data/imagenet_classes.json").read_text("utf-8"))
    assert len(data["classes"]) == 1000 == len(set(data["classes"]))
    assert "ImageNet" in data["attribution"] and data["source"] and data["license"]
    names = imagenet_classes()
    assert names[967] == "espresso" and names[281] == "tabby"


def test_coffee_photo_is_tagged_with_a_coffee_like_class(analyses):
    coffee = analyses["coffee"]
    top3 = {t.label for t in coffee.tags[:3]}
    assert top3 & COFFEE_LIKE, coffee.tags
    assert coffee.tags[0].prob > 0.5
    groups = {g.label: g.prob for g in coffee.groups}
    assert groups.get("coffee 咖啡", 0) > 0.5, groups


def test_cat_photo_gets_the_cat_group_even_when_breeds_split_the_probability(analyses):
    cat = analyses["cat"]
    assert all(t.prob < 0.9 for t in cat.tags)  # the breeds share the mass ...
    assert cat.groups[0].label == "cat 猫" and cat.groups[0].prob > 0.8  # ... the group has it


def test_probabilities_are_sorted_and_bounded(analyses):
    for analysis in analyses.values():
        probs = [t.prob for t in analysis.tags]
        assert probs == sorted(probs, reverse=True)
        assert all(0 < p <= 1 for p in probs)
        assert all(0 < g.prob <= 1.0001 for g in analysis.groups)


def test_embedding_is_unit_length_and_recognises_the_same_photo(lite_backend, gallery, analyses):
    from lychee_rerank.inputs import to_content

    emb = {name: a.embedding for name, a in analyses.items()}
    assert all(e.shape == (1280,) and abs(float(np.linalg.norm(e)) - 1) < 1e-2 for e in emb.values())
    cat = gallery["cat"]
    crop = to_content(cat.crop((60, 20, 400, 280)).transpose(0))  # a flipped crop of the same cat
    crop_emb = lite_backend.analyse(crop)[0].embedding
    same = float(crop_emb @ emb["cat"])
    others = [float(crop_emb @ e) for name, e in emb.items() if name != "cat"]
    assert same > 0.8 > max(others)


def test_top_tags_and_groups_follow_the_probabilities():
    probs = np.zeros(1000)
    probs[[281, 282, 285]] = [0.3, 0.3, 0.3]  # three cat classes
    probs[967] = 0.1
    tags = top_tags(probs, k=5)
    assert [t.index for t in tags] == [281, 282, 285, 967]
    groups = group_tags(probs)
    assert groups[0].label == "cat 猫" and abs(groups[0].prob - 0.9) < 1e-6


def test_taxonomy_groups_point_at_real_classes():
    names = imagenet_classes()
    assert len({g.label for g in GROUPS}) == len(GROUPS)
    for group in GROUPS:
        assert group.classes and all(0 <= i < 1000 for i in group.classes), group
        assert any("\u4e00" <= ch <= "\u9fff" for ch in group.zh), group
    cat = next(g for g in GROUPS if g.en == "cat")
    assert {names[i] for i in cat.classes} >= {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}
