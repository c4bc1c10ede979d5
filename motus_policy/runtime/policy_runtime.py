"""The ROS-free policy runtime: observation assembly + inference worker + scheduler + safety gate.

The policy node converts messages and calls this object; the runtime benchmark drives the very
same object with the real clock. Per control tick (:meth:`PolicyRuntime.tick`):

1. input watchdog: every camera and arm stream must be usable
(:mod:`motus_policy.runtime.observation`);
   otherwise hold, name the stream, and drop the plan (control resumes only with a chunk computed
   from fresh data);
2. inference watchdog: the next chunk may be at most ``watchdog_inference_s`` later than it is
   due (when the current chunk's executed actions run out,
   :meth:`~motus_policy.runtime.chunking.ChunkScheduler.next_chunk_due_ns`); without a chunk,
   the first one must come within ``first_chunk_timeout_s`` of the activation, the last stream
   fault, the e-stop reset or the config change that dropped the plan, whichever is latest; and
   the backend must not be failing;
3. target from the scheduler, interpolated to the control rate;
4. the safety gate (limits, NaN, velocity clamp, ramp-in, e-stop) decides what is published.

Threads: ``tick`` / ``activate`` / ``deactivate`` / ``update_config`` / e-stop calls on the
control (executor) thread; ``update_*`` inputs go straight to the assembler (executor thread);
inference on the worker thread (:mod:`motus_policy.runtime.worker`).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from motus_policy.backends.base import ACTION_MODES, FRAME_MODES, PolicyBackend
from motus_policy.runtime.chunking import ChunkScheduler
from motus_policy.runtime.config import QPOS_TO_STATE_SOURCE, PolicyRuntimeConfig
from motus_policy.runtime.observation import ObservationAssembler, ObservationConfig
from motus_policy.runtime.safety import SafetyConfig, SafetyGate
from motus_policy.runtime.worker import MAX_CONSECUTIVE_ERRORS, InferenceWorker, InferSettings
from motus_policy.types import ActionChunk, Observation
from motus_recorder.profile import RobotProfile

log = logging.getLogger(__name__)

RUNTIME_SETTABLE = (
    "strategy",
    "n_action_steps",
    "ensemble_coeff",
    "mode",
    "num_steps",
    "instruction",
    "publish_imagined_frames",
    "latency_window",
    "prefix_margin_steps",
)
"""Config fields that may change while running; the others need a re-configure."""

GIL_SWITCH_INTERVAL_S = 0.0005
"""``sys.setswitchinterval`` the policy node and the benchmark use (CPython default 5 ms): with
an inference thread holding the GIL in Python code, the control thread otherwise waits up to
5 ms per tick. Measured with ``python -m benchmarks.runtime --gil-busy`` on the 2-core dev box:
command period error median 2.3 -> 0.56 ms, tick cost p99 7.5 -> 0.25 ms."""


@dataclasses.dataclass(frozen=True)
class TickResult:
    """One control step: ``command`` float64 (14,) to publish (None: nothing safe yet).

    ``plan_obs_stamp_ns``: with ``new_plan``, the stamp (int ns) of the observation the new
    chunk was computed from (for the observation -> first-action latency); else None.
    """

    command: np.ndarray | None
    held: bool
    reason: str | None
    new_plan: bool = False
    clamped: tuple[str, ...] = ()
    plan_obs_stamp_ns: int | None = None


class PolicyRuntime:
    """See the module docstring.

    Args:
        profile: the robot profile (streams, limits, rates).
        config: runtime settings.
        backend: a loaded-or-not :class:`PolicyBackend`.
        clock: returns now, int ns (ROS time in the node; sim time under ``use_sim_time``).
        image_hw: override of every camera's expected (H, W) (small test images).
    """

    def __init__(
        self,
        profile: RobotProfile,
        config: PolicyRuntimeConfig,
        backend: PolicyBackend,
        clock: Callable[[], int],
        image_hw: tuple[int, int] | None = None,
    ):
        self.profile = profile
        self.backend = backend
        self.clock = clock
        self.control_rate_hz = config.control_rate_hz or profile.control_rate_hz
        self.period_ns = int(round(1e9 / backend.action_rate_hz))
        self.assembler = ObservationAssembler(
            ObservationConfig.from_profile(
                profile, image_hw, config.limit_tolerance, config.gripper_limit_tolerance
            )
        )
        self.gate = SafetyGate(
            SafetyConfig.from_profile(
                profile,
                self.control_rate_hz,
                config.ramp_in_s,
                config.velocity_scale,
                config.limit_tolerance,
                config.gripper_limit_tolerance,
            )
        )
        self.config = config
        self.scheduler = self._make_scheduler(config)
        self.worker = InferenceWorker(
            backend,
            lambda: self.scheduler,
            self._observe,
            self._settings,
            clock,
            on_chunk=self._on_chunk,
        )
        self._lock = threading.Lock()
        self._frames: deque[tuple[int, np.ndarray]] = deque(maxlen=64)
        self._new_plan = False
        self._plan_obs_ns: int | None = None
        self._active_since_ns: int | None = None
        self._fault_source: str | None = None
        self._gate_pending = False
        # the first-chunk clock: (since ns, after what, scheduler it was started for)
        self._wait: tuple[int | None, str, tuple[int, int] | None] = (None, "", None)
        oc = self.assembler.config
        self._streams = {c.name for c in oc.cameras} | {a for a, _ in oc.arm_joint_names}
        self.last_reason: str | None = None
        self.holds = 0
        self.clamped_steps = 0
        self.last_tick: TickResult | None = None

    def resolve_n_action_steps(self, config: PolicyRuntimeConfig | None = None) -> int:
        """Actions executed per chunk for ``config`` (default: the current one), 0 resolved.

        ``n_action_steps`` 0 means the backend's ``recommended_n_action_steps`` (what the
        checkpoint recommends; the embedded one: 16, its whole chunk), or the whole chunk A when
        the backend does not recommend one (official checkpoints, ``tiny-random``, fakes
        without a value).

        Raises:
            ValueError: the value (given or recommended) exceeds the backend's chunk size.
        """
        c = config or self.config
        a = self.backend.chunk_size
        n = c.n_action_steps
        if n == 0:
            n = getattr(self.backend, "recommended_n_action_steps", None) or a
            if n > a:
                raise ValueError(
                    f"n_action_steps: the checkpoint recommends {n}, more than its chunk size {a}"
                )
        elif n > a:
            raise ValueError(f"n_action_steps: expected <= chunk size {a}, got {n}")
        return int(n)

    def _make_scheduler(self, c: PolicyRuntimeConfig) -> ChunkScheduler:
        return ChunkScheduler(
            c.strategy,
            self.period_ns,
            self.backend.chunk_size,
            self.resolve_n_action_steps(c),
            c.ensemble_coeff,
            c.latency_window,
            c.prefix_margin_steps,
        )

    # -- worker callbacks (worker thread) ------------------------------------------------------
    def _observe(self, now_ns: int) -> Observation:
        obs = self.assembler.assemble(now_ns, self.config.instruction)
        if self.state_source == "command":
            last = self.gate.last_command  # replaced, never mutated, by the control thread
            if last is not None:
                obs = dataclasses.replace(obs, state=np.asarray(last, dtype=np.float32).copy())
        return obs

    def _settings(self) -> InferSettings:
        c = self.config
        return InferSettings(c.mode, c.num_steps, c.instruction)

    def _on_chunk(self, chunk: ActionChunk, settings: InferSettings) -> None:
        with self._lock:
            self._new_plan = settings.mode in ACTION_MODES
            self._plan_obs_ns = int(chunk.t0_ns)
            if (
                self.config.publish_imagined_frames
                and settings.mode in FRAME_MODES
                and chunk.frames is not None
                and chunk.frame_stamps_ns is not None
            ):
                for frame, stamp in zip(chunk.frames, chunk.frame_stamps_ns, strict=True):
                    self._frames.append((int(stamp), frame))

    # -- lifecycle (control thread) ------------------------------------------------------------
    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Load the backend (blocking; called from configure).

        Warns when an explicit ``state_source`` contradicts the checkpoint's training qpos: the
        model then sees states unlike its training ones (a closed gripper reads about 0.6 of
        its range apart on the simulated cube).
        """
        self.backend.load(progress)
        trained = self.backend.qpos_source
        wanted = QPOS_TO_STATE_SOURCE.get(trained) if trained else None
        if self.config.state_source != "auto" and wanted and wanted != self.config.state_source:
            log.warning(
                "state_source=%r, but the checkpoint was trained on qpos = %s (state_source=%r "
                "or 'auto' matches it)",
                self.config.state_source, trained, wanted,
            )  # fmt: skip
        log.info(
            "model state: %s (state_source=%s, checkpoint qpos_source=%s)",
            self.state_source, self.config.state_source, trained,
        )  # fmt: skip
        log.info(
            "actions per chunk: %d (n_action_steps=%d, checkpoint recommends %s, chunk size %d)",
            self.resolve_n_action_steps(), self.config.n_action_steps,
            getattr(self.backend, "recommended_n_action_steps", None), self.backend.chunk_size,
        )  # fmt: skip

    @property
    def state_source(self) -> str:
        """The state given to the model: "command" or "measured".

        ``config.state_source``, or for "auto" the one that matches the backend's
        ``qpos_source`` ("command" when it is unknown).
        """
        if self.config.state_source != "auto":
            return self.config.state_source
        return QPOS_TO_STATE_SOURCE.get(self.backend.qpos_source or "command", "command")

    def activate(self, now_ns: int, start_worker: bool = True) -> None:
        """Start control, ramping in from the current joint state; never waits for inference.

        The backend reset is left to the worker thread (:meth:`InferenceWorker.request_reset`),
        before its next inference.

        Without a valid joint state yet, the gate arms at the first tick that has one (until
        then every tick holds, publishing nothing, and names the missing stream).
        ``start_worker=False`` leaves the thread off (tests call ``worker.run_once`` themselves).
        ``n_action_steps`` 0 is resolved here again (:meth:`resolve_n_action_steps`): a backend
        may learn its checkpoint's recommendation only when it loads.

        Raises:
            ValueError: the checkpoint recommends more actions than its chunk holds.
        """
        if self.resolve_n_action_steps() != self.scheduler.n_action_steps:
            self.scheduler = self._make_scheduler(self.config)
        self.scheduler.reset()  # a chunk still in flight from before is dropped on arrival
        # on the worker thread, between inferences: this thread never waits for an inference
        # in flight (a RemoteBackend serialises its calls; issue #14, defect 2)
        self.worker.request_reset()
        self._active_since_ns = now_ns
        self._fault_source = None
        self._gate_pending = True
        self._arm_gate(now_ns)
        self.worker.enabled = True
        if start_worker:
            self.worker.start()
            self.worker.wake()

    def _arm_gate(self, now_ns: int) -> None:
        """Arm the gate at the measured pose once a valid one is there (after :meth:`activate`).

        Until then the gate stays disarmed: ticks hold and publish nothing, neither a command
        from an earlier activation nor one seeded from a pose outside the limits (the
        assembler marks such a pose invalid and names the joint; issue #14, defect 1).
        """
        if not self._gate_pending:
            return
        pose = self.assembler.latest_state()
        if pose is None or self.gate.pose_violation(pose) is not None:
            self.gate.disarm()
            return
        self.gate.activate(pose, now_ns)
        self._gate_pending = False

    def deactivate(self) -> None:
        """Stop inference and commanding; the arm holds its last command."""
        self.worker.enabled = False
        self.gate.deactivate()
        self.scheduler.reset()
        self._active_since_ns = None

    def close(self, wait_s: float = 5.0) -> None:
        """Stop the worker thread (cleanup / shutdown), waiting up to ``wait_s`` for it.

        The policy node passes 0: a lifecycle transition never waits for an inference in flight
        (closing a RemoteBackend then ends that inference).
        """
        self.deactivate()
        self.worker.stop(wait_s)

    def update_config(self, config: PolicyRuntimeConfig) -> None:
        """Apply a new config; only :data:`RUNTIME_SETTABLE` fields may differ.

        Raises:
            ValueError: a non-settable field changed, or n_action_steps exceeds the chunk size.
        """
        fixed = [
            f
            for f in PolicyRuntimeConfig.field_names()
            if f not in RUNTIME_SETTABLE and getattr(config, f) != getattr(self.config, f)
        ]
        if fixed:
            raise ValueError(f"{fixed} cannot change while configured; re-configure the node")
        old = self.config
        sched_fields = ("strategy", "n_action_steps", "ensemble_coeff", "latency_window")
        new_sched = any(getattr(old, f) != getattr(config, f) for f in sched_fields)
        scheduler = self._make_scheduler(config) if new_sched else None
        self.config = config
        if scheduler is not None:
            self.scheduler = scheduler  # in-flight chunks go to the old one and are dropped
            self._plan_dropped(self.clock(), "the config change")
        elif config.mode != old.mode:
            self.scheduler.reset()
            self._plan_dropped(self.clock(), "the config change")
        self.scheduler.prefix_margin_steps = config.prefix_margin_steps

    def estop(self, reason: str = "e-stop requested") -> None:
        """Latch the e-stop (holds from the next tick until :meth:`reset_estop`)."""
        self.gate.estop(reason)

    def reset_estop(self, now_ns: int) -> None:
        """Clear the e-stop; resume with a fresh chunk, ramping in from the last published command.

        Not from the measured pose: an arm moved during the e-stop would make the command jump
        (issue #14, defect 3); every step stays within the per-tick velocity limit.
        """
        self.scheduler.reset()
        self._plan_dropped(now_ns, "the e-stop reset")
        self.gate.reset_estop()

    # -- control step --------------------------------------------------------------------------
    def _check_fault(self, now_ns: int) -> tuple[str, str] | None:
        """(source, reason) of the first fault: a stream name, "inference", "mode", "watchdog"."""
        c = self.config
        problem = self.assembler.check(now_ns)
        if problem is not None:
            return problem.stream, f"{problem.stream}: {problem.reason}"
        if self.worker.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
            n, err = self.worker.consecutive_errors, self.worker.last_error
            return "inference", f"inference failing ({n}x): {err}"
        if c.mode not in ACTION_MODES:
            return "mode", f"mode {c.mode!r} predicts video only: holding"
        last = self.scheduler.last_chunk_ns()
        due = self.scheduler.next_chunk_due_ns()
        if last is None or due is None:
            waited_s, after = self._first_chunk_wait(now_ns)
            if waited_s > c.first_chunk_timeout_s:
                return "watchdog", (
                    f"watchdog: no chunk {waited_s:.2f} s after {after} "
                    f"(first_chunk_timeout_s {c.first_chunk_timeout_s:.2f} s)"
                )
        elif (now_ns - due) / 1e9 > c.watchdog_inference_s:
            return "watchdog", (
                f"watchdog: next chunk {(now_ns - due) / 1e9:.2f} s overdue "
                f"(watchdog_inference_s {c.watchdog_inference_s:.2f} s); it was due when the "
                f"last chunk's executed actions ran out, {(due - last) / 1e9:.2f} s after "
                "that chunk arrived"
            )
        return None

    def _plan_dropped(self, now_ns: int, after: str) -> None:
        """Restart the first-chunk clock at ``now_ns``: the plan was dropped by ``after``."""
        self._wait = (now_ns, after, (id(self.scheduler), self.scheduler.generation))

    def _first_chunk_wait(self, now_ns: int) -> tuple[float, str]:
        """Seconds waited for a first chunk, and since what (activation or a plan drop).

        A scheduler reset this runtime did not announce with :meth:`_plan_dropped` (the one in
        :meth:`activate`) counts from the activation.
        """
        since, after, seen = self._wait
        key = (id(self.scheduler), self.scheduler.generation)
        if seen != key:
            active = self._active_since_ns if self._active_since_ns is not None else now_ns
            since, after = (
                (active, "activation")
                if since is None or since < active
                else (now_ns, "a plan reset")
            )
            self._wait = (since, after, key)
        return (now_ns - since) / 1e9, after

    def tick(self, now_ns: int) -> TickResult:
        """One control step at ``now_ns``: what to publish, and whether (and why) it is a hold."""
        with self._lock:
            new_plan, self._new_plan = self._new_plan, False
            plan_obs_ns = self._plan_obs_ns if new_plan else None
        found = None if self._active_since_ns is None else self._check_fault(now_ns)
        source, fault = found if found is not None else (None, None)
        if source in self._streams and source != self._fault_source:
            self.scheduler.reset()  # resume only with a chunk computed from fresh data
        if source in self._streams:  # the first-chunk clock runs from the fault's last tick
            self._plan_dropped(now_ns, f"the last {source} stream fault")
        self._fault_source = source
        if source is None and self._active_since_ns is not None:
            self._arm_gate(now_ns)
        if fault is not None and self.gate.estop_reason is None:
            res = self.gate.hold(fault)
        else:
            target = self.scheduler.target(now_ns) if self._active_since_ns is not None else None
            res = self.gate.filter(target, now_ns)
        if res.held:
            self.holds += 1
            self.last_reason = res.reason
        if res.clamped:
            self.clamped_steps += 1
        self.worker.wake()
        self.last_tick = TickResult(
            res.command, res.held, res.reason, new_plan, res.clamped, plan_obs_ns
        )
        return self.last_tick

    def trajectory(self, now_ns: int) -> tuple[np.ndarray, np.ndarray] | tuple[None, str]:
        """The plan from ``now_ns`` to its end at the action period, gated as a whole.

        Returns:
            ``(stamps_ns (K,), points (K, 14))`` for a JointTrajectory, or ``(None, reason)``.
        """
        end = self.scheduler.plan_end_ns()
        if end is None or end <= now_ns:
            return None, "no plan"
        k = max(1, (end - now_ns) // self.period_ns)
        stamps = now_ns + np.arange(1, k + 1, dtype=np.int64) * self.period_ns
        points = self.scheduler.preview(stamps)
        if points is None:
            return None, "no plan"
        gated, reason = self.gate.check_path(points, self.period_ns / 1e9)
        if gated is None:
            return None, reason
        return stamps, gated

    def pop_frames(self) -> list[tuple[int, np.ndarray]]:
        """Imagined frames received since the last call: (expected stamp ns, uint8 (H, W, 3))."""
        with self._lock:
            out = list(self._frames)
            self._frames.clear()
        return out

    def status(self, now_ns: int) -> dict:
        """JSON-able state: lifecycle state, hold reason, latencies, d, chunk age, counters."""
        t = self.last_tick
        if self.gate.estop_reason is not None:
            state = "estop"
        elif self._active_since_ns is None:
            state = "inactive"
        else:
            state = "holding" if (t is None or t.held) else "running"
        s = self.worker.last_settings
        return {
            "state": state,
            "reason": t.reason if t is not None and t.held else None,
            "last_reason": self.last_reason,
            "mode": self.config.mode,
            "instruction": self.config.instruction,
            "last_inference": None if s is None else dataclasses.asdict(s),
            "ramping": self.gate.ramping,
            "scheduler": self.scheduler.stats(now_ns),
            "infer_ms": self.worker.infer_ms(),
            "chunks": self.worker.chunks,
            "inference_errors": self.worker.errors,
            "prefix_error_max": self.worker.prefix_error_max,
            "last_error": self.worker.last_error,
            "holds": self.holds,
            "clamped_steps": self.clamped_steps,
        }
