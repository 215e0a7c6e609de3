"""The `lychee` command on a Qwen3-Reranker checkpoint (text only): the family is found from
config.json, named on the model line, and every score is the library's (one real console-script
process, then CliRunner for the flags, as tests/cli/test_qwen3_vl.py does; the shared checks are
in tests/cli/family_checks.py)."""

from __future__ import annotations

from ..qwen3_reranker_support import FAMILY
from ..qwen3_vl_support import library_scores
from .family_checks import TEXT_QUERY as QUERY, TEXTS, assert_instruction_read, check_console_script, check_rerank


def test_console_script_scores_texts_like_the_library_and_names_the_family(qwen3_reranker_dir, qwen3_reranker_reranker):
    expected = library_scores(qwen3_reranker_reranker, QUERY, TEXTS)
    check_console_script(qwen3_reranker_dir, FAMILY, QUERY, ["--text", *TEXTS], expected, min_spread=1e-3)


def test_the_family_flag_and_a_custom_instruction(qwen3_reranker_dir, qwen3_reranker_reranker):
    instruction = "Find the passage that answers the question"
    expected = library_scores(qwen3_reranker_reranker, QUERY, TEXTS, instruction=instruction)
    check_rerank(expected, "--model", str(qwen3_reranker_dir), "--family", FAMILY, QUERY,
                 "--text", *TEXTS, "--format", "json", "--instruction", instruction)
    assert_instruction_read(expected, library_scores(qwen3_reranker_reranker, QUERY, TEXTS))
