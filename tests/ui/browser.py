"""Start `lychee ui` on a loopback port and drive it with Debian's Chromium through Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from lychee_rerank.testing.processes import wait_healthy

from ..serving.conftest import free_port

CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def running_ui(*args: str, env: dict | None = None, timeout: float = 180, log: Path | None = None) -> Iterator[str]:
    """``log``: where the UI's output goes (a file never fills up and blocks the server as a pipe can)."""
    port = free_port()
    lychee = str(Path(sys.executable).parent / "lychee")
    # A file never fills up and blocks the server as an unread pipe can.
    sink = open(log, "w+", encoding="utf-8") if log is not None else tempfile.TemporaryFile(mode="w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [lychee, "ui", "--port", str(port), "--host", "127.0.0.1", *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=sink, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own session: stopping it stops everything it started
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(proc, f"{url}/_stcore/health", sink, timeout, "lychee ui")
        yield url
    finally:
        stop_session(proc)
        sink.close()


def stop_session(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM, then SIGKILL, to the whole session ``proc`` leads (``start_new_session=True``):
    nothing it started outlives the test, whatever happened in it."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait_s)
        if proc.poll() is not None and not session_members(proc.pid):
            return


def session_members(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes in session ``sid``."""
    import psutil

    members = []
    for p in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                members.append(p.pid)
    return members


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height}, locale="en-US")
            yield page
        finally:
            browser.close()
