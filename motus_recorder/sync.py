"""Sample every camera and joint stream on one clock at the record rate (ROS-free).

Each stream (camera, arm state, optional command) pushes ``(stamp_ns, value)`` as messages
arrive. Frames are taken on a fixed time grid ``origin + k * period`` (origin = the clock at
:meth:`SyncCore.reset`, i.e. the episode start): on every record tick the caller takes each grid
target that is due (:meth:`SyncCore.due`: ``target <= now - lag``) with :meth:`SyncCore.sample`,
so a late timer never makes frames irregular. The core picks, per stream, the buffered message
whose stamp is nearest to the target and accepts it when ``|dt| <= tolerance``. A grid target
where any stream has no such message is a *drop* (counted per stream, the frame is not
recorded). Statistics per stream: drops, median / max ``|dt|`` (skew),
duplicates (the same message reused by two consecutive recorded frames, i.e. the stream is slower
than the record rate) and repeated stamps (two messages with one stamp; the second is ignored).

Faults mark the episode for discard with a reason (:attr:`SyncCore.fault`):
  * a stamp going backwards on a stream, or the sampling clock going backwards (clock jump);
  * the sampling clock jumping forward by more than ``max_jump_periods`` periods, or a message
    stamped more than ``max_jump_periods`` periods ahead of the clock;
  * too many drops: more than ``max_consecutive_drops`` in a row (a camera stopped) or a drop
    fraction above ``max_drop_fraction`` once ``min_ticks_for_fraction`` ticks were seen.

Threads: :meth:`push` may be called from subscription callbacks and :meth:`sample` from a timer;
every public method takes one internal lock, so any threads may call them.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from motus_recorder.schema import NS_PER_S


@dataclass(frozen=True)
class SyncConfig:
    """Sampling and fault thresholds of :class:`SyncCore`.

    ``tolerance_s`` defaults (when 0) to half a record period; ``lag_s`` (when negative) to one
    record period, so that on a regular stream a message exists on both sides of the target time.
    """

    record_rate_hz: float
    tolerance_s: float = 0.0
    lag_s: float = -1.0
    max_jump_periods: float = 10.0
    max_consecutive_drops: int = 15
    max_drop_fraction: float = 0.2
    min_ticks_for_fraction: int = 30
    buffer_len: int = 256
    """Hard cap of buffered messages per stream; older than lag + tolerance + max_jump_periods
    periods are dropped anyway (bounds the memory held by raw images)."""

    def __post_init__(self) -> None:
        checks = {
            "record_rate_hz": self.record_rate_hz > 0,
            "tolerance_s": self.tolerance_s >= 0,
            "max_jump_periods": self.max_jump_periods >= 1,
            "max_consecutive_drops": self.max_consecutive_drops >= 1,
            "max_drop_fraction": 0 <= self.max_drop_fraction <= 1,
            "min_ticks_for_fraction": self.min_ticks_for_fraction >= 1,
            "buffer_len": self.buffer_len >= 2,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"SyncConfig.{name}: invalid value {getattr(self, name)!r}")

    @property
    def period_ns(self) -> int:
        """Record period in ns."""
        return round(NS_PER_S / self.record_rate_hz)

    @property
    def tolerance_ns(self) -> int:
        """Largest accepted ``|stamp - target|`` in ns (half a period unless configured)."""
        return round(self.tolerance_s * NS_PER_S) if self.tolerance_s > 0 else self.period_ns // 2

    @property
    def lag_ns(self) -> int:
        """Target time = tick time - lag (one period unless configured)."""
        return self.period_ns if self.lag_s < 0 else round(self.lag_s * NS_PER_S)


@dataclass(frozen=True)
class SyncedSample:
    """One recorded time step: the target time, each stream's value and its message stamp."""

    t_ns: int
    values: dict[str, Any]
    stamps_ns: dict[str, int]


class _Stream:
    def __init__(self, maxlen: int):
        self.stamps: deque[int] = deque(maxlen=maxlen)
        self.values: deque[Any] = deque(maxlen=maxlen)
        self.drops = 0
        self.duplicates = 0
        self.repeated_stamps = 0
        self.abs_dt_ns: list[int] = []
        self.last_used_stamp: int | None = None
        self.received = 0  # messages pushed since the last reset

    def nearest(self, t_ns: int) -> tuple[int, Any] | None:
        if not self.stamps:
            return None
        stamps = list(self.stamps)
        i = bisect.bisect_left(stamps, t_ns)
        best = min(
            (j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(stamps[j] - t_ns)
        )
        return stamps[best], self.values[best]


class SyncCore:
    """Nearest-stamp alignment of named streams on one clock (see module docstring).

    Args:
        config: thresholds.
        streams: stream names, e.g. the three camera names plus ``left``/``right`` arm states.
        clock: callable returning the current time in int ns (the recording clock; sim time or
            wall time, the same clock the message stamps use).
    """

    def __init__(self, config: SyncConfig, streams: Sequence[str], clock: Callable[[], int]):
        if not streams or len(set(streams)) != len(streams):
            raise ValueError(f"streams: expected unique names, got {list(streams)}")
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._names = tuple(streams)
        self._streams = {n: _Stream(config.buffer_len) for n in streams}
        self._ticks = 0
        self._recorded = 0
        self._consecutive_drops = 0
        self._last_tick_ns: int | None = None
        self._grid_ns: int | None = None
        # Keep what a late tick may still need: the clock may advance up to max_jump_periods
        # between ticks before that is a fault (grid frames are then taken in a burst).
        keep_periods = max(2.0, config.max_jump_periods)
        self._keep_ns = (
            config.lag_ns + config.tolerance_ns + round(keep_periods * config.period_ns)
        )
        self.fault: str | None = None
        """First fault seen since :meth:`reset`, or None: the episode must be discarded."""

    def reset(self) -> None:
        """Clear counters and the fault (keeps buffered messages): call at episode start.

        The sampling grid restarts at the current clock: the episode's first frame is the state
        at the moment of the call, never an older one.
        """
        with self._lock:
            self._grid_ns = int(self.clock())
            for s in self._streams.values():
                s.drops = s.duplicates = s.repeated_stamps = 0
                s.abs_dt_ns = []
                s.last_used_stamp = None
                s.received = 0
            self._ticks = self._recorded = self._consecutive_drops = 0
            self._last_tick_ns = None
            self.fault = None

    def push(self, stream: str, stamp_ns: int, value: Any) -> None:
        """Buffer one message of ``stream``. Raises KeyError for an unknown stream name."""
        stamp_ns = int(stamp_ns)
        with self._lock:
            s = self._streams[stream]
            s.received += 1
            if s.stamps and stamp_ns == s.stamps[-1]:
                s.repeated_stamps += 1
                return
            if s.stamps and stamp_ns < s.stamps[-1]:
                dt = (s.stamps[-1] - stamp_ns) / 1e6
                self._set_fault(f"clock jump: {stream} stamp went backwards by {dt:.1f} ms")
                s.stamps.clear()
                s.values.clear()
            now = self.clock()
            ahead = stamp_ns - now
            if ahead > self.config.max_jump_periods * self.config.period_ns:
                self._set_fault(
                    f"clock jump: {stream} stamp is {ahead / 1e6:.1f} ms ahead of the clock"
                )
            s.stamps.append(stamp_ns)
            s.values.append(value)
            horizon = stamp_ns - self._keep_ns  # older messages can never be picked again
            while len(s.stamps) > 1 and s.stamps[0] < horizon:
                s.stamps.popleft()
                s.values.popleft()

    def due(self) -> bool:
        """True when the next grid target is at least ``lag`` old (a frame can be taken).

        Also checks the clock: one that went backwards since the last tick sets :attr:`fault`.
        """
        with self._lock:
            now = int(self.clock())
            if self._last_tick_ns is not None and now < self._last_tick_ns:
                back = (self._last_tick_ns - now) / 1e6
                self._set_fault(f"clock jump: clock went backwards by {back:.1f} ms")
            if self._grid_ns is None:
                return True
            return self._grid_ns <= now - self.config.lag_ns

    def sample(self) -> SyncedSample | None:
        """Align all streams at the next grid target and advance the grid by one period.

        Returns None (and counts a drop) if any stream has no message within the tolerance.
        Without :meth:`reset` the grid starts at ``now - lag`` on the first call.
        """
        with self._lock:
            cfg = self.config
            now = int(self.clock())
            if self._last_tick_ns is not None:
                step = now - self._last_tick_ns
                if step < 0:
                    self._set_fault(f"clock jump: clock went backwards by {-step / 1e6:.1f} ms")
                elif step > cfg.max_jump_periods * cfg.period_ns:
                    self._set_fault(f"clock jump: clock advanced {step / 1e6:.1f} ms in one tick")
            self._last_tick_ns = now
            self._ticks += 1
            if self._grid_ns is None:
                self._grid_ns = now - cfg.lag_ns
            target = self._grid_ns
            self._grid_ns += cfg.period_ns
            picked: dict[str, tuple[int, Any]] = {}
            missing = []
            for name, s in self._streams.items():
                hit = s.nearest(target)
                if hit is None or abs(hit[0] - target) > cfg.tolerance_ns:
                    missing.append(name)
                else:
                    picked[name] = hit
            if missing:
                for name in missing:
                    self._streams[name].drops += 1
                self._consecutive_drops += 1
                self._check_drops(missing)
                return None
            self._consecutive_drops = 0
            self._recorded += 1
            for name, (stamp, _) in picked.items():
                s = self._streams[name]
                s.abs_dt_ns.append(abs(stamp - target))
                if s.last_used_stamp == stamp:
                    s.duplicates += 1
                s.last_used_stamp = stamp
            return SyncedSample(
                t_ns=target,
                values={n: v for n, (_, v) in picked.items()},
                stamps_ns={n: st for n, (st, _) in picked.items()},
            )

    def _check_drops(self, missing: list[str]) -> None:
        cfg = self.config
        if self._consecutive_drops > cfg.max_consecutive_drops:
            silent = [n for n in missing if self._streams[n].received == 0]
            stopped = [n for n in missing if n not in silent]
            why = []
            if silent:
                why.append(f"no message at all since the episode started on {silent}")
            if stopped:
                why.append(f"{stopped} stopped or late")
            self._set_fault(
                f"too many drops: {self._consecutive_drops} consecutive ticks without "
                f"{missing} within {cfg.tolerance_ns / 1e6:.1f} ms ({'; '.join(why)})"
            )
        dropped = self._ticks - self._recorded
        if self._ticks >= cfg.min_ticks_for_fraction and dropped / self._ticks > (
            cfg.max_drop_fraction
        ):
            self._set_fault(
                f"too many drops: {dropped} of {self._ticks} ticks "
                f"(> {cfg.max_drop_fraction:.0%}); last missing {missing}"
            )

    def _set_fault(self, reason: str) -> None:
        if self.fault is None:
            self.fault = reason

    def stats(self) -> dict[str, Any]:
        """JSON-ready counters: ticks, recorded frames, drops, and per-stream skew statistics."""
        with self._lock:
            per = {}
            for name, s in self._streams.items():
                dts = np.asarray(s.abs_dt_ns, dtype=np.float64) / 1e6
                per[name] = {
                    "drops": s.drops,
                    "duplicates": s.duplicates,
                    "repeated_stamps": s.repeated_stamps,
                    "skew_median_ms": float(np.median(dts)) if dts.size else None,
                    "skew_max_ms": float(dts.max()) if dts.size else None,
                }
            return {
                "ticks": self._ticks,
                "recorded": self._recorded,
                "dropped": self._ticks - self._recorded,
                "tolerance_ms": self.config.tolerance_ns / 1e6,
                "lag_ms": self.config.lag_ns / 1e6,
                "fault": self.fault,
                "streams": per,
            }
