"""RemoteBackend: a real child process running the scripted fake (round trip, errors, lifetime)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from motus_policy.backends.base import PolicyBackend
from motus_policy.backends.fakes import ScriptedBackend, ScriptedConfig
from motus_policy.backends.remote import RemoteBackend, RemoteBackendError
from motus_policy.types import Observation

pytestmark = pytest.mark.timeout(120)


def _obs(stamp_ns: int = 2_000_000_000) -> Observation:
    rng = np.random.default_rng(0)
    images = {n: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for n in ("a", "b", "c")}
    return Observation(images, np.linspace(-0.5, 0.5, 14).astype(np.float32), stamp_ns)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead for our purpose
        return f.read().split()[2] != "Z"


@pytest.fixture
def remote():
    backends = []

    def _make(*args, **kwargs):
        b = RemoteBackend(*args, **kwargs)
        backends.append(b)
        return b

    yield _make
    for b in backends:
        b.close()


def test_round_trip_matches_in_process_backend(remote):
    cfg = ScriptedConfig(action_rate_hz=30.0, chunk_size=24, recommended_n_action_steps=12)
    rb = remote("scripted", {"config": cfg})
    assert isinstance(rb, PolicyBackend)
    assert (rb.action_rate_hz, rb.chunk_size) == (30.0, 24)
    assert rb.recommended_n_action_steps == 12  # mirrored from the child
    assert rb.pid != os.getpid()
    lines = []
    rb.load(lines.append)
    assert lines == ["scripted backend: building", "scripted backend: ready"]  # forwarded

    ref = ScriptedBackend(ScriptedConfig(action_rate_hz=30.0, chunk_size=24))
    prefix = np.full((3, 14), 0.25, np.float32)
    for mode, pre in (("joint", None), ("vla", prefix)):
        kw = {"mode": mode, "num_steps": 10, "action_prefix": pre, "instruction": "pick"}
        got, want = rb.infer(_obs(), **kw), ref.infer(_obs(), **kw)
        np.testing.assert_array_equal(got.actions, want.actions)
        assert (got.t0_ns, got.period_ns) == (want.t0_ns, want.period_ns)
        assert got.frame_stamps_ns == want.frame_stamps_ns
        if want.frames is None:
            assert got.frames is None
        else:
            np.testing.assert_array_equal(got.frames, want.frames)
            assert got.frames.flags.writeable
    np.testing.assert_array_equal(got.actions[:3], prefix)

    rb.reset()  # re-centre on the next observation: a shifted state moves the chunk
    shifted = Observation(dict(_obs().images), _obs().state + 0.1, _obs().stamp_ns)
    kw = {"mode": "vla", "num_steps": 10, "action_prefix": None, "instruction": ""}
    moved = rb.infer(shifted, **kw)
    ref.reset()
    np.testing.assert_array_equal(moved.actions, ref.infer(shifted, **kw).actions)
    assert not np.allclose(moved.actions, got.actions)


def test_set_option_reaches_the_child_before_the_next_call(remote):
    rb = remote("scripted", {"config": ScriptedConfig()})
    rb.load()
    rb.set_option("fault", "nan")
    chunk = rb.infer(_obs(), mode="vla", num_steps=10, action_prefix=None, instruction="")
    assert np.all(np.isnan(chunk.actions[:, 0]))


def test_child_errors_are_reraised_with_type_and_message(remote):
    with pytest.raises(ValueError, match="backend: expected one of"):
        remote("no-such-backend")  # the constructor's error, raised in the child
    rb = remote("scripted", {"config": ScriptedConfig()})
    with pytest.raises(ValueError, match="mode: expected one of") as info:
        rb.infer(_obs(), mode="bogus", num_steps=10, action_prefix=None, instruction="")
    assert any("raised in the backend process" in n for n in info.value.__notes__)
    # the child survives a failed call
    rb.infer(_obs(), mode="vla", num_steps=10, action_prefix=None, instruction="")


def test_a_dead_child_makes_every_call_fail_clearly(remote):
    rb = remote("scripted", {"config": ScriptedConfig()})
    os.kill(rb.pid, signal.SIGKILL)
    for _ in range(2):
        with pytest.raises(RemoteBackendError, match="exited"):
            rb.infer(_obs(), mode="vla", num_steps=10, action_prefix=None, instruction="")


def test_close_stops_the_child(remote):
    rb = remote("scripted", {"config": ScriptedConfig()})
    pid = rb.pid
    rb.close()
    rb.close()  # idempotent
    assert not _pid_alive(pid)
    with pytest.raises(RemoteBackendError, match="closed"):
        rb.reset()


def test_close_does_not_wait_for_an_inference_in_flight(remote):
    """Issue #14, defect 2: cleanup must not block on a slow inference (here 30 s)."""
    import threading

    rb = remote("scripted", {"config": ScriptedConfig(latency_s=30.0)})
    pid = rb.pid
    errors: list[BaseException] = []

    def _infer():
        try:
            rb.infer(_obs(), mode="vla", num_steps=10, action_prefix=None, instruction="")
        except BaseException as exc:  # noqa: BLE001 - what the worker thread would see
            errors.append(exc)

    t = threading.Thread(target=_infer, daemon=True)
    t.start()
    time.sleep(0.5)  # the request is in the child, which sleeps through its latency
    t0 = time.monotonic()
    rb.close()
    took = time.monotonic() - t0
    assert took < 5.0, f"close waited {took:.1f} s for the inference in flight"
    t.join(10)
    assert not t.is_alive(), "the busy infer call did not return after close"
    assert errors and isinstance(errors[0], RemoteBackendError), errors
    assert not _pid_alive(pid)


def test_child_dies_with_its_parent(tmp_path):
    """A parent killed with SIGKILL (no cleanup at all) still takes its backend process along."""
    script = textwrap.dedent(
        """
        import time
        from motus_policy.backends.fakes import ScriptedConfig
        from motus_policy.backends.remote import RemoteBackend
        rb = RemoteBackend("scripted", {"config": ScriptedConfig()})
        print(rb.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    try:
        child = int(parent.stdout.readline())
        assert _pid_alive(child)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while _pid_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _pid_alive(child), "backend process outlived its parent"
    finally:
        parent.kill()
        parent.wait(10)


def test_motus_in_the_child_keeps_torch_out_of_the_parent():
    """The parent of a ``motus`` backend process never imports torch (import boundary)."""
    script = textwrap.dedent(
        """
        import sys
        from motus_policy.backends.remote import RemoteBackend
        from motus_recorder.profile import load_profile
        try:
            RemoteBackend("motus", {"profile": load_profile("aloha_sim"), "checkpoint": "/nope"})
        except FileNotFoundError as exc:
            print("error:", exc)
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=100,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "error: motus.checkpoint: no checkpoint folder at /nope" in out.stdout
    assert out.stdout.strip().endswith("False")
