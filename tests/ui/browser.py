"""Start `lychee ui` on a loopback port and drive it with Debian's Chromium through Playwright."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_ui(*args: str, env: dict | None = None, timeout: float = 180, log: Path | None = None) -> Iterator[str]:
    """``log``: where the UI's output goes (a file never fills up and blocks the server as a pipe can)."""
    port = free_port()
    lychee = str(Path(sys.executable).parent / "lychee")
    sink = open(log, "w", encoding="utf-8") if log is not None else subprocess.PIPE  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [lychee, "ui", "--port", str(port), "--host", "127.0.0.1", *args],
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=sink, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: stopping it stops Streamlit, its child, too
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                early = proc.stdout.read() if proc.stdout else Path(log).read_text() if log else ""
                raise RuntimeError(f"lychee ui exited early:\n{early}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise TimeoutError("lychee ui did not become healthy")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if log is not None:
            sink.close()  # type: ignore[union-attr]


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
