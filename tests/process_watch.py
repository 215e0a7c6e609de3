"""Run a command the old code could hang or grow without end on, bounded in time and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

LYCHEE = str(Path(sys.executable).parent / "lychee")
#: The folder holding the ``tests`` package: what a script run with ``python -c`` puts on its path to use this module.
REPO = str(Path(__file__).resolve().parents[1])


def run_watched(args: list[str], *, timeout: float, max_rss_mb: float) -> tuple[int, str, str]:
    """Run a command; fail the test (after killing it) if it runs past ``timeout`` or its RSS passes ``max_rss_mb``."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    watched = psutil.Process(proc.pid)
    started = time.monotonic()
    problem = None
    try:
        while proc.poll() is None:
            try:
                rss_mb = watched.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                break
            if rss_mb > max_rss_mb:
                problem = f"RSS {rss_mb:.0f} MB > {max_rss_mb} MB after {time.monotonic() - started:.1f} s"
            elif time.monotonic() - started > timeout:
                problem = f"still running after {timeout} s (a hang)"
            if problem:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
    if problem:
        pytest.fail(f"{' '.join(args[1:])}: {problem}; stderr: {err.decode(errors='replace')[-1000:]}")
    return proc.returncode, out.decode(), err.decode()


def rss_growth_mb(fn: Any) -> tuple[Any, float]:
    """``(fn(), MB)``: how far this process's RSS rose above its level at the call, sampled every 2 ms.

    Not ``ru_maxrss``: that peak is the process's whole life, so an earlier high (model loading)
    can hide the call's own. Run it in a fresh process, not in the pytest one.
    """
    import threading

    me = psutil.Process()
    base = me.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, me.memory_info().rss)
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    return result, (max(peak, me.memory_info().rss) - base) / 2**20
