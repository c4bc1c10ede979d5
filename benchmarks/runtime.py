"""Benchmark of the policy runtime's command stream with the real clock (no ROS).

Drives the same :class:`PolicyRuntime` the node uses: a feeder thread plays a fake robot
(cameras and joint states), the inference worker runs a scripted backend with a realistic
latency, and the main thread is the control loop at ``--rate-hz``. Prints the command period
error (median / p99 of |interval - period|), missed periods (interval > 1.5 periods), the
control tick's own cost, and the observation-to-first-action latency.

    python -m benchmarks.runtime --seconds 10 --rate-hz 30 --latency-s 0.15

``--gil-busy`` makes the fake backend burn CPU in pure Python while "inferring" (worst case for
the control thread: it then competes for the GIL, switch interval 5 ms); by default it sleeps,
like a GPU backend that releases the GIL.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import numpy as np

from motus_policy.backends.fakes import ScriptedBackend, ScriptedConfig
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.runtime.policy_runtime import GIL_SWITCH_INTERVAL_S, PolicyRuntime
from motus_recorder.profile import load_profile


def _busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


class _Recording(ScriptedBackend):
    """Scripted backend that remembers the stamp of each observation it was given."""

    def __init__(self, config, sleep):
        super().__init__(config, sleep)
        self.stamps: list[int] = []

    def infer(self, obs, **kw):  # noqa: D102
        self.stamps.append(obs.stamp_ns)
        return super().infer(obs, **kw)


def _feeder(rt: PolicyRuntime, stop: threading.Event, cam_hz: float, joint_hz: float) -> None:
    prof = rt.profile
    imgs = {c.name: np.zeros((c.height, c.width, 3), np.uint8) for c in prof.cameras}
    q = np.full(7, 0.1)
    next_cam = next_js = time.monotonic_ns()
    while not stop.is_set():
        now = time.monotonic_ns()
        if now >= next_cam:
            for name, img in imgs.items():
                rt.assembler.update_image(name, img, now)
            next_cam += int(1e9 / cam_hz)
        if now >= next_js:
            rt.assembler.update_joints("left", q, now)
            rt.assembler.update_joints("right", q, now)
            next_js += int(1e9 / joint_hz)
        time.sleep(max(0.0, (min(next_cam, next_js) - time.monotonic_ns()) / 1e9))


def run(seconds: float, rate_hz: float, latency_s: float, strategy: str, gil_busy: bool) -> dict:
    """Run the benchmark; returns the figures (ms unless named otherwise)."""
    prof = load_profile("aloha_sim")
    cfg = PolicyRuntimeConfig(
        strategy=strategy, n_action_steps=8, control_rate_hz=rate_hz, ramp_in_s=0.5
    )
    bcfg = ScriptedConfig(action_rate_hz=30.0, chunk_size=48, latency_s=latency_s, num_frames=0)
    backend = _Recording(bcfg, _busy if gil_busy else time.sleep)
    rt = PolicyRuntime(prof, cfg, backend, time.monotonic_ns)
    stop = threading.Event()
    feeder = threading.Thread(target=_feeder, args=(rt, stop, 30.0, 50.0), daemon=True)
    feeder.start()
    time.sleep(0.2)
    rt.activate(time.monotonic_ns())
    period_ns = int(1e9 / rate_hz)
    ticks, costs, first_action, held = [], [], [], 0
    seen_chunk = None
    start = time.monotonic_ns()
    k = 0
    while time.monotonic_ns() - start < seconds * 1e9:
        k += 1
        deadline = start + k * period_ns
        time.sleep(max(0.0, (deadline - time.monotonic_ns()) / 1e9))
        t = time.monotonic_ns()
        res = rt.tick(t)
        costs.append(time.monotonic_ns() - t)
        ticks.append(t)
        held += res.held
        arrived = rt.scheduler.last_chunk_ns()
        if arrived is not None and arrived != seen_chunk:
            seen_chunk = arrived
            stamp = max(s for s in backend.stamps if s <= arrived)
            first_action.append(t - stamp)
    d = rt.scheduler.last_d
    stop.set()
    rt.close()
    feeder.join(1)
    iv = np.diff(np.asarray(ticks)) / 1e6
    err = np.abs(iv - period_ns / 1e6)
    fa = np.asarray(first_action[1:], dtype=np.float64) / 1e6  # skip the cold start
    c = np.asarray(costs) / 1e6
    return {
        "ticks": len(ticks),
        "period_err_median_ms": float(np.median(err)),
        "period_err_p99_ms": float(np.percentile(err, 99)),
        "missed_periods": int(np.count_nonzero(iv > 1.5 * period_ns / 1e6)),
        "tick_cost_median_ms": float(np.median(c)),
        "tick_cost_p99_ms": float(np.percentile(c, 99)),
        "obs_to_first_action_median_ms": float(np.median(fa)) if fa.size else None,
        "obs_to_first_action_p99_ms": float(np.percentile(fa, 99)) if fa.size else None,
        "chunks": rt.worker.chunks,
        "held_ticks": held,
        "d": d,
    }


def baseline(seconds: float, rate_hz: float) -> dict:
    """The same deadline-sleep loop doing nothing: the OS's own timer jitter on this machine."""
    period_ns = int(1e9 / rate_hz)
    ticks = []
    start = time.monotonic_ns()
    for k in range(1, int(seconds * rate_hz) + 1):
        time.sleep(max(0.0, (start + k * period_ns - time.monotonic_ns()) / 1e9))
        ticks.append(time.monotonic_ns())
    iv = np.diff(np.asarray(ticks)) / 1e6
    err = np.abs(iv - period_ns / 1e6)
    return {
        "baseline_period_err_median_ms": float(np.median(err)),
        "baseline_period_err_p99_ms": float(np.percentile(err, 99)),
        "baseline_missed_periods": int(np.count_nonzero(iv > 1.5 * period_ns / 1e6)),
    }


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: prints one line per figure."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rate-hz", type=float, default=30.0)
    ap.add_argument("--latency-s", type=float, default=0.15)
    ap.add_argument("--strategy", default="prefix")
    ap.add_argument("--gil-busy", action="store_true")
    ap.add_argument(
        "--switch-interval-ms", type=float, default=GIL_SWITCH_INTERVAL_S * 1e3,
        help="sys.setswitchinterval in ms (the node's value by default; CPython's is 5)",
    )  # fmt: skip
    a = ap.parse_args(argv)
    sys.setswitchinterval(a.switch_interval_ms / 1e3)
    figures = run(a.seconds, a.rate_hz, a.latency_s, a.strategy, a.gil_busy)
    figures.update(baseline(a.seconds, a.rate_hz))
    print(
        f"policy runtime benchmark: {a.seconds:.0f} s at {a.rate_hz:.0f} Hz, strategy "
        f"{a.strategy}, backend latency {a.latency_s * 1e3:.0f} ms"
        + (" (GIL-busy)" if a.gil_busy else " (sleeping)")
        + f", switch interval {a.switch_interval_ms:g} ms"
    )
    for key, value in figures.items():
        print(f"  {key:32s} {value:.3f}" if isinstance(value, float) else f"  {key:32s} {value}")


if __name__ == "__main__":
    main()
