"""The profiling driver runs without ``--model`` (on the tiny checkpoint), as the other benchmarks do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "profile_scenario.py"


@pytest.mark.parametrize("who", ["engine", "batched"])
def test_profile_scenario_runs_on_the_tiny_checkpoint(who):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scenario", "re-queried", "--who", who, "--runs", "1", "--quick"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
