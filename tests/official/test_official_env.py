"""The official Qwen3-VL-Reranker scorer runs (transformers 4.57.3) on the tiny checkpoint, and the
checkpoint means the same on transformers 5.x: the ground the Qwen3-VL parity tests stand on."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lychee_rerank.testing.tiny_qwen3_vl import RERANKER_DEFAULT_INSTRUCTION, RERANKER_SYSTEM
from tests.official.harness import run_official_qwen3_vl

MAX_LENGTH = 10240  # the official scorer's default max_length
#: ``<|im_end|>\n<|im_start|>assistant\n``: the five ids the official truncation always keeps.
PROMPT_TAIL = [151645, 198, 151644, 77091, 198]
IMAGE_PAD = 151655


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Small drawn PNGs: gradients and shapes, several sizes, a 300x120, a greyscale 'L', an RGBA."""
    root = tmp_path_factory.mktemp("official-images")
    out = {}
    yy, xx = np.mgrid[0:64, 0:64]
    out["gradient"] = Image.fromarray(np.stack([xx * 4, yy * 4, 255 - xx * 2], -1).astype(np.uint8), "RGB")
    yy, xx = np.mgrid[0:120, 0:300]
    wide = np.stack([xx * 255 // 299, 255 - yy * 2, (xx + yy) % 256], -1).astype(np.uint8)
    out["wide"] = Image.fromarray(wide, "RGB")  # non-square 300x120
    grey = Image.new("L", (80, 80), 30)
    ImageDraw.Draw(grey).ellipse((10, 10, 70, 70), fill=220)
    out["grey"] = grey
    shapes = Image.new("RGB", (200, 150), (250, 245, 230))
    draw = ImageDraw.Draw(shapes)
    draw.rectangle((20, 20, 90, 120), fill=(200, 30, 30))
    draw.polygon([(120, 130), (190, 130), (155, 30)], fill=(30, 60, 200))
    out["shapes"] = shapes
    rgba = Image.new("RGBA", (90, 50), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).rectangle((10, 5, 80, 45), fill=(20, 180, 60, 160))
    out["rgba"] = rgba
    paths = {}
    for name, img in out.items():
        paths[name] = str(root / f"{name}.png")
        img.save(paths[name])
    return paths


def _calls(images: dict[str, str]) -> list[dict]:
    """A dozen varied pairs over the modalities, an empty document and two > 10,240-token documents."""
    long_text = " ".join(f"word{i % 97} token" for i in range(6000))  # ~18k tokens
    return [
        {"query": {"text": "a black cat on a window sill"}, "documents": [
            {"text": "a black cat"}, {"text": "coffee cup on a table"}, {"text": "一只黑猫趴在窗台上"},
            {"text": "the quick brown fox jumps over the lazy dog"},
        ]},
        {"instruction": "Retrieve images that match the text.", "query": {"text": "a red square"}, "documents": [
            {"image": images["shapes"]}, {"image": images["wide"]}, {"image": images["grey"]}, {"image": images["rgba"]},
        ]},
        {"query": {"image": images["gradient"]}, "documents": [
            {"text": "a colour gradient"}, {"text": "red car 1 2 3"},
        ]},
        {"query": {"text": "a grey circle", "image": images["grey"]}, "documents": [
            {"image": images["gradient"]}, {"image": images["shapes"], "text": "shapes"},
        ]},
        {"query": {"text": "anything"}, "documents": [{}, {"text": long_text}, {"text": long_text, "image": images["wide"]}]},
    ]


@pytest.fixture(scope="module")
def official(official_env: Path, qwen3_vl_dir: Path, images: dict[str, str]) -> dict:
    return run_official_qwen3_vl(qwen3_vl_dir, _calls(images), return_inputs=True)


def test_official_scorer_runs_on_4_57_3_and_scores_spread(official: dict) -> None:
    scores = [s for call in official["scores"] for s in call]
    assert [len(c) for c in official["scores"]] == [4, 4, 2, 2, 3]
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    short = scores[:-2]  # the two long documents aside
    assert statistics.pstdev(short) > 0.05, short
    assert sum(0.02 < s < 0.98 for s in short) >= 2 * len(short) // 3, short  # not pinned at 0 or 1
    assert sum(s < 0.5 for s in short) >= 2 and sum(s > 0.5 for s in short) >= 2, short
    with_image = [*official["scores"][1], *official["scores"][2], *official["scores"][3]]
    assert statistics.pstdev(with_image) > 0.02, with_image  # image pairs are not pinned near 0


def test_official_truncation_keeps_special_ids_and_the_prompt_tail(official: dict) -> None:
    empty, long_text, long_with_image = official["inputs"][4]
    assert len(empty["input_ids"]) < 200 and empty["image_grid_thw"] == []
    for pair in (long_text, long_with_image):
        ids = pair["input_ids"]
        assert len(ids) == MAX_LENGTH + 5  # MAX_LENGTH before the tail, then the 5 tail ids
        assert ids[-5:] == PROMPT_TAIL
    # The image's pad tokens are special ids, so they all survive: text is what gets cut.
    (t, h, w), = long_with_image["image_grid_thw"]
    assert long_with_image["input_ids"].count(IMAGE_PAD) == t * h * w // 4


def _official_messages(instruction: str, query: list[dict], document: list[dict]) -> list[dict]:
    """The official scorer's ``format_mm_instruction`` output, spelled out."""
    return [
        {"role": "system", "content": [{"type": "text", "text": RERANKER_SYSTEM}]},
        {"role": "user", "content": [
            {"type": "text", "text": "<Instruct>: " + instruction},
            {"type": "text", "text": "<Query>:"}, *query, {"type": "text", "text": "\n<Document>:"}, *document,
        ]},
    ]


def _official_image(path: str) -> Image.Image:
    """What qwen_vl_utils (``image_patch_size=16``) makes of an image before the processor sees it:
    RGBA onto white, anything else ``convert("RGB")``, sides rounded to multiples of 32 within the
    scorer's 4..1800-token budget, PIL's default resize."""
    with Image.open(path) as img:
        if img.mode == "RGBA":
            rgb = Image.new("RGB", img.size, (255, 255, 255))
            rgb.paste(img, mask=img.split()[3])
        else:
            rgb = img.convert("RGB")
    w, h = rgb.size
    hb, wb = max(32, round(h / 32) * 32), max(32, round(w / 32) * 32)
    if hb * wb < 4 * 32 * 32:
        beta = math.sqrt(4 * 32 * 32 / (h * w))
        hb, wb = math.ceil(h * beta / 32) * 32, math.ceil(w * beta / 32) * 32
    assert hb * wb <= 1800 * 32 * 32  # the test images stay under the budget
    return rgb.resize((wb, hb))


def test_checkpoint_loads_on_transformers_5_and_scores_like_the_official(
    official: dict, qwen3_vl_dir: Path, images: dict[str, str]
) -> None:
    import torch
    import transformers
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    assert transformers.__version__.startswith("5.")
    processor = AutoProcessor.from_pretrained(qwen3_vl_dir, padding_side="left")
    model = Qwen3VLForConditionalGeneration.from_pretrained(qwen3_vl_dir, dtype=torch.float32).eval()
    tok = processor.tokenizer
    assert tok.all_special_ids == [151645, 151643, 151644, *range(151646, 151657)]
    w = model.lm_head.weight
    head = w[tok.get_vocab()["yes"]] - w[tok.get_vocab()["no"]]

    def score(messages: list[dict], pictures: list[Image.Image], expected_ids: list[int]) -> float:
        text = processor.apply_chat_template([messages], tokenize=False, add_generation_prompt=True)
        inputs = processor(text=text, images=pictures or None, do_resize=False, return_tensors="pt")
        assert inputs["input_ids"][0].tolist() == expected_ids
        with torch.no_grad():
            hidden = model.model(**inputs).last_hidden_state[0, -1]
        return torch.sigmoid(hidden @ head).item()

    text_pair = _official_messages(
        RERANKER_DEFAULT_INSTRUCTION, [{"type": "text", "text": "a black cat on a window sill"}],
        [{"type": "text", "text": "a black cat"}],
    )
    got = score(text_pair, [], official["inputs"][0][0]["input_ids"])
    assert got == pytest.approx(official["scores"][0][0], abs=1e-5)
    # Image documents (RGB, the 300x120, greyscale 'L', RGBA): the vision tower agrees too.
    for k, name in enumerate(["shapes", "wide", "grey", "rgba"]):
        picture = _official_image(images[name])
        pair = _official_messages(
            "Retrieve images that match the text.", [{"type": "text", "text": "a red square"}],
            [{"type": "image", "image": picture}],
        )
        got = score(pair, [picture], official["inputs"][1][k]["input_ids"])
        assert got == pytest.approx(official["scores"][1][k], abs=1e-5), name


def test_checkpoint_layout_is_the_published_one(qwen3_vl_dir: Path) -> None:
    from safetensors import safe_open

    names = {p.name for p in qwen3_vl_dir.iterdir()}
    assert names == {
        "config.json", "generation_config.json", "preprocessor_config.json", "video_preprocessor_config.json",
        "chat_template.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
    }
    config = json.loads((qwen3_vl_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen3VLForConditionalGeneration"] and config["model_type"] == "qwen3_vl"
    assert config["vision_config"]["patch_size"] == 16 and config["vision_config"]["deepstack_visual_indexes"]
    assert config["vision_config"]["out_hidden_size"] == config["text_config"]["hidden_size"]
    with safe_open(str(qwen3_vl_dir / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
    assert "model.language_model.embed_tokens.weight" in keys and "lm_head.weight" not in keys  # tied
    assert any(k.startswith("model.visual.deepstack_merger_list.") for k in keys)
    tok_config = json.loads((qwen3_vl_dir / "tokenizer_config.json").read_text())
    assert "chat_template" not in tok_config and tok_config["eos_token"] == "<|im_end|>"
    decoder = tok_config["added_tokens_decoder"]
    assert decoder["151667"]["content"] == "<think>" and not decoder["151667"]["special"]
