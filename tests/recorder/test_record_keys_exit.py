"""record_keys exits cleanly (status 0, no abort, no traceback) on q, end of input, Ctrl-C and
SIGTERM. Issue #15 §7: with its executor spinning on a daemon thread it always ended with
SIGABRT ("terminate called without an active exception"). Real subprocess over real rclpy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ros
@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["q", "eof", "sigint", "sigterm"])
def test_record_keys_exits_zero(ros_env, tmp_path, how):
    log = tmp_path / "record_keys.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "motus_recorder.ros.record_keys"],
            stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True,
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while "record_keys READY" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            if how == "q":
                proc.stdin.write("q\n")
                proc.stdin.flush()
            elif how == "eof":
                proc.stdin.close()
            else:
                sig = signal.SIGINT if how == "sigint" else signal.SIGTERM
                os.killpg(proc.pid, sig)
            rc = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
    text = log.read_text()
    assert rc == 0, f"exit {rc}:\n{text}"
    assert "terminate called" not in text and "Traceback" not in text, text
