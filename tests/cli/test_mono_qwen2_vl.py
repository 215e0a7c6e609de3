"""The `lychee` command on a MonoQwen2-VL adapter directory: the family is found from
adapter_config.json and the base's config.json, named on the model line, every score is the
library's; a text document fails alone and an image query is refused (one real console-script
process, then CliRunner for the flags, as tests/cli/test_qwen3_reranker.py does; the checks every
family shares are in tests/cli/family_checks.py)."""

from __future__ import annotations

import json

from ..qwen2_vl_support import FAMILY
from ..qwen3_vl_support import library_scores
from .family_checks import assert_instruction_read, check_console_script, check_rerank, invoke

QUERY = "a cat sitting on a window sill"


def test_console_script_scores_images_like_the_library_and_names_the_family(
        mono_qwen2_vl_dir, mono_qwen2_vl_images, mono_qwen2_vl_reranker):
    images = mono_qwen2_vl_images[:4]
    expected = library_scores(mono_qwen2_vl_reranker, QUERY, images)
    check_console_script(mono_qwen2_vl_dir, FAMILY, QUERY, [*map(str, images)], expected, min_spread=1e-3)


def test_the_family_flag_a_custom_instruction_and_a_text_document(mono_qwen2_vl_dir, mono_qwen2_vl_images,
                                                                 mono_qwen2_vl_reranker):
    instruction = "Does this page answer the question? Answer True or False."
    images = mono_qwen2_vl_images[2:5]
    expected = library_scores(mono_qwen2_vl_reranker, "一只黑猫", images, instruction=instruction)
    check_rerank(expected, "--model", str(mono_qwen2_vl_dir), "--family", FAMILY, "一只黑猫",
                 *map(str, images), "--format", "json", "--instruction", instruction)
    assert_instruction_read(expected, library_scores(mono_qwen2_vl_reranker, "一只黑猫", images))

    result = invoke("rerank", "--model", str(mono_qwen2_vl_dir), QUERY, "--text", "a text document", "--format", "json")
    records = json.loads(result.stdout)
    assert "reads image documents only" in (records[0].get("error") or ""), records


def test_an_image_query_is_refused_with_a_clear_message(mono_qwen2_vl_dir, mono_qwen2_vl_images):
    result = invoke("rerank", "--model", str(mono_qwen2_vl_dir), "what is drawn here", "--query-image",
                    str(mono_qwen2_vl_images[0]), *map(str, mono_qwen2_vl_images[1:3]), "--format", "json")
    assert result.exit_code != 0
    said = " ".join(result.output.replace("│", " ").split())
    assert "reads text queries only" in said, result.output


def test_models_lists_the_per_side_modalities():
    listed = {f["name"]: f for f in json.loads(invoke("models", "--json").stdout)}
    mono = listed[FAMILY]
    assert mono["query_modalities"] == ["text"] and mono["document_modalities"] == ["image"]
    assert mono["peft_adapter"] and "lightonai/MonoQwen2-VL-v0.1" in mono["checkpoints"]
    assert "query_modalities" not in listed["qwen3_vl"]  # the other families are unchanged
    table = invoke("models").stdout
    assert "queries: text; documents: image" in table and "text, image" in table
