"""The `lychee` command on a Qwen3-VL-Reranker checkpoint: the family is found from config.json,
named on the model line, and every score is the library's (one real console-script process for
the acceptance case, CliRunner for the rest, as tests/cli/test_cli.py does for lychee; the checks
every family shares are in tests/cli/family_checks.py)."""

from __future__ import annotations

import json

import pytest

from ..qwen3_vl_support import (  # noqa: F401 - shared fixtures
    DEFAULT_INSTRUCTION,
    FAMILY,
    QUERY,
    TEXTS,
    library_scores,
    qwen3_vl_pngs,
    qwen3_vl_reranker,
    spread,
)
from .family_checks import TOL, assert_instruction_read, check_console_script, check_rerank, invoke


def test_console_script_scores_images_like_the_library_and_names_the_family(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker):
    # The three pictures must score apart: an image lost on the way would show. The model line
    # (stderr) names the family found in config.json, with device and dtype.
    library = library_scores(qwen3_vl_reranker, QUERY, qwen3_vl_pngs)
    _, records = check_console_script(qwen3_vl_dir, FAMILY, QUERY, [*map(str, qwen3_vl_pngs)], library, min_spread=1e-4)
    assert sorted(r["rank"] for r in records) == [1, 2, 3]
    assert {r["source"] for r in records} == {str(p) for p in qwen3_vl_pngs}


def test_text_documents_query_image_and_the_family_flag(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker):
    library = library_scores(qwen3_vl_reranker, QUERY, TEXTS)
    check_rerank(library, "--model", str(qwen3_vl_dir), QUERY, "--text", *TEXTS, "--format", "json")
    assert spread(library) > 1e-4

    # A text + image query against texts, the family named explicitly (the same as found) and a
    # custom instruction: both reach the model as in the library.
    query = {"text": "what is drawn here", "image": qwen3_vl_pngs[0]}
    library = library_scores(qwen3_vl_reranker, query, TEXTS[:3], instruction="Find the matching caption.")
    check_rerank(library, "--model", str(qwen3_vl_dir), "--family", FAMILY, "what is drawn here",
                 "--query-image", str(qwen3_vl_pngs[0]), "--text", *TEXTS[:3], "--format", "json",
                 "--instruction", "Find the matching caption.")
    assert_instruction_read(library, library_scores(qwen3_vl_reranker, query, TEXTS[:3]))


def test_analyze_shows_the_family_default_instruction_and_the_library_score(qwen3_vl_dir, qwen3_vl_pngs, qwen3_vl_reranker):
    result = invoke("analyze", "--model", str(qwen3_vl_dir), "a red circle", "a drawing",
                    "--doc-image", str(qwen3_vl_pngs[1]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lib = qwen3_vl_reranker.rerank("a red circle", [{"text": "a drawing", "image": qwen3_vl_pngs[1]}])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL)
    assert (data["yes_logit"], data["no_logit"]) == pytest.approx((lib.yes_logit, lib.no_logit), abs=1e-5)
    assert data["instruction"] == DEFAULT_INSTRUCTION  # Qwen3-VL-Reranker's, not lychee's web-search one
    prompt = data["prompt"]
    assert f"<Instruct>: {DEFAULT_INSTRUCTION}" in prompt and "<Query>:a red circle" in prompt
    assert prompt.count("<|vision_start|>") == 1


def test_a_video_document_gets_a_clear_error_not_a_score(qwen3_vl_dir, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    result = invoke("rerank", "--model", str(qwen3_vl_dir), QUERY, str(clip), "--format", "json")
    assert result.exit_code == 1, result.output  # nothing could be scored
    (record,) = json.loads(result.stdout)
    assert "video input is not supported" in record["error"] and record["score"] == 0
