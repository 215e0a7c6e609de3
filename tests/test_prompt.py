"""The published lychee prompt, exactly, and the instruction templates."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from lychee_rerank.inputs import Content
from lychee_rerank.prompt import (
    DEFAULT_INSTRUCTION,
    SYSTEM_PROMPT,
    build_messages,
    builtin_templates,
    load_templates,
    resolve_instruction,
)


def test_rendered_prompt_is_the_published_format(reranker):
    image = Image.new("RGB", (28, 28))
    prompt = build_messages(Content(text="a cat", image=image), Content(text="doc text"), "find cats")
    text = reranker.backend.processor.apply_chat_template(prompt.messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\n"
        'Judge whether the Document meets the requirements based on the Query and the Instruct provided. '
        'Note that the answer can only be "yes" or "no".<|im_end|>\n'
        "<|im_start|>user\n"
        "<Instruct>: find cats<Query>:<|vision_start|><|image_pad|><|vision_end|>a cat"
        "\n<Document>:doc text<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert prompt.images == [image]


def test_parts_order_image_before_text_and_images_in_placeholder_order():
    qi, di = Image.new("RGB", (2, 2)), Image.new("RGB", (3, 3))
    prompt = build_messages(Content(text="q", image=qi), Content(text="d", image=di))
    parts = prompt.messages[1]["content"]
    kinds = [p.get("text", p["type"]) for p in parts]
    assert kinds == [f"<Instruct>: {DEFAULT_INSTRUCTION}", "<Query>:", "image", "q", "\n<Document>:", "image", "d"]
    assert prompt.images == [qi, di]
    assert prompt.messages[0]["content"][0]["text"] == SYSTEM_PROMPT


def test_generate_mode_asks_for_a_number():
    prompt = build_messages(Content(text="q"), Content(text="d"), mode="generate")
    assert "0" in prompt.messages[0]["content"][0]["text"] and "10" in prompt.messages[0]["content"][0]["text"]


def test_templates_builtin_user_file_and_resolution(tmp_path):
    builtin = builtin_templates()
    assert builtin["web_search"] == DEFAULT_INSTRUCTION and "text_to_image" in builtin
    user = tmp_path / "t.json"
    user.write_text(json.dumps({"legal": "Given a legal question, retrieve the clause that answers it", "web_search": "x"}))
    merged = load_templates(user)
    assert merged["legal"].startswith("Given a legal") and merged["web_search"] == "x"
    assert resolve_instruction(template="legal", templates_file=user).startswith("Given a legal")
    assert resolve_instruction() is None  # the model family's own default (backend.default_instruction)
    assert resolve_instruction("custom") == "custom"
    with pytest.raises(ValueError, match="unknown template 'nope'"):
        resolve_instruction(template="nope")
    with pytest.raises(ValueError, match="not both"):
        resolve_instruction("a", "web_search")
    with pytest.raises(ValueError, match="instruction is empty"):
        resolve_instruction("  ")
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must be a JSON object"):
        load_templates(bad)
    with pytest.raises(ValueError, match="not found"):
        load_templates(tmp_path / "missing.json")


def test_instruction_changes_the_score(reranker):
    a = reranker.score("a cat", "a black cat")
    b = reranker.score("a cat", "a black cat", instruction="Given an image description, retrieve matching photos")
    c = reranker.score("a cat", "a black cat", template="web_search")
    assert a != b and a == c
