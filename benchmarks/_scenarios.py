"""The throughput scenarios, shared by ``throughput.py`` (CPU) and ``gpu.py`` (the GPU run-book).

A scenario is a list of requests (query + documents). Each request is given twice: as the
reference scorers' keyword arguments and as the engine's inputs, built from the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from lychee_rerank.testing.reference import engine_input

WORDS = "cat dog coffee car rocket astronaut window park table red black white sofa sun horse coins clock".split()


@dataclass
class Request:
    query_text: str | None = None
    query_image: Image.Image | None = None
    docs: list[dict[str, Any]] = field(default_factory=list)  # each: doc_text and/or doc_image

    def reference_pairs(self) -> list[dict[str, Any]]:
        return [{"query_text": self.query_text, "query_image": self.query_image, **d} for d in self.docs]

    def engine_query(self) -> Any:
        return engine_input(self.query_text, self.query_image)

    def engine_docs(self) -> list[Any]:
        return [engine_input(d.get("doc_text"), d.get("doc_image")) for d in self.docs]


@dataclass
class Scenario:
    name: str
    requests: list[Request]
    warm: bool = False  # the engine ranked the same documents once before (vision cache warm)

    def reference_pairs(self) -> list[dict[str, Any]]:
        """Every pair of every request, in order, as the reference scorers take them."""
        return [p for r in self.requests for p in r.reference_pairs()]



def real_photos(n: int, max_side: int | None = None) -> list[Image.Image]:
    """``n`` real photos from the scikit-image wheel: the 17 of the example gallery, then crops.

    Later passes take different crops (corners, centre) so that every image is distinct and
    sizes vary the way a real gallery's do. ``max_side`` shrinks them (CPU smoke runs).
    """
    from lychee_rerank.demo.gallery import PHOTOS, _load_photo

    originals = [_load_photo(p.loader) for p in PHOTOS]
    crops = [(0, 0, 1, 1), (0.15, 0.15, 0.85, 0.85), (0, 0, 0.6, 0.7), (0.4, 0.3, 1, 1), (0.1, 0.4, 0.7, 1)]
    out = []
    for k in range(n):
        image = originals[k % len(originals)]
        x0, y0, x1, y1 = crops[(k // len(originals)) % len(crops)]
        w, h = image.size
        image = image.crop((int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))
        if max_side and max(image.size) > max_side:
            image.thumbnail((max_side, max_side))
        out.append(image)
    return out


def sentence(rng: np.random.Generator, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(lo, hi))))


def build_scenarios(
    *, n_long: int, n_photos: int, n_iq: int, n_mixed: int, n_requests: int, docs_per_request: int,
    long_words: int = 900, photo_side: int | None = None, seed: int = 0,
) -> list[Scenario]:
    rng = np.random.default_rng(seed)
    photos = real_photos(n_photos, photo_side)
    texts = [sentence(rng, 8, 40) for _ in range(max(n_long, n_iq, n_mixed, docs_per_request))]
    long_query = " ".join(rng.choice(WORDS, size=long_words))
    text_docs = [{"doc_text": t} for t in texts]
    photo_docs = [{"doc_image": p} for p in photos]
    mixed = []
    for i in range(n_mixed):  # texts, photos and captioned photos, interleaved
        kind = i % 3
        if kind == 0:
            mixed.append({"doc_text": texts[i]})
        elif kind == 1:
            mixed.append({"doc_image": photos[i % len(photos)]})
        else:
            mixed.append({"doc_text": texts[i][:60], "doc_image": photos[(i * 7) % len(photos)]})
    concurrent = [
        Request(query_text=sentence(rng, 3, 10), docs=[{"doc_text": sentence(rng, 8, 40)} for _ in range(docs_per_request)])
        for _ in range(n_requests)
    ]
    return [
        Scenario(f"long query ({long_words} words) x texts", [Request(query_text=long_query, docs=text_docs[:n_long])]),
        Scenario("short query x real photos", [Request(query_text="a black cat on a sofa", docs=photo_docs)]),
        Scenario("same photos re-queried", [Request(query_text="a red rocket in the sky", docs=photo_docs)], warm=True),
        Scenario("image query x texts", [Request(query_image=photos[2], docs=text_docs[:n_iq])]),
        Scenario("mixed docs, text+image query", [Request(query_text="this animal", query_image=photos[2], docs=mixed)]),
        Scenario(f"{n_requests} concurrent requests, own queries", concurrent),
    ]
