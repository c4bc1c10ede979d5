"""Soak: the ``sim`` bring-up with the embedded checkpoint for minutes; holds, RSS and latency.

``python -m benchmarks.soak --minutes 10`` starts the ``sim`` bring-up (sim node free-running on
``/clock`` + policy node with the Motus backend in its child process, the shipped
``config/nodes/policy.yaml``) and, for ``--minutes`` of sim time after a warm-up, records:

* every command (both arms): finite, inside the profile's limits, and the per-tick step from the
  previous command of that arm within ``velocity_max / control_rate_hz`` (the gate's limit at
  ``velocity_scale`` 1);
* the holds: the node's ``holds`` counter (held ticks) and, from its log, every hold episode with
  its reason (one line per change of state; numbers do not count as a change), those of the
  inference watchdog counted apart: with normal chunk timing there must be none (issue #14,
  defect 7);
* the resident memory (``VmRSS``) of the policy node and of its backend process, sampled every
  ``--sample-s`` wall seconds;
* per chunk, the backend's inference time and the observation -> chunk latency (from
  ``~/status``), compared between the first and the last quarter of the run.

Prints the figures, and exits 1 when a command was unsafe, a watchdog hold happened, RSS grew by
more than ``--rss-growth-mb`` or the last quarter's median latency exceeds the first's by more
than ``--latency-growth`` x. ``tests/ros/test_policy_node_soak.py`` runs it for ~20 s.

Threads: the caller's thread spins a private SingleThreadedExecutor.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from motus_policy.bringup import load_bringup
from motus_policy.bringup.runner import BringupRunner
from motus_policy.ros.policy_node import reason_key
from motus_recorder import schema
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import msg_to_positions, time_to_ns

POLICY_NODE = "motus_policy"
WATCHDOG_PREFIX = "watchdog"
"""Hold reasons of the inference watchdog start with this (``PolicyRuntime._check_fault``)."""
_HOLD_LINE = re.compile(r"\]: holding: (.*)$", re.MULTILINE)


@dataclass
class SoakReport:
    """What the soak measured (times in sim seconds unless named ``wall``)."""

    sim_s: float = 0.0
    wall_s: float = 0.0
    commands: int = 0
    unsafe: list[str] = field(default_factory=list)
    max_step_ratio: float = 0.0
    """Largest per-tick step over its limit, any joint (<= 1 when safe)."""
    held_ticks: int = 0
    chunks: int = 0
    hold_reasons: dict[str, int] = field(default_factory=dict)
    """Hold episodes during the soak by reason (numbers replaced by #)."""
    watchdog_holds: int = 0
    rss_mb: dict[str, list[float]] = field(default_factory=dict)
    """Per process ("policy", "backend"): VmRSS samples [MiB] after the warm-up."""
    infer_ms: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)

    def rss_growth_mb(self, name: str) -> float:
        """Median of the last quarter of the samples minus that of the first [MiB].

        Quarter medians, not first and last sample: the backend's RSS swings by +-50 MiB from
        one chunk to the next (torch's allocator). 0 with fewer than 4 samples.
        """
        a, b = self.quarter_medians(self.rss_mb.get(name, []))
        return b - a if np.isfinite(a) else 0.0

    def quarter_medians(self, values: list[float]) -> tuple[float, float]:
        """(median of the first quarter, median of the last quarter); NaN when too few."""
        n = len(values) // 4
        if n < 1:
            return float("nan"), float("nan")
        return float(np.median(values[:n])), float(np.median(values[-n:]))

    def lines(self) -> list[str]:
        """The printed figures."""
        out = [
            f"sim {self.sim_s:.1f} s, wall {self.wall_s:.1f} s, {self.chunks} chunks, "
            f"{self.commands} commands, unsafe {len(self.unsafe)}, largest step "
            f"{self.max_step_ratio:.2f} of the per-tick limit",
            f"held ticks {self.held_ticks} "
            f"({100 * self.held_ticks / max(1, self.commands // 2):.1f} % of ticks), "
            f"watchdog hold episodes {self.watchdog_holds}, hold episodes by reason "
            f"{self.hold_reasons or '{}'}",
        ]
        for name, s in self.rss_mb.items():
            if s:
                a, b = self.quarter_medians(s)
                out.append(
                    f"RSS {name}: first / last quarter median {a:.0f} / {b:.0f} MiB (min "
                    f"{min(s):.0f}, max {max(s):.0f}, growth {self.rss_growth_mb(name):+.1f} MiB "
                    f"over {len(s)} samples)"
                )
        for label, values in (("inference", self.infer_ms), ("obs -> chunk", self.latency_ms)):
            a, b = self.quarter_medians(values)
            out.append(
                f"{label} median: first quarter {a:.0f} ms, last quarter {b:.0f} ms "
                f"({len(values)} chunks, max {max(values, default=float('nan')):.0f} ms)"
            )
        return out

    def failures(self, rss_growth_mb: float, latency_growth: float) -> list[str]:
        """Why the soak failed (empty when it passed)."""
        out = [f"unsafe command: {u}" for u in self.unsafe[:10]]
        if self.watchdog_holds:
            out.append(f"{self.watchdog_holds} watchdog hold episodes with normal chunk timing")
        for name in self.rss_mb:
            if self.rss_growth_mb(name) > rss_growth_mb:
                out.append(f"RSS of {name} grew {self.rss_growth_mb(name):.1f} MiB")
        for label, values in (("inference", self.infer_ms), ("obs -> chunk", self.latency_ms)):
            a, b = self.quarter_medians(values)
            if np.isfinite(a) and b > latency_growth * a + 20.0:
                out.append(f"{label} median grew from {a:.0f} to {b:.0f} ms")
        if self.commands == 0:
            out.append("no command was published")
        return out


def rss_mib(pid: int) -> float | None:
    """VmRSS of process ``pid`` [MiB] from /proc (None when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    m = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(m.group(1)) / 1024 if m else None


class _Monitor(Node):
    def __init__(self, context: Context, profile):
        super().__init__("motus_soak", context=context)
        self.profile = profile
        self.clock_ns = 0
        self.status: dict = {}
        self.recording = False
        self.report = SoakReport()
        self._last: dict[str, np.ndarray] = {}
        self._lo, self._hi = profile.position_min, profile.position_max
        self._step_max = profile.velocity_max / profile.control_rate_hz
        self._chunks_seen: int | None = None
        for arm in profile.arms:
            self.create_subscription(
                JointState,
                arm.command_topic,
                functools.partial(self._cmd, arm.name, list(arm.joint_state_names)),
                1000,
            )
        self.create_subscription(Clock, profile.clock_topic, self._on_clock, 50)
        self.create_subscription(String, f"/{POLICY_NODE}/status", self._on_status, 50)

    def _cmd(self, arm: str, names: list[str], msg: JointState) -> None:
        q = msg_to_positions(msg, names)
        sl = schema.ARM_SLICES[arm]
        prev = self._last.get(arm)
        self._last[arm] = q
        if not self.recording:
            return
        rep = self.report
        rep.commands += 1
        if not np.all(np.isfinite(q)):
            rep.unsafe.append(f"{arm}: non-finite {q}")
        elif np.any(q < self._lo[sl] - 1e-9) or np.any(q > self._hi[sl] + 1e-9):
            rep.unsafe.append(f"{arm}: outside the limits {q}")
        elif prev is not None:
            ratio = float(np.max(np.abs(q - prev) / self._step_max[sl]))
            rep.max_step_ratio = max(rep.max_step_ratio, ratio)
            if ratio > 1.0 + 1e-6:
                rep.unsafe.append(f"{arm}: step {ratio:.2f} x the per-tick limit")

    def _on_clock(self, msg: Clock) -> None:
        self.clock_ns = time_to_ns(msg.clock)

    def _on_status(self, msg: String) -> None:
        self.status = st = json.loads(msg.data)
        chunks = st.get("chunks") or 0
        if self.recording and self._chunks_seen is not None and chunks > self._chunks_seen:
            infer = (st.get("infer_ms") or {}).get("last")
            lat = (st.get("scheduler") or {}).get("latency_ms_last")
            if infer is not None:
                self.report.infer_ms.append(float(infer))
            if lat is not None:
                self.report.latency_ms.append(float(lat))
        self._chunks_seen = chunks


def _backend_pid(log: str) -> int | None:
    m = re.search(r"backend process pid (\d+)", log)
    return int(m.group(1)) if m else None


def run_soak(
    seconds: float,
    bringup_args: dict[str, str] | None = None,
    warmup_s: float = 20.0,
    sample_s: float = 10.0,
    log_dir: str | None = None,
    progress=None,
) -> SoakReport:
    """Start the ``sim`` bring-up, wait ``warmup_s`` sim seconds of running, soak ``seconds``.

    Raises:
        TimeoutError: the graph did not come up, the policy never ran, or sim time stalled.
    """
    profile = load_profile("aloha_sim")
    nodes = load_bringup("sim").resolve(bringup_args or {})
    with BringupRunner(nodes, log_dir=log_dir, echo=False) as runner:
        runner.wait_ready(timeout_s=180)
        ctx = Context()
        rclpy.init(context=ctx)
        mon = _Monitor(ctx, profile)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(mon)
        try:
            _spin_until(ex, lambda: mon.status.get("state") == "running", 300, runner, mon)
            t_warm = mon.clock_ns
            _spin_until(ex, lambda: mon.clock_ns - t_warm >= warmup_s * 1e9, 60 + 30 * warmup_s,
                        runner, mon)  # fmt: skip
            pids = {"policy": runner.procs[POLICY_NODE].pid}
            child = _backend_pid(runner.output(POLICY_NODE))
            if child is not None:
                pids["backend"] = child
            rep = mon.report
            rep.rss_mb = {name: [] for name in pids}
            log0 = len(runner.output(POLICY_NODE))
            holds0 = mon.status.get("holds") or 0
            chunks0 = mon.status.get("chunks") or 0
            mon.recording = True
            t0, wall0, next_sample = mon.clock_ns, time.monotonic(), 0.0
            while mon.clock_ns - t0 < seconds * 1e9:
                ex.spin_once(timeout_sec=0.05)
                wall = time.monotonic() - wall0
                if wall >= next_sample:
                    next_sample += sample_s
                    for name, pid in pids.items():
                        mib = rss_mib(pid)
                        if mib is not None:
                            rep.rss_mb[name].append(mib)
                    if progress is not None:
                        progress(
                            f"sim {(mon.clock_ns - t0) / 1e9:6.1f} s  commands {rep.commands}  "
                            f"held {(mon.status.get('holds') or 0) - holds0}  rss "
                            + ", ".join(f"{n} {v[-1]:.0f} MiB" for n, v in rep.rss_mb.items() if v)
                        )
                if wall > 30 * seconds + 120:
                    raise TimeoutError(f"sim time stalled at {mon.clock_ns}")
                if runner.procs[POLICY_NODE].poll() is not None:
                    raise RuntimeError(
                        "policy node exited:\n" + runner.output(POLICY_NODE)[-3000:]
                    )
            mon.recording = False
            rep.sim_s = (mon.clock_ns - t0) / 1e9
            rep.wall_s = time.monotonic() - wall0
            rep.held_ticks = (mon.status.get("holds") or 0) - holds0
            rep.chunks = (mon.status.get("chunks") or 0) - chunks0
            for reason in _HOLD_LINE.findall(runner.output(POLICY_NODE)[log0:]):
                key = reason_key(reason.strip())
                rep.hold_reasons[key] = rep.hold_reasons.get(key, 0) + 1
                if key.startswith(WATCHDOG_PREFIX):
                    rep.watchdog_holds += 1
        finally:
            ex.shutdown(timeout_sec=1)
            mon.destroy_node()
            rclpy.try_shutdown(context=ctx)
    return rep


def _spin_until(ex, pred, timeout_s: float, runner: BringupRunner, mon: _Monitor) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"gave up after {timeout_s:.0f} s: status {mon.status}\n"
                + runner.output(POLICY_NODE)[-3000:]
            )
        ex.spin_once(timeout_sec=0.1)


def main(argv=None) -> int:
    """CLI; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="sim minutes after the warm-up")
    ap.add_argument("--warmup-s", type=float, default=20.0, help="sim seconds before measuring")
    ap.add_argument("--sample-s", type=float, default=10.0, help="RSS sample period [wall s]")
    ap.add_argument(
        "--checkpoint", default="aloha_sim_tiny", help="the sim bring-up's checkpoint argument"
    )
    ap.add_argument("--image-size", default="120x160", help="sim camera HxW (default 120x160)")
    ap.add_argument("--rss-growth-mb", type=float, default=32.0, help="failure threshold [MiB]")
    ap.add_argument("--latency-growth", type=float, default=1.5, help="failure ratio (plus 20 ms)")
    ap.add_argument("--log-dir", default="outputs/soak")
    ns = ap.parse_args(argv)
    h, w = ns.image_size.split("x")
    args = {"checkpoint": ns.checkpoint, "image_height": h, "image_width": w}
    rep = run_soak(ns.minutes * 60.0, args, ns.warmup_s, ns.sample_s, ns.log_dir, progress=print)
    for line in rep.lines():
        print(line)
    fails = rep.failures(ns.rss_growth_mb, ns.latency_growth)
    for f in fails:
        print(f"FAIL: {f}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
