"""The `lychee` command on a jina-reranker-m0 checkpoint: the family is found from config.json, the
licence notice is on stderr, `lychee models` lists it, and every score is the library's (one real
console-script process for the acceptance case, CliRunner for the rest; the checks every family
shares are in tests/cli/family_checks.py)."""

from __future__ import annotations

import json

import pytest

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
from .family_checks import TOL, check_console_script, check_rerank, invoke

LOGIT_BIAS = 2.65  # the published logit bias, reported as no_logit


def test_console_script_scores_images_like_the_library_names_the_family_and_the_licence(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    library = library_scores(jina_m0_reranker, QUERY, jina_m0_pngs)  # the three pictures must score apart
    proc, records = check_console_script(jina_m0_dir, FAMILY, QUERY, [*map(str, jina_m0_pngs)], library, min_spread=1e-3)
    assert sorted(r["rank"] for r in records) == [1, 2, 3]
    assert "CC-BY-NC-4.0" in proc.stderr and "non-commercial" in proc.stderr  # the licence notice, when it loads
    assert all(r["no_logit"] == pytest.approx(LOGIT_BIAS) for r in records)


def test_text_documents_an_image_query_and_the_family_flag(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    library = library_scores(jina_m0_reranker, QUERY, TEXTS)
    check_rerank(library, "--model", str(jina_m0_dir), QUERY, "--text", *TEXTS, "--format", "json")
    assert spread(library) > 1e-3

    # An image query (I -> T), the family named explicitly (the same as found).
    check_rerank(library_scores(jina_m0_reranker, jina_m0_pngs[0], TEXTS[:3]), "--model", str(jina_m0_dir),
                 "--family", FAMILY, "", "--query-image", str(jina_m0_pngs[0]), "--text", *TEXTS[:3], "--format", "json")


def test_analyze_shows_the_document_first_prompt_and_the_library_score(jina_m0_dir, jina_m0_pngs, jina_m0_reranker):
    result = invoke("analyze", "--model", str(jina_m0_dir), "a red circle", "", "--doc-image", str(jina_m0_pngs[1]), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lib = jina_m0_reranker.rerank("a red circle", [jina_m0_pngs[1]])[0]
    assert data["score"] == pytest.approx(lib.score, abs=TOL)
    assert (data["yes_logit"], data["no_logit"]) == pytest.approx((lib.yes_logit, LOGIT_BIAS), abs=1e-5)
    assert data["prompt"] == "**Document**:\n<|vision_start|><|image_pad|><|vision_end|>\n**Query**:\na red circle"


def test_models_lists_the_family_with_its_licence_and_no_finetuning():
    result = invoke("models", "--json")
    assert result.exit_code == 0, result.output
    (spec,) = [s for s in json.loads(result.stdout) if s["name"] == FAMILY]
    assert spec["licence"] == LICENCE and spec["architectures"] == ["JinaVLForRanking"]
    assert spec["fine_tuning"].startswith("not applicable") and "jinaai/jina-reranker-m0" in spec["checkpoints"]
