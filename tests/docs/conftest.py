"""Docs tests: the pages' code blocks (tests/docs/runner.py) and the built site in Chromium.

The examples' counts (python blocks run, commands run, shown only, skipped) are printed at the end
of the session and written to ``artifacts/docs-examples.json``.
"""

from __future__ import annotations

import json

import pytest

from .runner import ROOT, PageRun

RESULTS: list[PageRun] = []
SUMMARY = ROOT / "artifacts" / "docs-examples.json"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RESULTS:
        return
    total = {"python": 0, "commands": 0, "shown": 0, "skipped": 0}
    for r in RESULTS:
        for key in total:
            total[key] += r.counts[key]
    tr = terminalreporter
    tr.section("docs examples")
    for r in sorted(RESULTS, key=lambda r: r.page):
        c = r.counts
        tr.write_line(f"{r.page:45} python={c['python']:3} commands={c['commands']:3} shown={c['shown']:3} "
                      f"skipped={c['skipped']:3} {r.seconds:6.1f} s{'  FAILED' if r.error else ''}")
        for line, reason in r.skipped:
            tr.write_line(f"    skip {r.page}:{line}: {reason}")
        if r.error:
            tr.write_line(f"    FAILED {r.error}")
    failed = sum(1 for r in RESULTS if r.error)
    tr.write_line(f"TOTAL {len(RESULTS)} pages ({failed} failed): python blocks={total['python']} "
                  f"commands run={total['commands']} shown only={total['shown']} skipped={total['skipped']}")
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps({
        "total": total,
        "failed": [r.page for r in RESULTS if r.error],
        "pages": [{"page": r.page, **r.counts, "seconds": round(r.seconds, 1), "error": r.error,
                   "skips": [f"{line}: {reason}" for line, reason in r.skipped]} for r in RESULTS],
    }, indent=2))
