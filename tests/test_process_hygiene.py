"""SIGTERM to a test run stops the processes its tests started (the brief: "even on SIGTERM")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent

INNER = '''
import os, subprocess, time
from pathlib import Path

def test_starts_a_server_then_waits():
    child = subprocess.Popen(["sleep", "300"], start_new_session=True)  # like running_ui's Streamlit
    Path(os.environ["CHILD_PID_FILE"]).write_text(str(child.pid))
    try:
        time.sleep(300)
    finally:
        child.terminate()
        child.wait(timeout=10)
'''


def test_sigterm_to_pytest_runs_the_teardown_that_stops_child_processes(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER)
    pid_file = tmp_path / "child.pid"
    env = {**os.environ, "CHILD_PID_FILE": str(pid_file), "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(tmp_path / "test_inner.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert run.poll() is None, run.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the inner test never started its child"
            time.sleep(0.1)
        child = psutil.Process(int(pid_file.read_text()))
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
        gone, _ = psutil.wait_procs([child], timeout=10)
        assert gone, f"the child {child.pid} outlived the SIGTERMed test run"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if pid_file.exists() and pid_file.read_text():
            try:
                psutil.Process(int(pid_file.read_text())).kill()
            except psutil.NoSuchProcess:
                pass
