"""Configuration of the scripted ALOHA experts (one frozen, validated dataclass)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from motus_policy.robots.aloha_sim.tasks import TASKS

EPISODE_STEPS = {"transfer_cube": 400, "insertion": 500}
"""Episode rows at 50 Hz: aloha_sim.yaml ``extras.episode_length_s`` (8 s, 10 s)."""


@dataclass(frozen=True)
class ExpertConfig:
    """Motion parameters shared by the task planners.

    Attributes:
        task: "transfer_cube" or "insertion".
        control_period_s: time between plan rows (gym-aloha DT = 0.02 s, 50 Hz).
        profile: robot profile whose position / velocity limits every plan row respects.
        joint_speed_fraction: fraction of the profile's ``velocity_max`` used as the *peak*
            joint speed of a move (min-jerk profiles peak at 1.875x their mean speed).
        tool_speed_m_s: mean Cartesian speed of the tool point in straight-line moves.
        min_move_s: shortest duration of any move.
        gripper_move_s: duration of one gripper open or close.
        settle_s: pause after a gripper closes or opens, before the next move.
        approach_height_m: height above a grasp at which the gripper arrives before it
            descends vertically.
        lift_height_m: tool height after lifting an object off the table.
        gripper_open: normalised opening of an open gripper (0 closed .. 1 open).
        gripper_closed: normalised command of a closed gripper; below the finger range so
            the position actuator keeps squeezing (gym-aloha maps 0 -> 0.0184 m, the finger
            joint stops at 0.021 m).
        episode_steps: rows of a full episode; the plan is at most this long.
    """

    task: str
    control_period_s: float = 0.02
    profile: str = "aloha_sim"
    joint_speed_fraction: float = 0.6
    tool_speed_m_s: float = 0.25
    min_move_s: float = 0.3
    gripper_move_s: float = 0.3
    settle_s: float = 0.15
    approach_height_m: float = 0.08
    lift_height_m: float = 0.2
    gripper_open: float = 1.0
    gripper_closed: float = 0.0
    episode_steps: int = 0

    def __post_init__(self) -> None:
        """Validates every field; fills ``episode_steps`` from the task when left at 0.

        Raises:
            ValueError: naming the field and the bad value.
        """
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {TASKS}, got {self.task!r}")
        positive = (
            "control_period_s",
            "joint_speed_fraction",
            "tool_speed_m_s",
            "min_move_s",
            "gripper_move_s",
            "approach_height_m",
            "lift_height_m",
        )
        for name in positive:
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
        if self.joint_speed_fraction > 1.0:
            raise ValueError(
                f"joint_speed_fraction: expected <= 1 (fraction of velocity_max), "
                f"got {self.joint_speed_fraction}"
            )
        if not (math.isfinite(self.settle_s) and self.settle_s >= 0):
            raise ValueError(f"settle_s: expected a finite number >= 0, got {self.settle_s!r}")
        for name in ("gripper_open", "gripper_closed"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: expected a value in [0, 1], got {value!r}")
        if self.gripper_closed >= self.gripper_open:
            raise ValueError(
                f"gripper_closed: expected < gripper_open ({self.gripper_open}), "
                f"got {self.gripper_closed}"
            )
        if self.episode_steps == 0:
            object.__setattr__(self, "episode_steps", EPISODE_STEPS[self.task])
        if not (isinstance(self.episode_steps, int) and self.episode_steps > 0):
            raise ValueError(f"episode_steps: expected an int > 0, got {self.episode_steps!r}")

    @property
    def rate_hz(self) -> float:
        """Plan rate (Hz)."""
        return 1.0 / self.control_period_s
