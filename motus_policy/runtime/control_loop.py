"""A control loop on its own thread, woken at absolute deadlines, and its timing figures.

:class:`ControlLoop` calls ``step(now_ns)`` at ``t0 + k * period`` on an injected clock. It
sleeps to each *absolute* deadline (no drift from the time ``step`` takes), so a late wake-up
shifts one tick, not all later ones. Deadlines that have already passed when a tick ends are
skipped (counted in :attr:`ControlLoop.skipped`), never executed in a burst.

The policy node can run its control tick on this loop instead of an executor timer
(``control_loop:=thread``): then the tick never queues behind executor callbacks, but it must
take the GIL from the executor thread at every wake-up; on the 2-core dev box that hand-off made
it no better than the timer (README, ``benchmarks.node_timing``), so the timer is the node's
default.

:class:`TimingStats` collects what issue #5 asks to print: command period error (median / p99
of |interval - period|), missed periods (intervals > 1.5 periods) and the observation ->
first-action latency.

Threads: :meth:`ControlLoop.start` / :meth:`ControlLoop.stop` from the owner's thread; ``step``
and ``sleep_until`` on the loop thread (named ``motus_control``); :meth:`ControlLoop.run_once`
directly in tests with a fake clock. :class:`TimingStats` is locked (written on the loop
thread, read by the status publisher).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import numpy as np


class TimingStats:
    """Command-stream timing figures over a sliding window.

    Args:
        period_ns: nominal command period (int ns).
        window: number of intervals / latencies kept.
    """

    def __init__(self, period_ns: int, window: int = 3000):
        if period_ns <= 0 or window < 1:
            raise ValueError(f"TimingStats: expected period_ns > 0, window >= 1, got "
                             f"{period_ns}, {window}")  # fmt: skip
        self.period_ns = int(period_ns)
        self._intervals: deque[int] = deque(maxlen=window)
        self._latencies: deque[int] = deque(maxlen=window)
        self._last_ns: int | None = None
        self._lock = threading.Lock()

    def command(self, stamp_ns: int) -> None:
        """Record a command published at ``stamp_ns`` (int ns)."""
        with self._lock:
            if self._last_ns is not None:
                self._intervals.append(int(stamp_ns) - self._last_ns)
            self._last_ns = int(stamp_ns)

    def first_action(self, obs_stamp_ns: int, stamp_ns: int) -> None:
        """Record the first command (at ``stamp_ns``) of a plan computed from ``obs_stamp_ns``."""
        with self._lock:
            self._latencies.append(int(stamp_ns) - int(obs_stamp_ns))

    def restart(self) -> None:
        """Forget the last stamp (after a pause: the gap is not a missed period)."""
        with self._lock:
            self._last_ns = None

    def summary(self) -> dict:
        """JSON-able figures of the window.

        Returns:
            ``period_err_median_ms``, ``period_err_p99_ms``, ``missed_periods``,
            ``intervals``, ``obs_to_action_ms_median`` / ``_p99`` / ``_max`` (ms; None when
            nothing was recorded).
        """
        with self._lock:
            iv = np.asarray(self._intervals, dtype=np.float64)
            lat = np.asarray(self._latencies, dtype=np.float64) / 1e6
        return period_figures(iv, self.period_ns) | {
            "obs_to_action_ms_median": float(np.median(lat)) if lat.size else None,
            "obs_to_action_ms_p99": float(np.percentile(lat, 99)) if lat.size else None,
            "obs_to_action_ms_max": float(lat.max()) if lat.size else None,
        }


def period_figures(intervals_ns: np.ndarray, period_ns: int) -> dict:
    """Period error median / p99 (ms) and missed periods (> 1.5 periods) of command intervals.

    Args:
        intervals_ns: float or int (N,) time between consecutive commands, ns.
        period_ns: nominal period, ns.
    """
    iv = np.asarray(intervals_ns, dtype=np.float64)
    if not iv.size:
        return {"period_err_median_ms": None, "period_err_p99_ms": None, "missed_periods": 0,
                "intervals": 0}  # fmt: skip
    err = np.abs(iv - period_ns) / 1e6
    return {
        "period_err_median_ms": float(np.median(err)),
        "period_err_p99_ms": float(np.percentile(err, 99)),
        "missed_periods": int(np.count_nonzero(iv > 1.5 * period_ns)),
        "intervals": int(iv.size),
    }


class ControlLoop:
    """Calls ``step(now_ns)`` at absolute deadlines on its own thread (see module docstring).

    Args:
        period_ns: tick period, int ns (> 0).
        clock: returns now, int ns (the node clock; sim time under ``use_sim_time``).
        sleep_until: ``sleep_until(deadline_ns)`` blocks until the clock reaches the deadline
            (returns early when :meth:`stop` must be honoured; the loop re-checks the time).
        step: the control tick, called with the clock's time at wake-up.
        name: thread name.
        on_start: called first on the new thread (e.g. to raise its scheduling priority).

    Raises:
        ValueError: ``period_ns`` <= 0.
    """

    def __init__(
        self,
        period_ns: int,
        clock: Callable[[], int],
        sleep_until: Callable[[int], object],
        step: Callable[[int], None],
        name: str = "motus_control",
        on_start: Callable[[], None] | None = None,
    ):
        if period_ns <= 0:
            raise ValueError(f"ControlLoop.period_ns: expected > 0, got {period_ns}")
        self.period_ns = int(period_ns)
        self._clock = clock
        self._sleep_until = sleep_until
        self._step = step
        self._name = name
        self._on_start = on_start
        self._next_ns: int | None = None
        self.ticks = 0
        self.skipped = 0
        """Deadlines skipped because they had passed when a tick ended (a late / long tick)."""
        self.late_ns: deque[int] = deque(maxlen=3000)
        """Wake-up time minus deadline of the recent ticks (int ns, >= 0 unless the clock
        jumped back)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Sleep to the next deadline and tick; False (no tick) when stopping or still early."""
        now = self._clock()
        if self._next_ns is None:
            self._next_ns = now
        if now < self._next_ns:
            self._sleep_until(self._next_ns)
            now = self._clock()
        if self._stop.is_set() or now < self._next_ns:
            return False
        self.late_ns.append(now - self._next_ns)
        self._step(now)
        self.ticks += 1
        self._next_ns += self.period_ns
        now = self._clock()
        if now >= self._next_ns:  # the next deadline already passed: skip it, do not burst
            behind = (now - self._next_ns) // self.period_ns + 1
            self.skipped += int(behind)
            self._next_ns += int(behind) * self.period_ns
        return True

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while not self._stop.is_set():
            self.run_once()

    def start(self) -> None:
        """Start the thread; the first tick is immediate (idempotent while running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._next_ns = None
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Stop the thread; waits up to ``timeout_s`` (a tick in progress completes).

        Returns:
            True when the thread has ended.
        """
        self._stop.set()
        t, self._thread = self._thread, None
        if t is not None and t is not threading.current_thread():
            t.join(timeout_s)
            return not t.is_alive()
        return True

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (``sleep_until`` may return early then)."""
        return self._stop.is_set()
