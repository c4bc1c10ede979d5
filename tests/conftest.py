"""Shared fixtures: a private DDS domain per test, node subprocesses, a fake clock.

ROS tests follow docs/platform.md §10: nodes run as subprocesses in their own process group, each
test uses its own ROS_DOMAIN_ID (safe under xdist), the Fast DDS profile with a large SHM segment
is set so raw images cross processes without drops, and the test process uses a private rclpy
Context.
"""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DDS_PROFILE = REPO / "config" / "dds" / "fastdds_shm.xml"

# Shared fixtures (bags, small profiles, tiny datasets) live with the other fakes.
pytest_plugins = ["tests.fakes.fixtures", "tests.fakes.colcon"]

# Headless MuJoCo rendering, as `make test` exports: dm_control reads these when first imported
# (from a test module, after this file), and without them it tries GLFW and aborts the process.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


CPU_EXCLUSIVE_GROUP = "cpu_exclusive"
"""xdist group of the ``cpu_exclusive`` tests. On the 2-core CI machine a 2-process training
test takes both cores; a test that measures timing (e-stop answer bounds, the recorder's drop
count at robot rates, camera ticks) running beside it saw stalls of 100-300 ms that are not the
code's (the recorder benchmark failed 3 of 3 tries in one full-suite run). With ``--dist
loadgroup`` (Makefile) the tests of one group run on one worker, one after the other, so these
never overlap each other; the other worker still runs the rest."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "cpu_exclusive" in item.keywords:
            item.add_marker(pytest.mark.xdist_group(CPU_EXCLUSIVE_GROUP))
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # torch missing or broken: GPU tests cannot run either
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA device (run on the lent GPU machine)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


DOMAIN_LOCK_DIR = Path(os.environ.get("TMPDIR", "/tmp")) / "motus-ros-domains"


def _claim_domain() -> tuple[int, int]:
    """Claim a free ROS_DOMAIN_ID (1..232) with an flock held for the test's lifetime.

    Random ids collided between xdist workers and with other runs on the same machine; a lock
    file per id makes the claim exclusive across processes.
    """
    DOMAIN_LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = random.randint(1, 232)
    for i in range(232):
        domain = 1 + (start + i) % 232
        fd = os.open(DOMAIN_LOCK_DIR / f"{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return domain, fd
        except BlockingIOError:
            os.close(fd)
    raise RuntimeError("no free ROS_DOMAIN_ID in 1..232")


@pytest.fixture
def ros_env(monkeypatch):
    """Own DDS domain + localhost discovery + the shipped Fast DDS profile, for this test."""
    domain, fd = _claim_domain()
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    monkeypatch.setenv("FASTRTPS_DEFAULT_PROFILES_FILE", str(DDS_PROFILE))
    monkeypatch.setenv("MUJOCO_GL", os.environ.get("MUJOCO_GL", "egl"))
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    yield domain
    os.close(fd)  # releases the lock


class NodeProcess:
    """A node started as ``python -m module --ros-args ...`` in its own process group.

    Output goes to a log file (never a pipe that could fill and block the node); ``wait_for``
    polls that file for a line such as ``READY``.
    """

    def __init__(self, module: str, args: list[str], log_path: Path, env: dict[str, str]):
        self.module = module
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.module} exited with {self.proc.returncode} before {text!r}:\n"
                    + self.output()[-4000:]
                )
            time.sleep(0.05)
        raise TimeoutError(
            f"{self.module}: no {text!r} in {timeout_s} s:\n" + self.output()[-4000:]
        )

    def stop(self, timeout_s: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def spawn_node(ros_env, tmp_path):
    """Start node modules as subprocesses; all are stopped (SIGINT, then SIGKILL) at teardown."""
    procs: list[NodeProcess] = []

    def _spawn(module: str, *ros_args: str, name: str | None = None) -> NodeProcess:
        log = tmp_path / f"{name or module.rsplit('.', 1)[-1]}_{len(procs)}.log"
        args = ["--ros-args", *ros_args] if ros_args else []
        p = NodeProcess(module, args, log, dict(os.environ))
        procs.append(p)
        return p

    yield _spawn
    for p in procs:
        p.stop()


@pytest.fixture
def ros_context(ros_env):
    """A private rclpy Context for the test process; shut down at teardown."""
    import rclpy
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    rclpy.try_shutdown(context=ctx)


@pytest.fixture
def spin_in_background():
    """Spin a node on a SingleThreadedExecutor in a daemon thread until teardown."""
    started = []

    def _start(node, context):
        from rclpy.executors import SingleThreadedExecutor

        ex = SingleThreadedExecutor(context=context)
        ex.add_node(node)
        stop = threading.Event()

        def _run():
            while not stop.is_set() and context.ok():
                ex.spin_once(timeout_sec=0.02)

        t = threading.Thread(target=_run, daemon=True)
        t.start()
        started.append((stop, t, ex))
        return ex

    yield _start
    for stop, t, ex in started:
        stop.set()
        t.join(2)
        ex.shutdown(timeout_sec=1)


class FakeClock:
    """Injectable clock for core objects: ``clock()`` returns int ns; ``advance(s)`` moves it."""

    def __init__(self, start_ns: int = 1_000_000_000):
        self.now_ns = int(start_ns)

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> int:
        self.now_ns += int(round(seconds * 1e9))
        return self.now_ns


@pytest.fixture
def fake_clock():
    return FakeClock()
