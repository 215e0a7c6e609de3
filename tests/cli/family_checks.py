"""The checks every family's `lychee` command module makes (tests/cli/test_<family>.py), written once.

Each module keeps its own checkpoint, inputs and expectations and calls these helpers from its own
tests, so a failure still names the family (and the test) it happened in. The library's reranker
is the yardstick: JSON carries the full float, and the weights, inputs and dtype are the same, so
scores agree to ``TOL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lychee_rerank.cli import app

from ..qwen3_vl_support import spread

LYCHEE = str(Path(sys.executable).parent / "lychee")
TOL = 1e-6  # JSON carries the full float; the same weights, inputs and dtype
runner = CliRunner()

# The pairs the text-only families (Qwen3-Reranker, cross-encoders) are checked on.
TEXT_QUERY = "What is the capital of China?"
TEXTS = ["The capital of China is Beijing.", "Gravity is a force that attracts two bodies.", "北京是中国的首都。",
         "a black cat sleeping on a sofa"]


def invoke(*args: str) -> Any:
    """``lychee ARGS`` in this process (CliRunner)."""
    return runner.invoke(app, list(args))


def scores_of(records: list[dict]) -> dict[int, float]:
    return {r["index"]: r["score"] for r in records}


def check_console_script(model_dir: Path, family: str, query: str, documents: list[str], expected: dict[int, float],
                         min_spread: float) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """One real console-script process, ``lychee rerank --model DIR QUERY DOCUMENTS --format json``
    (offline, no LYCHEE_FAMILY: the family is found from the checkpoint): every score is the
    library's ``expected`` (which must spread, or a lost input would go unseen), and the model line
    on stderr names the family, the checkpoint, device and dtype. Returns the process and its records."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("LYCHEE_FAMILY", None)
    proc = subprocess.run(
        [LYCHEE, "rerank", "--model", str(model_dir), query, *documents, "--format", "json"],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert scores_of(records) == pytest.approx(expected, abs=TOL)
    assert spread(expected) > min_spread
    assert f"lychee ({family}): {model_dir} on cpu · float32" in proc.stderr
    return proc, records


def check_rerank(expected: dict[int, float], *args: str) -> list[dict]:
    """``lychee rerank ARGS`` (CliRunner; ARGS ask for JSON) succeeds and every score is the
    library's ``expected``. Returns the records."""
    result = invoke("rerank", *args)
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert scores_of(records) == pytest.approx(expected, abs=TOL)
    return records


def assert_instruction_read(with_instruction: dict[int, float], default: dict[int, float]) -> None:
    """The custom instruction reached the model: the scores moved from the default instruction's."""
    assert max(abs(with_instruction[i] - default[i]) for i in with_instruction) > 1e-6
