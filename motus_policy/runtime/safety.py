"""Safety gate: the last check before every command is published.

Policy (clamp vs reject):

* a non-finite target (NaN/Inf) is **rejected**: hold, reason names the joint;
* a target outside the profile's position limits by more than ``limit_tolerance`` x the joint's
  range is **rejected**: hold, reason names the joint, value and limit (clamping it would execute
  a command the model did not mean); a target within that tolerance of a limit is **clamped** to
  the limit and reported (learned policies overshoot the edges of their training range by a
  hair, e.g. a gripper commanded 1.003 when fully open is 1.0; default 2 % of the range). Grippers
  get a wider band, ``gripper_limit_tolerance`` (default 25 % of the range): a gripper is driven
  against its own end stops by design, and the tiny sim policy's open-gripper targets of 1.04-1.1
  otherwise froze the whole robot in 16-63 % of the control ticks (benchmarks.closed_loop, prefix);
* a step larger than ``velocity_max * velocity_scale * dt`` is **clamped** per joint (the
  command moves toward the target at the limit speed; the clamped joints are reported);
* on activation, after any hold and after an e-stop reset the command is **ramped in**: blended
  from the pose at that moment to the target over ``ramp_in_s``;
* an e-stop **latches**: hold until :meth:`SafetyGate.reset_estop`; the reset resumes from the
  last *published* command (ramped in and velocity-clamped like any other resume), never from the
  measured pose, so an arm moved during the e-stop does not make the command jump (issue #14,
  defect 3).

The gate is armed only from a measured pose within the same bands (:meth:`SafetyGate.activate`):
a pose further out is a fault (sensor, calibration or a wrong profile), and an unarmed gate
publishes nothing (issue #14, defect 1); a pose within the band is clamped into the limits.

Guarantees of every command the gate returns (:meth:`SafetyGate.filter`, :meth:`SafetyGate.hold`):
finite, inside ``[position_min, position_max]`` (exactly, not within a tolerance), and, from one
step to the next within one activation, no joint moves more than ``velocity_max * velocity_scale
* control_period_s``; when that cannot be shown the result is a hold, and a hold republishes the
last safe command (or nothing if none was sent since activation): the offending command is never
published. Not guaranteed: the step between the last command before a deactivation and the first
one after the next activation (that one is the measured pose), the timing of the commands (the
caller's clock), and anything about the motion between commands. Watchdogs on the input streams
and on inference live in the runtime, which calls :meth:`SafetyGate.hold` with their reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motus_recorder import schema
from motus_recorder.profile import RobotProfile


@dataclass(frozen=True)
class SafetyConfig:
    """Limits and timing of the gate; arrays are float64 (14,) in the 14-D layout.

    Attributes:
        joint_names: the 14 names, used in reasons.
        position_min / position_max: limits (rad / gripper unit), from the profile.
        velocity_max: speed limits (rad/s / unit per s), from the profile.
        control_period_s: dt of one command step.
        ramp_in_s: ramp duration (0 disables the ramp).
        velocity_scale: fraction (0, 1] of ``velocity_max`` allowed.
    """

    joint_names: tuple[str, ...]
    position_min: np.ndarray
    position_max: np.ndarray
    velocity_max: np.ndarray
    control_period_s: float
    ramp_in_s: float = 1.0
    velocity_scale: float = 1.0
    limit_tolerance: float = 0.02
    """Fraction of each joint's range past a limit that is clamped rather than rejected."""
    gripper_limit_tolerance: float = 0.25
    """The same for the grippers (indices 6 and 13 of the 14-D layout), in [0, 1]."""

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        for name in ("position_min", "position_max", "velocity_max"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(
                    f"{name}: expected shape ({n},), got {np.shape(getattr(self, name))}"
                )
        if np.any(np.asarray(self.position_min) >= np.asarray(self.position_max)):
            raise ValueError("position_min must be < position_max for every joint")
        if self.control_period_s <= 0:
            raise ValueError(f"control_period_s: expected > 0, got {self.control_period_s}")
        if self.ramp_in_s < 0:
            raise ValueError(f"ramp_in_s: expected >= 0, got {self.ramp_in_s}")
        if not 0 < self.velocity_scale <= 1:
            raise ValueError(f"velocity_scale: expected (0, 1], got {self.velocity_scale}")
        if not 0 <= self.limit_tolerance <= 0.1:
            raise ValueError(f"limit_tolerance: expected [0, 0.1], got {self.limit_tolerance}")
        if not 0 <= self.gripper_limit_tolerance <= 1:
            raise ValueError(
                f"gripper_limit_tolerance: expected [0, 1], got {self.gripper_limit_tolerance}"
            )

    @classmethod
    def from_profile(
        cls,
        profile: RobotProfile,
        control_rate_hz: float,
        ramp_in_s: float = 1.0,
        velocity_scale: float = 1.0,
        limit_tolerance: float = 0.02,
        gripper_limit_tolerance: float = 0.25,
    ) -> SafetyConfig:
        """Limits from ``profile``; dt = 1 / ``control_rate_hz``."""
        return cls(
            profile.joint_names,
            profile.position_min,
            profile.position_max,
            profile.velocity_max,
            1.0 / control_rate_hz,
            ramp_in_s,
            velocity_scale,
            limit_tolerance,
            gripper_limit_tolerance,
        )


@dataclass(frozen=True)
class GateResult:
    """What to publish: ``command`` float64 (14,) or None (nothing safe to send yet).

    ``held`` is True when ``command`` is a hold, with ``reason`` saying why; ``clamped`` names
    joints whose step was velocity-clamped.
    """

    command: np.ndarray | None
    held: bool
    reason: str | None = None
    clamped: tuple[str, ...] = ()


def limit_bands(
    position_min: np.ndarray,
    position_max: np.ndarray,
    limit_tolerance: float,
    gripper_limit_tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The accepted band around the position limits, float64 (n,) each: ``(lower, upper)``.

    A value is accepted in ``[min - tol * range, max + tol * range]`` with ``range = max - min``
    and ``tol`` = ``limit_tolerance``, or ``gripper_limit_tolerance`` for the grippers
    (:data:`motus_recorder.schema.GRIPPER_INDICES`, when n is the 14 of the 14-D layout). The same
    band judges model targets (:class:`SafetyGate`) and measured joint states
    (:class:`motus_policy.runtime.observation.ObservationAssembler`).
    """
    lo = np.asarray(position_min, dtype=np.float64)
    hi = np.asarray(position_max, dtype=np.float64)
    tol = np.full(lo.shape, float(limit_tolerance))
    if len(tol) == schema.STATE_DIM:
        tol[list(schema.GRIPPER_INDICES)] = gripper_limit_tolerance
    slack = tol * (hi - lo)
    return lo - slack, hi + slack


class SafetyGate:
    """Stateful gate: remembers the last safe command, the ramp and the e-stop latch.

    Threads: the control thread only (e-stop services run on the same executor).
    """

    def __init__(self, config: SafetyConfig):
        self.config = config
        self._lo = np.asarray(config.position_min, dtype=np.float64)
        self._hi = np.asarray(config.position_max, dtype=np.float64)
        self._lo_reject, self._hi_reject = limit_bands(
            self._lo, self._hi, config.limit_tolerance, config.gripper_limit_tolerance
        )
        self._step_max = (
            np.asarray(config.velocity_max) * config.velocity_scale * config.control_period_s
        )
        self.last_command: np.ndarray | None = None
        """The last command returned for publishing (None: nothing since the last disarm)."""
        self.active = False
        self.estop_reason: str | None = None
        self._ramp_from: np.ndarray | None = None
        self._ramp_start_ns: int | None = None
        self._rearm = False

    # -- state changes -------------------------------------------------------------------------
    def pose_violation(self, pose: np.ndarray) -> str | None:
        """Why a measured ``pose`` (float (14,)) cannot arm the gate, naming the joint; or None.

        A pose is refused when it has the wrong shape, a NaN/Inf, or a joint outside its limit
        by more than the tolerance band (:func:`limit_bands`: ``limit_tolerance`` of the joint's
        range, ``gripper_limit_tolerance`` for grippers).
        """
        q = np.asarray(pose, dtype=np.float64)
        if q.shape != self._lo.shape:
            return f"measured pose has shape {q.shape}, expected {self._lo.shape}"
        names = self.config.joint_names
        bad = ~np.isfinite(q)
        if bad.any():
            i = int(np.argmax(bad))
            return f"measured pose not finite: {names[i]}={q[i]}"
        for mask, word, lim in (
            (q < self._lo_reject, "<", self._lo),
            (q > self._hi_reject, ">", self._hi),
        ):
            if mask.any():
                i = int(np.argmax(mask))
                return (
                    f"measured pose out of limits: {names[i]} = {q[i]:.4f} {word} limit "
                    f"{lim[i]:.4f} (tolerance {self._tolerance_pct(i)})"
                )
        return None

    def _tolerance_pct(self, i: int) -> str:
        span = self._hi[i] - self._lo[i]
        return f"{100 * (self._hi_reject[i] - self._hi[i]) / span:.0f} % of the range"

    def activate(self, current_pose: np.ndarray, now_ns: int) -> None:
        """Arm the gate at the measured ``current_pose`` (float (14,)), ramping in from it.

        The pose, clamped into the limits, becomes the last command (what a hold republishes).

        Raises:
            ValueError: :meth:`pose_violation` refuses the pose (the message names the joint,
                its value and the limit); the gate is then disarmed: it publishes nothing.
        """
        problem = self.pose_violation(current_pose)
        if problem is not None:
            self.disarm()
            raise ValueError(f"activate: {problem}")
        pose = np.clip(np.asarray(current_pose, dtype=np.float64), self._lo, self._hi)
        self.last_command = pose
        self.active = True
        self._start_ramp(pose, now_ns)

    def deactivate(self) -> None:
        """Stop commanding (holds keep returning the last safe command)."""
        self.active = False

    def disarm(self) -> None:
        """Deactivate and forget the last command: holds publish nothing until :meth:`activate`.

        The runtime disarms on activation until a valid measured pose arms the gate, so a
        command from an earlier activation is not resent to an arm whose pose is unknown.
        """
        self.active = False
        self.last_command = None
        self._ramp_from = self._ramp_start_ns = None
        self._rearm = False

    def estop(self, reason: str = "e-stop requested") -> None:
        """Latch the e-stop: every later step holds until :meth:`reset_estop`."""
        self.estop_reason = reason

    def reset_estop(self) -> None:
        """Clear the latch; the next accepted target ramps in from the last published command.

        The measured pose is deliberately not used: during the e-stop the holds kept
        publishing the last command, so resuming from it keeps the command stream continuous
        (issue #14, defect 3: re-seeding from the measured pose jumped 0.4 rad in one tick).
        """
        self.estop_reason = None
        self._rearm = True

    def _start_ramp(self, pose: np.ndarray, now_ns: int) -> None:
        self._ramp_from, self._ramp_start_ns, self._rearm = pose.copy(), now_ns, False

    # -- per step ------------------------------------------------------------------------------
    def hold(self, reason: str) -> GateResult:
        """Hold at the last safe command; the next accepted target ramps in again.

        The command is None when there is none (never armed, or disarmed) and also, defensively,
        when the stored command is not finite or outside the limits (the reason then says so).
        """
        self._rearm = True
        last = self.last_command
        if last is None:
            return GateResult(None, True, reason)
        if not self._within_limits(last):
            self.last_command = None
            return GateResult(None, True, f"{reason}; last command invalid, nothing published")
        return GateResult(last.copy(), True, reason)

    def _within_limits(self, q: np.ndarray) -> bool:
        return bool(np.all(np.isfinite(q)) and np.all(q >= self._lo) and np.all(q <= self._hi))

    def violation(self, target: np.ndarray) -> str | None:
        """Why ``target`` (14,) must be rejected, naming the first offending joint; or None."""
        t = np.asarray(target, dtype=np.float64)
        if t.shape != self._lo.shape:
            return f"target has shape {t.shape}, expected {self._lo.shape}"
        names = self.config.joint_names
        bad = ~np.isfinite(t)
        if bad.any():
            i = int(np.argmax(bad))
            return f"non-finite target {names[i]}={t[i]}"
        for mask, word, lim in (
            (t < self._lo_reject, "<", self._lo),
            (t > self._hi_reject, ">", self._hi),
        ):
            if mask.any():
                i = int(np.argmax(mask))
                return f"target out of limits: {names[i]} = {t[i]:.4f} {word} {lim[i]:.4f}"
        return None

    def filter(self, target: np.ndarray | None, now_ns: int) -> GateResult:
        """Gate one control step's ``target`` (float (14,) or None when there is no plan).

        Returns:
            A :class:`GateResult` whose ``command`` (float64 (14,)) is finite, inside the limits
            and within one step's velocity limit of the previous command; or a hold.
        """
        if self.estop_reason is not None:
            return self.hold(f"e-stop latched: {self.estop_reason}")
        if not self.active or self.last_command is None:
            return self.hold("inactive")
        if target is None:
            return self.hold("no plan yet")
        reason = self.violation(target)
        if reason is not None:
            return self.hold(reason)
        raw = np.asarray(target, dtype=np.float64)
        cmd = np.clip(raw, self._lo, self._hi)  # only within limit_tolerance (else rejected)
        edge = tuple(n for n, c in zip(self.config.joint_names, cmd != raw, strict=True) if c)
        if self._rearm:
            self._start_ramp(self.last_command, now_ns)
        if self._ramp_from is not None and self.config.ramp_in_s > 0:
            alpha = (now_ns - self._ramp_start_ns) / (self.config.ramp_in_s * 1e9)
            if alpha >= 1.0:
                self._ramp_from = None
            else:
                alpha = max(alpha, 0.0)
                cmd = (1.0 - alpha) * self._ramp_from + alpha * cmd
        last = self.last_command
        step = cmd - last
        over = np.abs(step) > self._step_max
        clamped: tuple[str, ...] = ()
        if over.any():
            step = np.clip(step, -self._step_max, self._step_max)
            clamped = tuple(n for n, o in zip(self.config.joint_names, over, strict=True) if o)
        # a clip toward the limits only shortens the step (``last`` is inside them); it removes
        # the rounding of ``last + step`` past a limit
        out = np.clip(last + step, self._lo, self._hi)
        problem = self._output_problem(out, last)
        if problem is not None:  # unreachable by construction; never publish it regardless
            return self.hold(problem)
        self.last_command = out
        return GateResult(out.copy(), False, None, edge + clamped)

    def _output_problem(self, out: np.ndarray, last: np.ndarray) -> str | None:
        """Why ``out`` breaks the guarantees (finite, limits, one step from ``last``), or None."""
        if not self._within_limits(out) or not self._within_limits(last):
            return "internal: gated command not finite or outside the limits"
        if np.any(np.abs(out - last) > self._step_max * (1 + 1e-9) + 1e-12):
            return "internal: gated command exceeds the per-step velocity limit"
        return None

    def check_path(self, points: np.ndarray, dt_s: float) -> tuple[np.ndarray | None, str | None]:
        """Gate a whole trajectory (JointTrajectory output) starting from the last command.

        Args:
            points: float (K, 14) targets spaced ``dt_s`` apart, the first ``dt_s`` from now.
            dt_s: spacing of the points, seconds.

        Returns:
            ``(points, None)`` with per-step velocity clamping applied, or ``(None, reason)`` if
            any point is rejected (NaN, out of limits), the gate is inactive or e-stopped.
        """
        if self.estop_reason is not None:
            return None, f"e-stop latched: {self.estop_reason}"
        if not self.active or self.last_command is None:
            return None, "inactive"
        out = np.empty_like(np.asarray(points, dtype=np.float64))
        prev = self.last_command
        step_max = self._step_max * (dt_s / self.config.control_period_s)
        for k, p in enumerate(points):
            reason = self.violation(p)
            if reason is not None:
                return None, f"point {k}: {reason}"
            p = np.clip(np.asarray(p, dtype=np.float64), self._lo, self._hi)  # edge tolerance
            prev = np.clip(prev + np.clip(p - prev, -step_max, step_max), self._lo, self._hi)
            out[k] = prev
        return out, None

    @property
    def ramping(self) -> bool:
        """True while a ramp-in is in progress."""
        return self._ramp_from is not None
