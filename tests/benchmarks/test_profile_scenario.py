"""The profiling driver runs without ``--model`` (on the tiny checkpoint), as the other benchmarks
do, and its summary reads py-spy's raw stacks."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import profile_scenario  # noqa: E402


def test_profile_scenario_runs_on_the_tiny_checkpoint():
    profile_scenario.main(["--scenario", "re-queried", "--who", "engine", "--runs", "1", "--quick"])


def test_summary_gives_each_stage_its_share(tmp_path, capsys):
    raw = tmp_path / "prof.txt"
    raw.write_text(
        "process 1;MainThread;measured_runs (p.py:9);Qwen2_5_VLAttention.forward (m.py:2) 3\n"
        "process 1;MainThread;measured_runs (p.py:9);get_rope_index (m.py:3) 1\n"
        "process 1;MainThread;warm_up (p.py:5);get_rope_index (m.py:3) 9\n",  # not a measured run
        encoding="utf-8",
    )
    profile_scenario.main(["--summarize", str(raw)])
    out = capsys.readouterr().out
    assert "LM attention" in out and "75.0%" in out
    assert "3D rope positions" in out and "25.0%" in out
