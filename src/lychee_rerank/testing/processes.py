"""Stopping a server process a test or benchmark started: gracefully, then for sure.

SIGINT first (uvicorn's graceful stop, the process's ``finally`` blocks run), SIGKILL after a
grace period: a server stuck holding the GIL (the attacks the robustness tests send) cannot run
its signal handler. One helper, so every test and benchmark stops its servers the same way.
"""

from __future__ import annotations

import os
import signal
import subprocess


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
