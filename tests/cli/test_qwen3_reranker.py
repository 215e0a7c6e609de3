"""The `lychee` command on a Qwen3-Reranker checkpoint (text only): the family is found from
config.json, named on the model line, and every score is the library's (one real console-script
process, then CliRunner for the flags, as tests/cli/test_qwen3_vl.py does)."""

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

from ..qwen3_reranker_support import FAMILY

LYCHEE = str(Path(sys.executable).parent / "lychee")
TOL = 1e-6  # JSON carries the full float; the same weights, inputs and dtype
QUERY = "What is the capital of China?"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "a black cat sleeping on a sofa"]
runner = CliRunner()


def _scores(reranker: LycheeReranker, query: str, docs: list[str], **kwargs) -> dict[int, float]:
    results = reranker.rerank(query, docs, **kwargs)
    assert all(r.error is None for r in results), [r.error for r in results]
    return {r.index: r.score for r in results}


def test_console_script_scores_texts_like_the_library_and_names_the_family(qwen3_reranker_dir, qwen3_reranker_reranker):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_FAMILY", None)
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(qwen3_reranker_dir), QUERY, "--text", *TEXTS, "--format", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    expected = _scores(qwen3_reranker_reranker, QUERY, TEXTS)
    assert {r["index"]: r["score"] for r in records} == pytest.approx(expected, abs=TOL)
    assert max(expected.values()) - min(expected.values()) > 1e-3
    assert f"lychee ({FAMILY}): {qwen3_reranker_dir} on cpu · float32" in proc.stderr


def test_the_family_flag_and_a_custom_instruction(qwen3_reranker_dir, qwen3_reranker_reranker):
    instruction = "Find the passage that answers the question"
    result = runner.invoke(app, ["rerank", "--model", str(qwen3_reranker_dir), "--family", FAMILY, QUERY,
                                 "--text", *TEXTS, "--format", "json", "--instruction", instruction])
    assert result.exit_code == 0, result.output
    expected = _scores(qwen3_reranker_reranker, QUERY, TEXTS, instruction=instruction)
    assert {r["index"]: r["score"] for r in json.loads(result.stdout)} == pytest.approx(expected, abs=TOL)
    default = _scores(qwen3_reranker_reranker, QUERY, TEXTS)
    assert max(abs(expected[i] - default[i]) for i in expected) > 1e-6  # the instruction was read
