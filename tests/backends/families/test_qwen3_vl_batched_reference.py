"""The Qwen3-VL plain batched scorer (the throughput benchmark's honest peer) is a correct scorer.

Its scores equal the engine's at batch sizes 1, 3 and 8 (padding and batch composition change
nothing); the engine is held to the official Qwen3-VL-Reranker scorer within 1e-5 in
``test_qwen3_vl.py``, so this scorer is too.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lychee_rerank import LycheeReranker
from lychee_rerank.inputs import Content, to_content
from lychee_rerank.testing.reference import Qwen3VLPlainBatchedScorer, engine_input

TOL = 1e-5


def _image(size: tuple[int, int], seed: int, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    x, y = np.linspace(0, 1, w)[None, :, None], np.linspace(0, 1, h)[:, None, None]
    base = 255 * (0.5 + 0.5 * np.sin(5 * x * rng.uniform(1, 3) + 3 * y * rng.uniform(1, 3) + rng.uniform(0, 6, 3)))
    return Image.fromarray(base.astype("uint8"), "RGB").convert(mode)


@pytest.fixture(scope="module")
def requests() -> list[tuple[dict, list[dict]]]:
    """(query, documents) pairs covering text, image, text+image, an empty side and odd sizes."""
    square, wide, tall = _image((256, 256), 1), _image((300, 120), 2), _image((90, 400), 3)
    grey, tiny = _image((200, 150), 4, "L"), _image((40, 30), 5)
    docs = [
        {"doc_text": "a black cat sleeping on a sofa"},
        {"doc_image": square},
        {"doc_text": "a red car", "doc_image": wide},
        {"doc_image": grey},
        {"doc_text": "一只黑猫趴在窗台上"},
        {"doc_image": tiny},
        {"doc_text": "coffee cup on a wooden table", "doc_image": tall},
        {"doc_text": " ".join(["the quick brown fox jumps over the lazy dog"] * 12)},
        {"doc_text": "blue sky"},
    ]
    return [
        ({"query_text": "a black cat"}, docs),
        ({"query_image": square}, [{"doc_text": "a cat"}, {"doc_image": wide}, {"doc_text": "sky", "doc_image": tall}]),
        ({"query_text": "this animal", "query_image": wide}, docs[:5]),
        ({"query_text": "an empty document"}, [{}, {"doc_text": "x"}]),
    ]


@pytest.fixture(scope="module")
def engine_scores(qwen3_vl_dir, requests) -> list[list[float]]:
    rr = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32")
    assert rr.info["family"] == "qwen3_vl"
    out = []
    for query, docs in requests:  # through the backend: the public API refuses an empty document
        results = rr.backend.score_pairs(_content(query, "query"), [_content(d, "doc") for d in docs], instruction=None)
        assert all(r.error is None for r in results), [r.error for r in results]
        out.append([r.score for r in results])
    return out


def _content(side: dict, name: str) -> Content:
    text, image = side.get(f"{name}_text"), side.get(f"{name}_image")
    return to_content(engine_input(text, image)) if text is not None or image is not None else Content()


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_batched_scorer_equals_the_engine(qwen3_vl_dir, requests, engine_scores, batch_size):
    scorer = Qwen3VLPlainBatchedScorer(qwen3_vl_dir, batch_size=batch_size)
    flat_pairs = [{**query, **doc} for query, docs in requests for doc in docs]
    got = scorer.score(flat_pairs)
    expected = [s for scores in engine_scores for s in scores]
    assert np.std(expected) > 0.05, expected  # scores spread: a constant scorer would fail
    assert got == pytest.approx(expected, abs=TOL)
