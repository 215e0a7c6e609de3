"""Waiting for a server process a test or benchmark started, and stopping it: gracefully, then for sure.

SIGINT first (uvicorn's graceful stop, the process's ``finally`` blocks run), SIGKILL after a
grace period: a server stuck holding the GIL (the attacks the robustness tests send) cannot run
its signal handler. One helper, so every test and benchmark stops its servers the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from typing import IO


def stop_process(proc: subprocess.Popen, grace_s: float = 20.0, *, group: bool = False) -> None:
    """SIGINT, wait ``grace_s``, then SIGKILL and wait. ``group``: signal the process's whole
    session (it was started with ``start_new_session=True``), so its children stop with it."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGKILL, 30.0)):
        if proc.poll() is not None:
            return
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_healthy(proc: subprocess.Popen, url: str, log: IO[str], timeout_s: float, what: str) -> None:
    """Poll ``url`` until it answers 200. If ``proc`` exits first, RuntimeError with the end of its
    ``log`` (a file it writes to); TimeoutError after ``timeout_s``. ``what`` names it in both."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{what} exited early (code {proc.returncode}):\n{log.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not healthy after {timeout_s} s")
        time.sleep(0.5)
