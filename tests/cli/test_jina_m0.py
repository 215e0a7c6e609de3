"""The `lychee` command on a jina-reranker-m0 checkpoint: the family is found from config.json, the
licence notice is on stderr, `lychee models` lists it, and every score is the library's (one real
console-script process for the acceptance case, CliRunner for the rest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lychee_rerank.cli import app

from ..jina_m0_support import (  # noqa: F401 - shared fixtures
    FAMILY,
    LICENCE,
    QUERY,
    TEXTS,
    jina_m0_pngs,
    jina_m0_reranker,
    library_scores,
    spread,
)

LYCHEE = str(Path(sys.executable).parent / "lychee")
TOL = 1e-6  # JSON carries the full float; the same weights, inputs and dtype
runner = CliRunner()


def _invoke(*args: str):
    return runner.invoke(app, list(args))


def test_console_script_scores_images_like_the_library_names_the_family_and_the_licence(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_FAMILY", None)
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(jina_m0_dir), QUERY, *map(str, jina_m0_pngs), "--format", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert sorted(r["rank"] for r in records) == [1, 2, 3]
    library = library_scores(jina_m0_reranker, QUERY, jina_m0_pngs)
    assert {r["index"]: r["score"] for r in records} == pytest.approx(library, abs=TOL)
    assert spread(library) > 1e-3  # the three pictures score apart: an image lost on the way would show
    assert f"lychee ({FAMILY}): {jina_m0_dir} on cpu · float32" in proc.stderr
    assert "CC-BY-NC-4.0" in proc.stderr and "non-commercial" in proc.stderr  # the licence notice, when it loads
    assert all(r["no_logit"] == pytest.approx(2.65) for r in records)  # the published logit bias


def test_text_documents_an_image_query_and_the_family_flag(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    result = _invoke("rerank", "--model", str(jina_m0_dir), QUERY, "--text", *TEXTS, "--format", "json")
    assert result.exit_code == 0, result.output
    library = library_scores(jina_m0_reranker, QUERY, TEXTS)
    assert {r["index"]: r["score"] for r in json.loads(result.stdout)} == pytest.approx(library, abs=TOL)
    assert spread(library) > 1e-3

    # An image query (I -> T), the family named explicitly (the same as found).
    result = _invoke("rerank", "--model", str(jina_m0_dir), "--family", FAMILY, "",
                     "--query-image", str(jina_m0_pngs[0]), "--text", *TEXTS[:3], "--format", "json")
    assert result.exit_code == 0, result.output
    library = library_scores(jina_m0_reranker, jina_m0_pngs[0], TEXTS[:3])
    assert {r["index"]: r["score"] for r in json.loads(result.stdout)} == pytest.approx(library, abs=TOL)


def test_analyze_shows_the_document_first_prompt_and_the_library_score(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    result = _invoke("analyze", "--model", str(jina_m0_dir), "a red circle", "", "--doc-image", str(jina_m0_pngs[1]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lib = jina_m0_reranker.rerank("a red circle", [jina_m0_pngs[1]])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL)
    assert (data["yes_logit"], data["no_logit"]) == pytest.approx((lib.yes_logit, 2.65), abs=1e-5)
    assert data["prompt"] == "**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\na red circle"


def test_models_lists_the_family_with_its_licence_and_no_finetuning():
    result = _invoke("models", "--json")
    assert result.exit_code == 0, result.output
    (spec,) = [s for s in json.loads(result.stdout) if s["name"] == FAMILY]
    assert spec["licence"] == LICENCE and spec["architectures"] == ["JinaVLForRanking"]
    assert spec["fine_tuning"].startswith("not applicable") and "jinaai/jina-reranker-m0" in spec["checkpoints"]
