"""The `lychee` command on a MonoQwen2-VL adapter directory: the family is found from
adapter_config.json and the base's config.json, named on the model line, every score is the
library's; a text document fails alone and an image query is refused (one real console-script
process, then CliRunner for the flags, as tests/cli/test_qwen3_reranker.py does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lychee_rerank import LycheeReranker
from lychee_rerank.cli import app

from ..qwen2_vl_support import FAMILY

LYCHEE = str(Path(sys.executable).parent / "lychee")
TOL = 1e-6  # JSON carries the full float; the same weights, inputs and dtype
QUERY = "a cat sitting on a window sill"
runner = CliRunner()


def _scores(reranker: LycheeReranker, query, docs, **kwargs) -> dict[int, float]:
    results = reranker.rerank(query, docs, **kwargs)
    assert all(r.error is None for r in results), [r.error for r in results]
    return {r.index: r.score for r in results}


def test_console_script_scores_images_like_the_library_and_names_the_family(
        mono_qwen2_vl_dir, mono_qwen2_vl_images, mono_qwen2_vl_reranker):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_FAMILY", None)
    images = mono_qwen2_vl_images[:4]
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(mono_qwen2_vl_dir), QUERY, *map(str, images), "--format", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = _scores(mono_qwen2_vl_reranker, QUERY, images)
    assert {r["index"]: r["score"] for r in records} == pytest.approx(expected, abs=TOL)
    assert max(expected.values()) - min(expected.values()) > 1e-3
    assert f"lychee ({FAMILY}): {mono_qwen2_vl_dir} on cpu · float32" in proc.stderr


def test_the_family_flag_a_custom_instruction_and_a_text_document(mono_qwen2_vl_dir, mono_qwen2_vl_images,
                                                                 mono_qwen2_vl_reranker):
    instruction = "Does this page answer the question? Answer True or False."
    images = mono_qwen2_vl_images[2:5]
    result = runner.invoke(app, ["rerank", "--model", str(mono_qwen2_vl_dir), "--family", FAMILY, "一只黑猫",
                                 *map(str, images), "--format", "json", "--instruction", instruction])
    assert result.exit_code == 0, result.output
    expected = _scores(mono_qwen2_vl_reranker, "一只黑猫", images, instruction=instruction)
    assert {r["index"]: r["score"] for r in json.loads(result.stdout)} == pytest.approx(expected, abs=TOL)
    default = _scores(mono_qwen2_vl_reranker, "一只黑猫", images)
    assert max(abs(expected[i] - default[i]) for i in expected) > 1e-6  # the instruction was read

    result = runner.invoke(app, ["rerank", "--model", str(mono_qwen2_vl_dir), QUERY, "--text", "a text document",
                                 "--format", "json"])
    records = json.loads(result.stdout)
    assert "reads image documents only" in (records[0].get("error") or ""), records


def test_an_image_query_is_refused_with_a_clear_message(mono_qwen2_vl_dir, mono_qwen2_vl_images):
    result = runner.invoke(app, ["rerank", "--model", str(mono_qwen2_vl_dir), "what is drawn here", "--query-image",
                                 str(mono_qwen2_vl_images[0]), *map(str, mono_qwen2_vl_images[1:3]), "--format", "json"])
    assert result.exit_code != 0
    said = " ".join(result.output.replace("│", " ").split())
    assert "reads text queries only" in said, result.output


def test_models_lists_the_per_side_modalities():
    listed = {f["name"]: f for f in json.loads(runner.invoke(app, ["models", "--json"]).stdout)}
    mono = listed[FAMILY]
    assert mono["query_modalities"] == ["text"] and mono["document_modalities"] == ["image"]
    assert mono["peft_adapter"] and "lightonai/MonoQwen2-VL-v0.1" in mono["checkpoints"]
    assert "query_modalities" not in listed["qwen3_vl"]  # the other families are unchanged
    table = runner.invoke(app, ["models"]).stdout
    assert "queries: text; documents: image" in table and "text, image" in table
