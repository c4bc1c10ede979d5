"""Closed-loop check: the policy node controls the simulated ALOHA, in each chunk strategy.

``python -m benchmarks.closed_loop --seconds 60`` starts the ``sim`` bring-up (sim
node free-running on /clock + policy node with the Motus backend), then for each strategy
(switched at run time through the policy node's parameters) records, for ``--seconds`` of sim
time: the per-arm command stream (period error against the control period, missed periods, in
sim time), whether every command was finite and inside the profile's limits, how far the arm
moved, and the policy's status (holds, chunks, inference latency). Prints one table row per
strategy. ``tests/ros/test_closed_loop.py`` runs it for a few seconds per strategy.

Threads: the caller's thread spins a private SingleThreadedExecutor.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import rclpy
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from motus_policy.bringup import load_bringup
from motus_policy.bringup.runner import BringupRunner
from motus_policy.runtime.config import STRATEGIES, STRATEGY_ALIASES
from motus_recorder import schema
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import msg_to_positions, time_to_ns

POLICY_NODE = "motus_policy"


@dataclass
class StrategyReport:
    """What one strategy did in closed loop (times in sim time unless noted)."""

    strategy: str
    sim_s: float = 0.0
    wall_s: float = 0.0
    commands: int = 0
    period_error_ms: list[float] = field(default_factory=list)
    missed_periods: int = 0
    unsafe_commands: int = 0
    arm_travel_rad: float = 0.0
    status: dict = field(default_factory=dict)

    def row(self) -> str:
        """One line of the printed table."""
        err = np.abs(np.asarray(self.period_error_ms or [np.nan]))
        s = self.status
        infer = s.get("infer_ms") or {}
        return (
            f"{self.strategy:18s} sim {self.sim_s:5.1f} s  wall {self.wall_s:5.1f} s  "
            f"cmds {self.commands:5d}  period err median {np.median(err):.3f} / p99 "
            f"{np.percentile(err, 99):.3f} ms  missed {self.missed_periods}  unsafe "
            f"{self.unsafe_commands}  travel {self.arm_travel_rad:.2f} rad  chunks "
            f"{s.get('chunks')}  holds {s.get('holds')}  infer {infer}"
        )


class _Monitor(Node):
    def __init__(self, context: Context, profile):
        super().__init__("motus_closed_loop_check", context=context)
        self.profile = profile
        self.clock_ns = 0
        self.status: dict = {}
        self.cmds: dict[str, list[tuple[int, np.ndarray]]] = {a.name: [] for a in profile.arms}
        self.states: dict[str, list[np.ndarray]] = {a.name: [] for a in profile.arms}
        for arm in profile.arms:
            names = list(arm.joint_state_names)
            self.create_subscription(
                JointState,
                arm.command_topic,
                functools.partial(self._cmd, arm.name, names),
                50,
            )
            self.create_subscription(
                JointState,
                arm.state_topic,
                functools.partial(self._state, arm.name, list(arm.joint_names)),
                50,
            )
        self.create_subscription(Clock, profile.clock_topic, self._on_clock, 50)
        self.create_subscription(String, f"/{POLICY_NODE}/status", self._on_status, 10)
        self.params = self.create_client(SetParameters, f"/{POLICY_NODE}/set_parameters")

    def _state(self, arm: str, names: list[str], msg: JointState) -> None:
        self.states[arm].append(msg_to_positions(msg, names))

    def _cmd(self, arm: str, names: list[str], msg: JointState) -> None:
        self.cmds[arm].append((time_to_ns(msg.header.stamp), msg_to_positions(msg, names)))

    def _on_clock(self, msg: Clock) -> None:
        self.clock_ns = time_to_ns(msg.clock)

    def _on_status(self, msg: String) -> None:
        self.status = json.loads(msg.data)


def _set_strategy(mon: _Monitor, ex: SingleThreadedExecutor, strategy: str) -> None:
    if not mon.params.wait_for_service(timeout_sec=30):
        raise TimeoutError(f"/{POLICY_NODE}/set_parameters not available")
    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=strategy)
    fut = mon.params.call_async(
        SetParameters.Request(parameters=[Parameter(name="strategy", value=value)])
    )
    ex.spin_until_future_complete(fut, timeout_sec=30)
    res = fut.result()
    if res is None or not res.results[0].successful:
        raise RuntimeError(f"policy node refused strategy={strategy}: {res and res.results[0]}")


def _analyse(report: StrategyReport, mon: _Monitor, period_ns: int) -> None:
    lo, hi = mon.profile.position_min, mon.profile.position_max
    arm_lo = {a: lo[schema.ARM_SLICES[a]] for a in schema.ARM_NAMES}
    arm_hi = {a: hi[schema.ARM_SLICES[a]] for a in schema.ARM_NAMES}
    stamps = np.array([t for t, _ in mon.cmds["left"]], dtype=np.int64)
    report.commands = len(stamps)
    if len(stamps) > 1:
        d = np.diff(stamps)
        report.period_error_ms = list((d - period_ns) / 1e6)
        report.missed_periods = int(np.sum(np.maximum(0, np.round(d / period_ns) - 1)))
    for arm, cmds in mon.cmds.items():
        for _, q in cmds:
            if (
                not np.all(np.isfinite(q))
                or np.any(q < arm_lo[arm] - 1e-9)
                or np.any(q > arm_hi[arm] + 1e-9)
            ):
                report.unsafe_commands += 1
    for states in mon.states.values():  # measured arm joints (no gripper), every arm
        if len(states) > 1:
            report.arm_travel_rad += float(np.abs(np.diff(np.stack(states), axis=0)).sum())
    report.status = dict(mon.status)


def run_check(
    seconds: float,
    strategies=STRATEGIES,
    bringup_args: dict[str, str] | None = None,
    log_dir: str | None = None,
    echo: bool = False,
    share_dir: str | None = None,
    runner_kwargs: dict | None = None,
) -> list[StrategyReport]:
    """Start the ``sim`` bring-up and run each strategy for ``seconds`` of sim time.

    ``share_dir`` (the description's parameter files) and ``runner_kwargs`` (passed to
    :class:`BringupRunner`: ``env``, ``executable_dir``) run an installed copy instead.

    Raises:
        TimeoutError: the graph did not come up, or sim time stopped advancing.
    """
    profile = load_profile("aloha_sim")
    period_ns = round(1e9 / profile.control_rate_hz)
    nodes = load_bringup("sim", base_dir=share_dir).resolve(bringup_args or {})
    reports = []
    with BringupRunner(nodes, log_dir=log_dir, echo=echo, **(runner_kwargs or {})) as runner:
        runner.wait_ready(timeout_s=120)
        ctx = Context()
        rclpy.init(context=ctx)
        mon = _Monitor(ctx, profile)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(mon)
        try:
            for strategy in strategies:
                _set_strategy(mon, ex, strategy)
                _wait_running(mon, ex, runner, timeout_s=120)
                for c in mon.cmds.values():
                    c.clear()
                for states in mon.states.values():
                    states.clear()
                rep = StrategyReport(strategy)
                t_wall, t0 = time.monotonic(), mon.clock_ns
                while mon.clock_ns - t0 < seconds * 1e9:
                    ex.spin_once(timeout_sec=0.05)
                    if time.monotonic() - t_wall > 30 * seconds + 60:
                        raise TimeoutError(f"{strategy}: sim time stalled at {mon.clock_ns}")
                rep.sim_s = (mon.clock_ns - t0) / 1e9
                rep.wall_s = time.monotonic() - t_wall
                _analyse(rep, mon, period_ns)
                reports.append(rep)
        finally:
            ex.shutdown(timeout_sec=1)
            mon.destroy_node()
            rclpy.try_shutdown(context=ctx)
    return reports


def _wait_running(mon: _Monitor, ex, runner: BringupRunner, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while mon.status.get("state") != "running":
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"policy not running after {timeout_s} s: status {mon.status}\n"
                + runner.output(POLICY_NODE)[-3000:]
            )
        ex.spin_once(timeout_sec=0.1)


def main(argv=None) -> int:
    """CLI; see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="sim seconds per strategy")
    ap.add_argument(
        "--strategies",
        nargs="+",
        default=list(STRATEGIES),
        choices=STRATEGIES,
        type=lambda s: STRATEGY_ALIASES.get(s, s),
        help="chunk strategies to run, in this order ('prefix' = rtc; default: all)",
    )
    ap.add_argument("--checkpoint", default="tiny-random")
    ap.add_argument("--image-size", default="120x160", help="sim camera HxW (default 120x160)")
    ap.add_argument("--log-dir", default="outputs/closed_loop_check")
    ns = ap.parse_args(argv)
    h, w = ns.image_size.split("x")
    args = {"checkpoint": ns.checkpoint, "image_height": h, "image_width": w}
    reports = run_check(ns.seconds, ns.strategies, args, log_dir=ns.log_dir)
    for r in reports:
        print(r.row())
    return 0 if all(r.unsafe_commands == 0 and r.commands > 0 for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
