"""The inference worker: runs the backend on its own thread, never in the control timer.

One iteration (:meth:`InferenceWorker.run_once`): first a backend reset asked for with
:meth:`InferenceWorker.request_reset` (done here, between inferences, so that no caller on the
executor thread ever waits for an inference in flight: issue #14, defect 2); then, if the
scheduler wants a chunk, take the latest observation, compute the committed prefix, run
``backend.infer``, measure the observation-to-chunk latency (stamp of the observation to the
chunk's arrival, on the injected clock; this is what d must cover) and hand the chunk to the
scheduler.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from motus_policy.backends.base import ACTION_MODES, PolicyBackend
from motus_policy.runtime.chunking import ChunkScheduler
from motus_policy.runtime.observation import ObservationUnavailable
from motus_policy.types import ActionChunk, Observation

IDLE_WAIT_S = 0.005
"""How long the thread sleeps when there is nothing to do (woken earlier by :meth:`wake`)."""
ERROR_BACKOFF_S = 0.5
"""Pause after a failed inference before the next attempt."""
MAX_CONSECUTIVE_ERRORS = 3
"""After this many failed inferences in a row the runtime reports a fault and holds."""


@dataclasses.dataclass(frozen=True)
class InferSettings:
    """Per-request inference settings (read from the runtime config at each request)."""

    mode: str
    num_steps: int
    instruction: str


class InferenceWorker:
    """Owns the inference thread.

    Threads: :meth:`start` / :meth:`stop` / :meth:`wake` / :meth:`request_reset` / ``enabled``
    from the node's executor thread, none of which waits for an inference in flight;
    :meth:`run_once` on the worker thread (or directly in tests with a fake clock). The backend
    is only ever called from the worker thread (``load`` excepted: configure, before
    :meth:`start`).

    Args:
        backend: the policy backend.
        scheduler: returns the current scheduler (it is replaced when the strategy changes).
        observe: ``observe(now_ns)`` -> Observation, raising ObservationUnavailable.
        settings: returns the current :class:`InferSettings`.
        clock: returns now, int ns.
        on_chunk: called with each chunk after it was handed to the scheduler.
    """

    def __init__(
        self,
        backend: PolicyBackend,
        scheduler: Callable[[], ChunkScheduler],
        observe: Callable[[int], Observation],
        settings: Callable[[], InferSettings],
        clock: Callable[[], int],
        on_chunk: Callable[[ActionChunk, InferSettings], None] | None = None,
    ):
        self.backend = backend
        self._scheduler = scheduler
        self._observe = observe
        self._settings = settings
        self._clock = clock
        self._on_chunk = on_chunk
        self.enabled = False
        self.infer_ns: deque[int] = deque(maxlen=100)
        self.chunks = 0
        self.errors = 0
        self.consecutive_errors = 0
        self.last_error: str | None = None
        self.last_unavailable: ObservationUnavailable | None = None
        self.last_settings: InferSettings | None = None
        self.prefix_error_max = 0.0
        """Largest |chunk[:d] - prefix| seen: > 0 means the backend does not inpaint the prefix."""
        self.resets = 0
        """Backend resets done (each one asked for by :meth:`request_reset`)."""
        self._reset_pending = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def request_reset(self) -> None:
        """Ask for ``backend.reset()`` before the next inference (returns at once).

        The reset runs on the worker thread at the start of its next iteration; an inference
        already in flight finishes first (its chunk is dropped by the scheduler's reset, which
        the runtime does on activation). A failing reset counts as an inference error.
        """
        self._reset_pending.set()
        self._wake.set()

    def run_once(self) -> str:
        """One iteration; returns "idle", "no_observation", "ok", "skipped" or "error"."""
        if self._reset_pending.is_set():
            self._reset_pending.clear()
            try:
                self.backend.reset()
            except Exception as exc:  # noqa: BLE001 - a failing backend must become a hold
                self.errors += 1
                self.consecutive_errors += 1
                self.last_error = f"backend reset: {type(exc).__name__}: {exc}"
                return "error"
            self.resets += 1
        sched = self._scheduler()
        now = self._clock()
        if not self.enabled or not sched.wants_inference(now):
            return "idle"
        try:
            obs = self._observe(now)
        except ObservationUnavailable as exc:
            self.last_unavailable = exc
            return "no_observation"
        settings = self._settings()
        ticket, prefix = sched.begin_request(obs.stamp_ns)
        t_start = self._clock()
        try:
            chunk = self.backend.infer(
                obs,
                mode=settings.mode,
                num_steps=settings.num_steps,
                action_prefix=prefix,
                instruction=settings.instruction,
            )
        except Exception as exc:  # noqa: BLE001 - any backend failure must become a hold
            sched.cancel_request(ticket)
            self.errors += 1
            self.consecutive_errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return "error"
        t_done = self._clock()
        self.consecutive_errors = 0
        self.infer_ns.append(t_done - t_start)
        chunk = dataclasses.replace(chunk, latency_ns=max(0, t_done - obs.stamp_ns))
        if prefix is not None and len(chunk) >= len(prefix):
            err = np.abs(np.asarray(chunk.actions[: len(prefix)], np.float64) - prefix)
            if np.all(np.isfinite(err)):
                self.prefix_error_max = max(self.prefix_error_max, float(err.max()))
        self.last_settings = settings
        self.chunks += 1
        if settings.mode in ACTION_MODES:
            try:
                sched.add_chunk(chunk, t_done, ticket, start=obs.state)
            except ValueError as exc:  # a malformed chunk (shape, period): a hold, not a crash
                sched.cancel_request(ticket)
                self.errors += 1
                self.consecutive_errors += 1
                self.last_error = f"rejected chunk: {exc}"
                return "error"
            result = "ok"
        else:  # video-only modes: nothing to execute; ask again after n_execute periods
            sched.cancel_request(ticket)
            result = "skipped"
        if self._on_chunk is not None:
            self._on_chunk(chunk, settings)
        return result

    def infer_ms(self) -> dict:
        """Backend inference time (ms): last / median / max over the last 100 calls."""
        a = np.asarray(self.infer_ns, dtype=np.float64) / 1e6
        if not a.size:
            return {"last": None, "median": None, "max": None}
        return {"last": float(a[-1]), "median": float(np.median(a)), "max": float(a.max())}

    # -- thread --------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            result = self.run_once()
            if result == "ok":
                continue
            wait = ERROR_BACKOFF_S if result in ("error", "skipped") else IDLE_WAIT_S
            self._wake.wait(wait)
            self._wake.clear()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="motus_inference", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Let the thread check for work now instead of after its idle wait."""
        self._wake.set()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread; waits up to ``timeout_s`` for a running inference to finish.

        ``timeout_s`` 0 does not wait (the daemon thread ends after its inference; cleanup
        then closes the backend under it, which fails that inference).
        """
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
