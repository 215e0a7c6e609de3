"""A short load run with the attacks of issue 20 mixed in: every answer as expected, no 5xx, none lost.

The run is the real ``benchmarks/http_load.py`` (a ``lychee serve`` subprocess on loopback, the
tiny checkpoint), shortened to a few seconds; it exits 1 on any 5xx, lost, malformed or
mismatched answer, and its table must list every attack.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import http_load  # noqa: E402


def test_load_run_with_attacks_mixed_in(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]):
    argv = ["--backend", "lychee", "--model", str(tiny_model_dir), "--clients", "4", "--duration", "5",
            "--invalid", "0.1", "--attacks", "0.4", "--allow-urls"]
    try:
        http_load.main(argv)
    except SystemExit as exc:
        pytest.fail(f"the load run failed (exit {exc.code}):\n{capsys.readouterr().out}")
    out = capsys.readouterr().out
    assert re.search(r"^lost=0 malformed=0 5xx=0 mismatched=0 ", out, re.M), out
    from lychee_rerank.serving.settings import ServerSettings

    for attack in http_load.attacks_for(True, ServerSettings.model_construct()):
        row = re.search(rf"^{re.escape(attack.name)}\s+(\d+)", out, re.M)
        assert row and int(row[1]) >= 1, f"{attack.name} was not sent:\n{out}"
    assert re.search(r"^server RSS start \d+ MB, peak \d+ MB, end \d+ MB", out, re.M), out
