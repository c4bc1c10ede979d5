"""The backend child exits quietly when its parent goes away mid-request (issue #15 §7: after
Ctrl-C of a launch the child printed a BrokenPipeError traceback when it answered a parent
that was gone). A real parent process with a RemoteBackend, SIGINT to its process group while
the child is inferring; the child's stderr (inherited from the parent) is read to its end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = textwrap.dedent(
    """
    import threading, time
    import numpy as np
    from motus_policy.backends.fakes import ScriptedConfig
    from motus_policy.backends.remote import RemoteBackend
    from motus_policy.types import Observation

    rb = RemoteBackend("scripted", {"config": ScriptedConfig(latency_s=LATENCY)})
    rb.load()
    images = {n: np.zeros((48, 64, 3), np.uint8) for n in ("a", "b", "c")}
    obs = Observation(images, np.zeros(14, np.float32), 2_000_000_000)
    print(rb.pid, flush=True)
    while True:
        rb.infer(obs, mode="joint", num_steps=10, action_prefix=None, instruction="")
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("latency_s", [0.5, 0.0])
def test_child_exits_quietly_after_sigint_of_the_group(tmp_path, latency_s):
    parent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.replace("LATENCY", repr(latency_s))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, start_new_session=True,
    )  # fmt: skip
    try:
        child = int(parent.stdout.readline())
        time.sleep(0.2)  # inside an inference (0.5 s) / between many fast ones
        os.killpg(parent.pid, signal.SIGINT)
        _, err = parent.communicate(timeout=30)  # EOF once the child has gone too
    finally:
        with_group = parent.poll() is None
        if with_group:
            os.killpg(parent.pid, signal.SIGKILL)
            parent.wait(10)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
    child_lines = [line for line in err.splitlines() if "BrokenPipe" in line or "EOFError" in line]
    assert not child_lines, err
    # the parent's own KeyboardInterrupt traceback is the test script's; the child adds nothing
    assert err.count("Traceback") <= 1, err
