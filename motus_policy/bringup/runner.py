"""Pip-world bring-up: start the nodes of a description as processes; stop them on Ctrl-C.

``python -m motus_policy.bringup sim --arg task=insertion`` starts the same nodes with the same
parameters as ``ros2 launch motus_policy sim.launch.py task:=insertion`` (both read
``config/bringup/sim.yaml``). Each node runs as ``python -m <module> --ros-args ...`` in its own
process group; its output is prefixed with ``[name]`` and, optionally, copied to a log file.

Threads: :class:`BringupRunner` is used from one thread; a daemon thread per node pumps output.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from motus_policy.bringup.description import NodeSpec, load_bringup
from motus_recorder.share import share_dir

CODE_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding ``motus_policy/`` (source tree or site-packages): the nodes' working dir,
so ``python -m`` finds the same code as this process."""
STOP_TIMEOUT_S = 10.0
"""Time a node gets to exit after SIGINT before it is killed."""


def bringup_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for node processes: the shipped Fast DDS profile unless one is set.

    Without the profile, raw 640x480 images lose about half their frames between processes
    (docs/platform.md §1.4).
    """
    env = dict(os.environ if base is None else base)
    dds = share_dir() / "config" / "dds" / "fastdds_shm.xml"
    env.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(dds))
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONUNBUFFERED"] = "1"
    return env


class BringupRunner:
    """Starts node specs as subprocesses and stops them (SIGINT, then SIGKILL) on exit.

    The nodes run in their own sessions, so a terminal's Ctrl-C reaches only this process
    (KeyboardInterrupt, then :meth:`stop`). Started from the main thread, the runner also turns
    SIGTERM (``timeout``, CI cancellation, ``kill``) into ``SystemExit(143)`` until
    :meth:`stop`, so ``with`` blocks and ``finally`` clauses stop the nodes instead of
    leaving them running; the previous handler is restored afterwards.

    Args:
        nodes: resolved node specs (:meth:`BringupDescription.resolve`).
        log_dir: if given, each node's output is also written to ``<log_dir>/<name>.log``.
        echo: forward node output to ``stream`` with a ``[name]`` prefix.
        env: environment for the nodes (default: :func:`bringup_env`).
        executable_dir: run each node's installed executable from this folder (a colcon
            install space's ``lib/motus_policy``, as ``ros2 run`` does: its ``#!`` line picks
            the interpreter), instead of ``python -m <module>`` with this interpreter.
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        log_dir: str | Path | None = None,
        echo: bool = True,
        env: Mapping[str, str] | None = None,
        stream: TextIO | None = None,
        executable_dir: str | Path | None = None,
    ):
        self.nodes = tuple(nodes)
        self.executable_dir = Path(executable_dir) if executable_dir is not None else None
        self.log_dir = Path(log_dir) if log_dir else None
        self.echo = echo
        self.env = dict(env) if env is not None else bringup_env()
        self.stream = stream or sys.stdout
        self.procs: dict[str, subprocess.Popen] = {}
        self._outputs: dict[str, list[str]] = {}
        self._threads: list[threading.Thread] = []
        self._prev_sigterm: object = None

    def command(self, node: NodeSpec) -> list[str]:
        """The exact command line used for ``node``."""
        if self.executable_dir is not None:  # as `ros2 run`: the script's own #! line
            return [str(self.executable_dir / node.executable), *node.ros_args()]
        return [sys.executable, "-m", node.module, *node.ros_args()]

    def start(self) -> None:
        """Start every node (non-blocking)."""
        self._trap_sigterm()
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for node in self.nodes:
            p = subprocess.Popen(
                self.command(node),
                cwd=CODE_ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            self.procs[node.name] = p
            self._outputs[node.name] = []
            t = threading.Thread(target=self._pump, args=(node.name, p), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        log = open(self.log_dir / f"{name}.log", "w") if self.log_dir else None  # noqa: SIM115
        try:
            for line in proc.stdout:  # type: ignore[union-attr]
                self._outputs[name].append(line)
                if log:
                    log.write(line)
                    log.flush()
                if self.echo:
                    self.stream.write(f"[{name}] {line}")
                    self.stream.flush()
        finally:
            if log:
                log.close()

    def output(self, name: str) -> str:
        """Everything node ``name`` printed so far."""
        return "".join(self._outputs.get(name, []))

    def wait_ready(self, timeout_s: float = 60.0, marker: str = "READY") -> None:
        """Block until every node printed ``marker``.

        Raises:
            RuntimeError: a node exited first (its output tail is in the message).
            TimeoutError: not all nodes were ready in time.
        """
        deadline = time.monotonic() + timeout_s
        pending = set(self.procs)
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if marker in self.output(name):
                    pending.discard(name)
                elif self.procs[name].poll() is not None:
                    raise RuntimeError(
                        f"node {name} exited with {self.procs[name].returncode}:\n"
                        + self.output(name)[-3000:]
                    )
            time.sleep(0.05)
        if pending:
            raise TimeoutError(f"nodes not ready after {timeout_s} s: {sorted(pending)}")

    def poll(self) -> dict[str, int | None]:
        """Exit code per node (None while running)."""
        return {n: p.poll() for n, p in self.procs.items()}

    def _trap_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if self._prev_sigterm is not None:  # already trapped (SIG_DFL is falsy: test for None)
            return
        prev = signal.getsignal(signal.SIGTERM)
        if prev is signal.SIG_IGN:
            return

        def on_sigterm(signum: int, _frame: object) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
        self._prev_sigterm = prev

    def stop(self) -> dict[str, int | None]:
        """SIGINT every node's process group, wait, SIGKILL stragglers; returns exit codes.

        A SIGTERM arriving meanwhile is ignored (the nodes are being stopped already).
        """
        prev, self._prev_sigterm = self._prev_sigterm, None
        if prev is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            self._stop_nodes()
        finally:
            if prev is not None:
                signal.signal(signal.SIGTERM, prev)
        return self.poll()

    def _stop_nodes(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(5)
        for t in self._threads:
            t.join(2)

    def __enter__(self) -> BringupRunner:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse_args(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise SystemExit(f"--arg expects name=value, got {v!r}")
        k, val = v.split("=", 1)
        out[k] = val
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``python -m motus_policy.bringup <description> [--arg k=v ...]``."""
    ap = argparse.ArgumentParser(
        prog="motus-bringup",
        description="Start the nodes of a bring-up description (config/bringup/<name>.yaml) as "
        "processes, as `ros2 launch motus_policy <name>.launch.py` would; Ctrl-C stops them.",
    )
    ap.add_argument("description", help="description name (e.g. sim) or YAML path")
    ap.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                    help="bring-up argument (see --list)")  # fmt: skip
    ap.add_argument("--list", action="store_true", help="print arguments and nodes, then exit")
    ap.add_argument("--log-dir", help="also write each node's output to LOG_DIR/<node>.log")
    ns = ap.parse_args(argv)
    desc = load_bringup(ns.description)
    nodes = desc.resolve(_parse_args(ns.arg))
    if ns.list:
        print(f"{desc.name}: {desc.description}")
        for a in desc.arguments:
            print(f"  arg {a.name} (default {a.default}): {a.description}")
        runner = BringupRunner(nodes)
        for n in nodes:
            print("  node", n.name, ":", " ".join(runner.command(n)))
        return 0
    runner = BringupRunner(nodes, log_dir=ns.log_dir)
    runner.start()
    try:
        while all(rc is None for rc in runner.poll().values()):
            time.sleep(0.2)
        print("a node exited; stopping the rest:", runner.poll(), file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        codes = runner.stop()
    return 0 if all(c in (0, -2, None) for c in codes.values()) else 1
