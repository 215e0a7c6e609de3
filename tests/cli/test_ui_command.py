"""``lychee ui`` stops with its process: no Streamlit server outlives it."""

from __future__ import annotations

import time
from pathlib import Path

from ..ui.browser import running_ui


def _processes_serving(port: int) -> list[int]:
    """PIDs whose command line names ``--server.port PORT`` (a Streamlit server on it)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--server.port" in args and args[args.index(b"--server.port") + 1 : args.index(b"--server.port") + 2] == [str(port).encode()]:
            found.append(int(proc.name))
    return found


def test_stopping_lychee_ui_stops_streamlit():
    with running_ui("--backend", "lite") as url:
        port = int(url.rsplit(":", 1)[1])
        assert _processes_serving(port)  # the check sees the running server
    deadline = time.monotonic() + 10
    while _processes_serving(port) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_serving(port) == []
