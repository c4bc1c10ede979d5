"""The simulated robot's control loop logic, ROS-free: command arbitration, lockstep, pacing.

:class:`SimRunner` owns an :class:`~motus_policy.robots.aloha_sim.sim.AlohaSim` and one
:class:`~motus_policy.robots.trajectory.TrajectoryFollower` per arm. Commands arrive per arm either
as a position stream (:meth:`SimRunner.command`, each message holds its target until the next)
or as a trajectory (:meth:`SimRunner.trajectory`, interpolated at every physics step). A rejected
command is never applied; the arm keeps its last valid target.

Modes (``AlohaSimNodeConfig.mode``):

- ``lockstep``: physics advances one control step only when a new command has arrived for *both*
  arms since the last step (or when a step is requested explicitly), for reproducible evaluation;
- ``free_run``: a wall-clock loop steps at 50 Hz x ``real_time_factor`` holding the latest
  targets (:class:`Pacer`). When rendering makes a step slower than its period, sim time simply
  runs slower than wall time; there is no catch-up burst.

Threading: :meth:`command` and :meth:`trajectory` may be called from any thread (ROS callbacks);
:meth:`reset`, :meth:`step` and the sim accessors belong to one stepping thread. A lock guards
the followers and the freshness flags shared by both.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from motus_policy.robots.aloha_sim.commands import CommandRejected
from motus_policy.robots.aloha_sim.sim import CONTROL_PERIOD_NS, TASKS, AlohaSim, AlohaSimConfig
from motus_policy.robots.trajectory import TrajectoryFollower
from motus_recorder import schema
from motus_recorder.profile import RobotProfile

MODES = ("lockstep", "free_run")


@dataclass(frozen=True)
class AlohaSimNodeConfig:
    """Settings of the simulated ALOHA node; its ROS parameters are exactly these fields.

    Attributes:
        profile: robot profile name or YAML path (``aloha_sim``).
        task: ``transfer_cube`` or ``insertion``.
        seed: seed of the next reset (gym-aloha seeding); read again at every reset call.
        mode: ``lockstep`` or ``free_run``.
        real_time_factor: free_run speed, sim seconds per wall second (> 0, <= 100).
        image_height: rendered height, px; 0 = the profile's.
        image_width: rendered width, px; 0 = the profile's.
        publish_images: render and publish the cameras at their rates.
    """

    profile: str = "aloha_sim"
    task: str = "transfer_cube"
    seed: int = 0
    mode: str = "free_run"
    real_time_factor: float = 1.0
    image_height: int = 0
    image_width: int = 0
    publish_images: bool = True

    def __post_init__(self) -> None:
        if not self.profile:
            raise ValueError("profile: expected a profile name or path, got ''")
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {self.task!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed: expected an int, got {self.seed!r}")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed: expected 0 <= seed < 2**32, got {self.seed}")
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {list(MODES)}, got {self.mode!r}")
        rtf = self.real_time_factor
        if not (math.isfinite(rtf) and 0 < rtf <= 100):
            raise ValueError(f"real_time_factor: expected a number in (0, 100], got {rtf}")
        if not isinstance(self.publish_images, bool):
            raise ValueError(f"publish_images: expected a bool, got {self.publish_images!r}")

    def sim_config(self) -> AlohaSimConfig:
        """The simulator settings (raises ValueError on bad image sizes)."""
        return AlohaSimConfig(
            task=self.task, image_height=self.image_height, image_width=self.image_width
        )


@dataclass
class StepResult:
    """What the simulator shows after a reset or a step (all at ``sim_time_ns``)."""

    sim_time_ns: int
    qpos: np.ndarray
    """float64 (14,) joint positions (rad; grippers normalised)."""
    qvel: np.ndarray
    """float64 (14,) joint velocities (rad/s; grippers normalised per s)."""
    reward: float
    success: bool
    object_poses: np.ndarray
    """float64 (N, 7) ``[x, y, z, qw, qx, qy, qz]``."""
    images: dict[str, np.ndarray] = field(default_factory=dict)
    """Cameras due at this step: ``{profile camera name: uint8 (H, W, 3)}``."""


class SimRunner:
    """Arbitrates per-arm commands into 14-D targets and steps/renders the simulator.

    Args:
        sim: the simulator (owned by the stepping thread from now on).
        profile: robot profile (arms, cameras and their rates).
        render: render cameras at their ``rate_hz`` (every ``control_rate / rate_hz`` steps).

    Raises:
        ValueError: a camera rate does not divide the control rate.
    """

    def __init__(self, sim: AlohaSim, profile: RobotProfile, render: bool = True):
        self.sim = sim
        self.profile = profile
        self._render = render
        self._every: dict[str, int] = {}
        for name in sim.camera_names:
            ratio = profile.control_rate_hz / profile.camera(name).rate_hz
            if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
                raise ValueError(
                    f"camera {name!r}: rate_hz {profile.camera(name).rate_hz} must divide the "
                    f"control rate {profile.control_rate_hz}"
                )
            self._every[name] = round(ratio)
        self._lock = threading.Lock()
        self._followers: dict[str, TrajectoryFollower] = {}
        self._fresh = dict.fromkeys(schema.ARM_NAMES, False)
        self._pose = np.zeros(schema.STATE_DIM)
        self._now_ns = 0
        self._episode_start_ns = 0

    # -- commands (any thread) ---------------------------------------------------------------
    def command(self, arm: str, q7: np.ndarray, stamp_ns: int = 0) -> None:
        """Hold ``q7`` (7,) as the arm's target from the next step on.

        Args:
            arm: ``left`` or ``right``.
            q7: float (7,) 6 joint targets (rad) then the gripper (0 closed .. 1 open).
            stamp_ns: the command's stamp; a non-zero stamp before the current episode's start
                marks a command answering the previous episode, which is rejected (so that a
                late command never leaks into a new episode).

        Raises:
            CommandRejected: invalid vector (names joint, value, limits) or a stale stamp;
                the target is unchanged.
            RuntimeError: before the first reset.
        """
        with self._lock:
            self._check_stamp(arm, stamp_ns)
            self._follower(arm).hold(q7)
            self._fresh[arm] = True

    def trajectory(
        self, arm: str, times_from_start_ns: np.ndarray, positions: np.ndarray, stamp_ns: int
    ) -> None:
        """Follow a trajectory; ``stamp_ns`` 0 means "start at the current sim time".

        Raises:
            CommandRejected: see :meth:`TrajectoryFollower.set`; the old target stays.
        """
        with self._lock:
            self._check_stamp(arm, stamp_ns)
            cur = self._pose[schema.ARM_SLICES[arm]]
            self._follower(arm).set(stamp_ns, times_from_start_ns, positions, self._now_ns, cur)
            self._fresh[arm] = True

    def _check_stamp(self, arm: str, stamp_ns: int) -> None:
        if stamp_ns and stamp_ns < self._episode_start_ns:
            raise CommandRejected(
                f"{arm} command stamped {stamp_ns} ns, before the current episode's start "
                f"{self._episode_start_ns} ns (it answers an earlier episode)"
            )

    @property
    def episode_start_ns(self) -> int:
        """Sim time of the last reset, ns (0 before the first)."""
        return self._episode_start_ns

    def _follower(self, arm: str) -> TrajectoryFollower:
        if arm not in schema.ARM_SLICES:
            raise CommandRejected(f"unknown arm {arm!r}; expected one of {schema.ARM_NAMES}")
        if not self._followers:
            raise RuntimeError("command before the first reset")
        return self._followers[arm]

    @property
    def both_arms_commanded(self) -> bool:
        """True when both arms got a new command since the last step (lockstep trigger)."""
        with self._lock:
            return all(self._fresh.values())

    # -- stepping (stepping thread) ----------------------------------------------------------
    def reset(self, seed: int) -> StepResult:
        """Reset the episode; both arms hold the initial pose; all cameras are rendered."""
        self.sim.reset(seed)
        pose = self.sim.qpos14()
        target = pose.copy()
        target[list(schema.GRIPPER_INDICES)] = np.clip(
            target[list(schema.GRIPPER_INDICES)], 0.0, 1.0
        )
        with self._lock:
            self._followers = {
                arm: TrajectoryFollower.for_arm(
                    self.profile, arm, error=CommandRejected, initial=target[sl]
                )
                for arm, sl in schema.ARM_SLICES.items()
            }
            self._fresh = dict.fromkeys(schema.ARM_NAMES, False)
            self._pose = pose
            self._now_ns = self._episode_start_ns = self.sim.sim_time_ns
        return self._result(render_all=True)

    def step(self) -> StepResult:
        """One control step towards the followers' targets at the step's end time."""
        t_end = self.sim.sim_time_ns + CONTROL_PERIOD_NS
        with self._lock:
            target = np.concatenate(
                [self._followers[arm].sample(t_end) for arm in schema.ARM_NAMES]
            )
            self._fresh = dict.fromkeys(schema.ARM_NAMES, False)
        self.sim.step(target)  # targets were validated on arrival; re-checked here
        with self._lock:
            self._pose = self.sim.qpos14()
            self._now_ns = self.sim.sim_time_ns
        return self._result(render_all=False)

    def _result(self, render_all: bool) -> StepResult:
        images: dict[str, np.ndarray] = {}
        if self._render:
            k = self.sim.episode_steps
            due = [n for n, every in self._every.items() if render_all or k % every == 0]
            images = self.sim.render(due)
        return StepResult(
            sim_time_ns=self.sim.sim_time_ns,
            qpos=self.sim.qpos14(),
            qvel=self.sim.qvel14(),
            reward=self.sim.reward(),
            success=self.sim.success,
            object_poses=self.sim.object_poses(),
            images=images,
        )


class Pacer:
    """Wall-clock pacing for free_run: one step every ``period / real_time_factor``.

    Args:
        period_ns: sim period per step, ns (20 ms).
        real_time_factor: sim seconds per wall second (> 0).
        clock: monotonic wall clock, int ns (injected; ``time.monotonic_ns`` in the node).
        sleep: sleep function taking seconds.

    Deadlines advance by one wall period per step, so a slow step (one that renders) is made up
    by the fast ones after it. When the loop falls more than ``max_lag_steps`` periods behind,
    the schedule restarts from now: sim time then runs slower than wall time instead of
    bursting to catch up. The achieved real-time factor is reported by :meth:`achieved_rtf`.

    Threading: the stepping thread only; ``real_time_factor`` may be replaced from another
    thread (a float assignment).
    """

    def __init__(
        self,
        period_ns: int,
        real_time_factor: float,
        clock: Callable[[], int] = time.monotonic_ns,
        sleep: Callable[[float], None] = time.sleep,
        max_lag_steps: int = 4,
    ):
        self.max_lag_steps = int(max_lag_steps)
        self.period_ns = int(period_ns)
        self.real_time_factor = float(real_time_factor)
        self._clock = clock
        self._sleep = sleep
        self._next_ns: int | None = None
        self._win_start_ns = clock()
        self._win_steps = 0

    def wait(self, max_wait_s: float = 0.1) -> bool:
        """Sleep until the next step is due (at most ``max_wait_s``); True when it is due."""
        now = self._clock()
        if self._next_ns is None:
            self._next_ns = now
        remaining_s = (self._next_ns - now) / 1e9
        if remaining_s > 0:
            self._sleep(min(remaining_s, max_wait_s))
            if remaining_s > max_wait_s:
                return False
        return True

    def stepped(self) -> None:
        """Record a step and schedule the next one."""
        now = self._clock()
        wall_period = round(self.period_ns / self.real_time_factor)
        assert self._next_ns is not None
        self._next_ns += wall_period
        if now - self._next_ns > self.max_lag_steps * wall_period:
            self._next_ns = now
        self._win_steps += 1

    def achieved_rtf(self) -> float:
        """Sim seconds per wall second since the last call (resets the window)."""
        now = self._clock()
        wall = max(now - self._win_start_ns, 1)
        rtf = self._win_steps * self.period_ns / wall
        self._win_start_ns, self._win_steps = now, 0
        return rtf
