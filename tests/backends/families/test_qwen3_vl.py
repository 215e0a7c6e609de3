"""Qwen3-VL-Reranker through the engine equals its official scorer, run unchanged (FP32, 1e-5).

The reference is QwenLM/Qwen3-VL-Embedding's ``src/models/qwen3_vl_reranker.py``, vendored
unchanged in ``tests/official`` and run on transformers 4.57.3 in its own environment
(``scripts/official_env.sh``). The engine runs with its per-family defaults and no extra
arguments: pixel budget, default instruction, "NULL" for an empty side, 10,240-token budget.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lychee_rerank import LycheeReranker
from lychee_rerank.inputs import Content
from tests.official.harness import official_qwen3_vl_scores, run_official_qwen3_vl

from .parity import assert_spread

TOL = 1e-5


def _draw(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    base = (255 * (0.5 + 0.5 * np.sin(6 * x * rng.uniform(1, 3) + 4 * y * rng.uniform(1, 3) + rng.uniform(0, 6, 3))))
    image = Image.fromarray(base.astype("uint8"), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, w - 10)), int(rng.integers(0, h - 10))
        draw.ellipse((x0, y0, x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))),
                     fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    image.convert(mode).save(path)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("q3-images")
    return {
        "square": _draw(d / "square.png", (256, 256), 1),
        "wide": _draw(d / "wide.png", (300, 120), 2),
        "tall": _draw(d / "tall.jpg", (90, 400), 3),
        "grey": _draw(d / "grey.png", (200, 150), 4, "L"),
        "big": _draw(d / "big.png", (1500, 1400), 5),  # over 1800·32² pixels: downscaled
        "tiny": _draw(d / "tiny.png", (40, 30), 6),  # under 4·32²: upscaled
    }


def _engine_side(side: dict):
    """An official-format side as the engine's input: text, an image path, or both."""
    text, image = side.get("text"), side.get("image")
    if text is not None and image is not None:
        return {"text": text, "image": image}
    return Path(image) if image is not None else text


LONG = " ".join(f"word{i % 97} plain text, number {i}." for i in range(2600))  # ~> 10,240 tokens


def _calls(images: dict[str, Path]) -> list[dict]:
    im = {k: str(v) for k, v in images.items()}
    docs = [
        {"text": "a black cat sleeping on a sofa"},                      # text -> text
        {"image": im["square"]},                                          # text -> image
        {"text": "a red car", "image": im["wide"]},                       # text -> text+image
        {"image": im["grey"]},
        {"text": "一只黑猫趴在窗台上"},
        {"image": im["big"]},
        {"image": im["tiny"]},
        {"text": "coffee cup on a wooden table", "image": im["tall"]},
        {"text": "the quick brown fox jumps over the lazy dog"},
    ]
    return [
        {"query": {"text": "a black cat"}, "documents": docs},                                   # default instruction
        {"instruction": "Find the photo that shows the object.", "query": {"text": "red car"}, "documents": docs},
        {"query": {"image": im["square"]}, "documents": [{"text": "a cat"}, {"text": "blue sky"}, {"image": im["wide"]}]},
        {"query": {"text": "a cat", "image": im["wide"]}, "documents": [{"image": im["square"]}, {"image": im["tall"]},
                                                                         {"text": "x", "image": im["grey"]}]},
    ]


LONG_CALL = {"query": {"text": "what is in the picture?"}, "documents": [{"text": LONG}, {"text": "short"}]}


@pytest.fixture(scope="module")
def official(qwen3_vl_dir, official_env, images) -> list[list[float]]:
    return official_qwen3_vl_scores(qwen3_vl_dir, _calls(images))


def _engine_scores(rr: LycheeReranker, call: dict, batch_size: int) -> list[float]:
    docs = [_engine_side(d) for d in call["documents"]]
    results = rr.rerank(_engine_side(call["query"]), docs, instruction=call.get("instruction"), batch_size=batch_size)
    assert all(r.error is None for r in results), [r.error for r in results]
    return [r.score for r in sorted(results, key=lambda r: r.index)]


def test_the_official_scores_spread(official):
    assert_spread(official)  # an engine returning 0 would fail


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_engine_equals_the_official_scorer_cold_and_warm(qwen3_vl_dir, official, images, batch_size):
    rr = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32")
    assert rr.info["family"] == "qwen3_vl"
    calls = _calls(images)
    for run in ("cold", "warm"):
        for call, expected in zip(calls, official):
            got = _engine_scores(rr, call, batch_size)
            assert got == pytest.approx(expected, abs=TOL), (run, call["query"], batch_size)
    stats = rr.backend.stats
    assert stats["vision_cache_hits"] > 0 and stats["prefix_batches"] > 0, stats


def test_the_long_document_is_cut_by_the_official_rule(qwen3_vl_dir, official_env):
    official = run_official_qwen3_vl(qwen3_vl_dir, [LONG_CALL], return_inputs=True)
    rr = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32")
    query = LONG_CALL["query"]["text"]
    results = sorted(rr.rerank(query, [LONG, "short"], batch_size=2), key=lambda r: r.index)
    assert results[0].truncated and not results[1].truncated
    pair = rr.backend.prepare(0, Content(text=query), Content(text=LONG), None)
    assert len(pair.ids) == 10240 + 5  # the whole budget, plus the five ids always kept
    assert pair.ids == official["inputs"][0][0]["input_ids"]  # the very ids the official scorer kept
    # Same ids, same arithmetic; over 10,245 positions the multi-threaded FP32 reductions of two
    # processes can still round apart run to run (0 here; 1.08e-5 once under heavy load): 2e-5.
    assert [r.score for r in results] == pytest.approx(official["scores"][0], abs=2 * TOL)


def test_an_empty_side_is_null_as_in_the_official_scorer(qwen3_vl_dir, official_env, images):
    # (An empty query is not scored by the official scorer: its process() returns [] for it.)
    expected = official_qwen3_vl_scores(qwen3_vl_dir, [
        {"query": {"text": "a black cat"}, "documents": [{}, {"text": "NULL"}]},
        {"query": {"image": str(images["square"])}, "documents": [{}, {"text": "a cat"}]},
    ])
    rr = LycheeReranker.from_pretrained(qwen3_vl_dir, device="cpu", dtype="float32")
    backend = rr.backend
    got = [p.score for p in backend.score_pairs(Content(text="a black cat"), [Content(), Content(text="NULL")], instruction=None)]
    assert got == pytest.approx(expected[0], abs=TOL) and got[0] == pytest.approx(got[1], abs=1e-6)
    got = [p.score for p in backend.score_pairs(rr.to_query(images["square"]), [Content(), Content(text="a cat")], instruction=None)]
    assert got == pytest.approx(expected[1], abs=TOL)
    assert "<Query>:NULL\n<Document>:" in backend.render_prompt(Content(), Content(text="d"), None)
