"""Packing is pure arithmetic over token ids: checked here without a model."""

from __future__ import annotations

import pytest

from lychee_rerank.backends.packing import Pair, expand_image_pads, pack_batches, pack_ids, shared_prefix_length

IMG = 99


def pair(index: int, ids: list[int]) -> Pair:
    return Pair(index=index, text="", images=[], keys=[], grids=[], ids=ids, truncated=False)


def test_batches_respect_pair_and_token_budgets_and_sort_by_length():
    pairs = [pair(i, [1] * n) for i, n in enumerate([5, 1, 3, 8, 2])]
    assert [[p.index for p in b] for b in pack_batches(pairs, 2, None)] == [[1, 4], [2, 0], [3]]
    # 3 rows x 5 padded tokens = 15 > 12: the third pair starts a new batch.
    assert [[p.index for p in b] for b in pack_batches(pairs, 8, 12)] == [[1, 4, 2], [0], [3]]
    # With a 2-token shared prefix those tokens are free.
    assert [[p.index for p in b] for b in pack_batches(pairs, 8, 12, offset=2)] == [[1, 4, 2, 0], [3]]


def test_ids_are_left_padded_after_the_shared_prefix():
    ids, mask = pack_ids([pair(0, [7, 8, 1]), pair(1, [7, 8, 1, 2, 3])], pad_id=0, prefix=2)
    assert ids.tolist() == [[7, 8, 0, 0, 1], [7, 8, 1, 2, 3]]
    assert mask.tolist() == [[1, 1, 0, 0, 1], [1, 1, 1, 1, 1]]


def test_the_shared_prefix_stops_before_a_document_image():
    a = pair(0, [1, 2, 3, 50, IMG, IMG, 4])
    b = pair(1, [1, 2, 3, 50, IMG, IMG, 5])
    assert shared_prefix_length([a, b], allowed_image_tokens=2, image_token_id=IMG) == 6
    assert shared_prefix_length([a, b], allowed_image_tokens=0, image_token_id=IMG) == 3  # vision_start (50) left out


def test_image_pads_expand_per_image_and_mismatches_are_reported():
    assert expand_image_pads([1, IMG, 2, IMG, 3], IMG, [2, 1]) == [1, IMG, IMG, 2, IMG, 3]
    with pytest.raises(ValueError, match="2 image placeholders for 1 images"):
        expand_image_pads([1, IMG, 2, IMG, 3], IMG, [1])
