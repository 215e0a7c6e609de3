"""Packing for the model backend: pairs as token ids, batches under a token budget, padding.

Pure functions over token ids (no model, no processor): what decides which pairs share a
forward pass and how they are laid out. Scores do not depend on it (left padding puts every
row's answer slot last; see ``tests/backends/test_fast_paths.py``), speed does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import torch
from PIL import Image

from ..inputs import ImageSource
from ..results import PairScore


@dataclass
class Pair:
    """One pair ready for the model: token ids with image pads expanded, and its images."""

    index: int
    text: str
    images: list[Image.Image | ImageSource]
    """As stored: an :class:`~lychee_rerank.inputs.ImageSource` is decoded when its batch is preprocessed."""
    keys: list[Hashable]
    grids: list[tuple[int, int, int]]
    ids: list[int]
    truncated: bool
    result: PairScore | None = field(default=None)

    @property
    def length(self) -> int:
        return len(self.ids)


def expand_image_pads(ids: Sequence[int], image_token_id: int, counts: Sequence[int]) -> list[int]:
    """``ids`` with its i-th image placeholder repeated ``counts[i]`` times (one per visual token).

    Raises ``ValueError`` naming both numbers when the prompt holds another number of
    placeholders than there are images.
    """
    expanded: list[int] = []
    placeholders = 0
    for token in ids:
        if token == image_token_id:
            if placeholders < len(counts):
                expanded.extend([token] * counts[placeholders])
            placeholders += 1
        else:
            expanded.append(token)
    if placeholders != len(counts):
        raise ValueError(f"the prompt has {placeholders} image placeholders for {len(counts)} images")
    return expanded


def pack_batches(pairs: Sequence[Pair], batch_size: int, max_batch_tokens: int | None, offset: int = 0) -> list[list[Pair]]:
    """Sort by length and pack under ``batch_size`` pairs and ``max_batch_tokens`` padded tokens.

    ``offset`` tokens of each pair (a shared prefix already in the KV cache) cost nothing.
    """
    out: list[list[Pair]] = []
    current: list[Pair] = []
    longest = 0
    for pair in sorted(pairs, key=lambda p: p.length):
        cost = pair.length - offset
        new_longest = max(longest, cost)
        too_many = len(current) >= batch_size
        too_big = max_batch_tokens is not None and (len(current) + 1) * new_longest > max_batch_tokens
        if current and (too_many or too_big):
            out.append(current)
            current, new_longest = [], cost
        current.append(pair)
        longest = new_longest
    if current:
        out.append(current)
    return out


def pack_ids(batch: Sequence[Pair], pad_id: int, prefix: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask laid out as [shared prefix | left-padded rest].

    Left padding puts every row's answer slot at the last position; with a prefix, the
    padding sits between the prefix (in the KV cache) and each row's own tokens.
    """
    width = max(pair.length for pair in batch) - prefix
    ids = torch.full((len(batch), prefix + width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, pair in enumerate(batch):
        ids[row, :prefix] = torch.tensor(pair.ids[:prefix], dtype=torch.long)
        mask[row, :prefix] = 1
        start = prefix + width - (pair.length - prefix)
        ids[row, start:] = torch.tensor(pair.ids[prefix:], dtype=torch.long)
        mask[row, start:] = 1
    return ids, mask


def shared_prefix_length(pairs: Sequence[Pair], allowed_image_tokens: int, image_token_id: int) -> int:
    """Tokens every pair starts with, keeping each pair's last token and no document image.

    The prefix may hold the query's images only (``allowed_image_tokens`` of them): identical
    pad ids of documents' images would match token-wise while their features differ.
    """
    first = pairs[0].ids
    length = min(p.length for p in pairs) - 1  # every pair keeps at least its last token
    for pair in pairs[1:]:
        ids = pair.ids
        n = 0
        limit = min(length, len(ids))
        while n < limit and ids[n] == first[n]:
            n += 1
        length = n
    seen = 0
    for j in range(length):
        if first[j] == image_token_id:
            seen += 1
            if seen > allowed_image_tokens:
                return j - 1  # also leave the document's <|vision_start|> to the suffix
    return length
