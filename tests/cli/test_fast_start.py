"""``import lychee_rerank``, ``lychee --help``, ``lychee templates``, ``lychee models`` and commands
that fail on their arguments must not import the heavy libraries: those load when a backend is created."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "streamlit", "ray", "lychee_rerank.backends.lite", "lychee_rerank.backends.lychee")


def imported_modules(code: str, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """Modules a fresh interpreter imports running ``code`` (from ``python -X importtime``)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True, timeout=120
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names, proc


def heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))


CLI = "import sys; from lychee_rerank.cli import main; sys.argv = ['lychee', *sys.argv[1:]]; main()"


def test_import_lychee_rerank_and_its_cli_stays_light():
    names, proc = imported_modules("import lychee_rerank, lychee_rerank.cli, lychee_rerank.config, lychee_rerank.backends")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "lychee_rerank.cli" in names  # the check sees what was imported
    assert heavy(names) == []


@pytest.mark.parametrize(
    "args, code",
    [
        (["--help"], 0),
        (["templates"], 0),
        (["rerank", "", "--text", "a document"], 2),  # empty query: refused before any model loads
        (["rerank", "--backend", "magic", "q", "--text", "a"], 2),
        (["rerank", "q"], 2),  # no documents
        (["batch", "--backend", "magic", __file__, "out.jsonl"], 2),
        (["serve", "--port", "99999"], 2),
        (["eval", "--help"], 0),
        (["models"], 0),  # the family registry's metadata only
        (["families", "--json"], 0),
        (["rerank", "--family", "nope", "q", "--text", "a"], 2),  # an unknown family: refused before loading
        (["serve", "--family", "nope"], 2),
    ],
)
def test_cli_commands_that_need_no_model_import_no_heavy_library(args, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names, proc = imported_modules(CLI, *args)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert heavy(names) == []


def test_the_check_sees_a_heavy_import():
    """The test can fail: building a backend does import torch."""
    names, proc = imported_modules("import lychee_rerank.backends.lychee")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" in heavy(names)
