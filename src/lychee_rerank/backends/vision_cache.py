"""Byte-bounded LRU cache of vision-tower outputs.

Galleries get re-ranked under many queries (UI, service); the vision tower's output for an
image does not depend on the query, so it is computed once per (image content, pixel budget).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import torch

from ..config import DEFAULT_VISION_CACHE_BYTES


def tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class VisionCache:
    """Entries are whatever one image's features are for its family (a tensor, or a tuple of them,
    e.g. merged embeddings plus per-layer features); ``sizeof`` counts their bytes.
    Hits and misses are counted by the caller (``backend.stats``)."""

    def __init__(self, max_bytes: int = DEFAULT_VISION_CACHE_BYTES, sizeof: Callable[[Any], int] = tensor_bytes) -> None:
        self.max_bytes = max_bytes
        self._size = sizeof
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any) -> None:
        size = self._size(value)
        if size > self.max_bytes:
            return  # never evict everything for one oversized entry
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= self._size(old)
            self._items[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= self._size(evicted)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
