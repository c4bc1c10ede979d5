"""AC-One vendor arm messages <-> the JointState every Motus node speaks (ROS-free core).

The AC-One vendor stack (github.com/Vertax42/AC_One, ``ROS2/X5_ws``) runs each ARX X5 arm with
``arx_x5_controller`` in ``arm_control_type: remote_slave`` (``config/v2_joint_control.yaml``):
the follower publishes its state as ``arx5_arm_msg/msg/RobotStatus`` on ``arm_slave_{l,r}_status``
and follows ``RobotStatus`` on ``arm_master_{l,r}_status``. From the vendor sources:

- ``src/arxmsgros2/arx5_arm_msg/msg/RobotStatus.msg``: ``std_msgs/Header header``,
  ``float64[6] end_pos``, ``float64[7] joint_pos``, ``float64[7] joint_vel``,
  ``float64[7] joint_cur``; ``joint_pos`` = joints 1..6 [rad], then the gripper; no names.
- ``src/arx_x5_ros2/arx_x5_controller/src/X5Controller.cpp``: ``PubState`` writes
  ``joint_pos[6] = gripper_rad / gripper_coef_`` and ``FollowCmdCallback`` commands
  ``joint_pos[6] * gripper_coef_`` (position catch mode, ``catch_control_mode`` 0; in torque
  mode it reads ``joint_cur[6]`` instead, which this relay does not drive), with
  ``gripper_coef_ = -3.4`` (``include/arx_x5_controller/X5Controller.hpp``, "project [0, -3.4]
  to [0, 1] for AC One"). ``FollowCmdCallback`` uses ``joint_pos[0..5]`` as joint targets [rad].

So the vendor gripper value is normalised (0 = 0 rad, 1 = -3.4 rad) and the Motus ac_one profile
keeps rad (the unit of the official ac_one ``stat.json``, docs/checkpoint-format.md §8):
``gripper_rad = normalised * gripper_rad_per_unit`` with ``gripper_rad_per_unit = -3.4``.

Pure functions, one config per arm; the ROS node is :mod:`motus_policy.ros.ac_one_relay_node`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from motus_recorder.profile import ArmProfile

VENDOR_MESSAGE_TYPE = "arx5_arm_msg/msg/RobotStatus"
"""The vendor state / follow-command type (``ROS2/X5_ws/src/arxmsgros2/arx5_arm_msg``)."""
VENDOR_POSITION_FIELD = "joint_pos"
"""RobotStatus field holding 6 joints [rad] + the normalised gripper (``float64[7]``)."""
GRIPPER_RAD_PER_UNIT = -3.4
"""Gripper rad per vendor unit: ``gripper_coef_`` of ``X5Controller.hpp`` (0..1 <-> 0..-3.4)."""
VENDOR_GRIPPER_RANGE = (0.0, 1.0)
"""The driver's gripper range in vendor units ("project [0, -3.4] to [0, 1]",
``X5Controller.hpp``). The profile's gripper limits are the official ac_one ``stat.json``
envelope (-3.75 .. 0.4 rad), wider than what the current driver maps; a command past the
driver's range is clamped to it (the gripper closes or opens fully), as grippers are driven
against their stops by design."""
N_POSITIONS = 7
"""6 joints + gripper, the length of RobotStatus ``joint_pos``."""


class RelayError(ValueError):
    """A message the relay refuses to convert (nothing is published); the text says why."""


@dataclass(frozen=True)
class AcOneArmRelayConfig:
    """The relay of one arm: topics on both sides, JointState names, gripper mapping, limits.

    Attributes:
        arm: arm name (profile ``arms[].name``), for messages.
        joint_names: the 7 JointState names, 6 joints then the gripper (profile
            ``joint_state_names``).
        vendor_state_topic: where the vendor driver publishes the follower's state
            (``arm_pub_topic_name``, e.g. ``/arm_slave_l_status``).
        vendor_command_topic: where the vendor follower listens (``arm_sub_topic_name``, e.g.
            ``/arm_master_l_status``); also where the vendor leader arms publish while teaching.
        state_topic: the JointState state topic (profile ``state_topic``).
        command_topic: the JointState command topic (profile ``command_topic``).
        leader_topic: the JointState topic for the leader arms' state in leader mode (profile
            ``driver.leader_topic``); empty: leader mode unavailable.
        position_min_rad / position_max_rad: 7 command limits [rad], gripper last in rad (the
            profile's limits); a command outside is refused.
        vendor_position_field: name of the float64 array field of the vendor message.
        gripper_rad_per_unit: ``gripper_rad = vendor_value * gripper_rad_per_unit`` (finite,
            non-zero; -3.4 on the current driver).

    Raises:
        ValueError: a field out of range, naming it (7 unique names, non-empty topics, a
            JointState topic equal to a vendor topic, limits not 7 finite with min < max).
    """

    arm: str
    joint_names: tuple[str, ...]
    vendor_state_topic: str
    vendor_command_topic: str
    state_topic: str
    command_topic: str
    position_min_rad: tuple[float, ...]
    position_max_rad: tuple[float, ...]
    leader_topic: str = ""
    vendor_position_field: str = VENDOR_POSITION_FIELD
    gripper_rad_per_unit: float = GRIPPER_RAD_PER_UNIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "position_min_rad", tuple(map(float, self.position_min_rad)))
        object.__setattr__(self, "position_max_rad", tuple(map(float, self.position_max_rad)))
        names = self.joint_names
        if len(names) != N_POSITIONS or len(set(names)) != N_POSITIONS or not all(names):
            raise ValueError(
                f"joint_names: expected {N_POSITIONS} unique non-empty names (6 joints, then "
                f"the gripper), got {list(names)}"
            )
        for f in ("vendor_state_topic", "vendor_command_topic", "state_topic", "command_topic"):
            if not isinstance(getattr(self, f), str) or not getattr(self, f):
                raise ValueError(f"{f}: expected a topic name, got {getattr(self, f)!r}")
        vendor = {self.vendor_state_topic, self.vendor_command_topic}
        for f in ("state_topic", "command_topic", "leader_topic"):
            if getattr(self, f) in vendor:
                raise ValueError(
                    f"{f}: {getattr(self, f)!r} is a vendor topic (RobotStatus); ROS 2 allows "
                    "one type per topic name, so the JointState side needs its own name"
                )
        lo, hi = np.array(self.position_min_rad), np.array(self.position_max_rad)
        if lo.shape != (N_POSITIONS,) or hi.shape != (N_POSITIONS,):
            raise ValueError(
                f"position_min_rad / position_max_rad: expected {N_POSITIONS} values each, got "
                f"{lo.size} and {hi.size}"
            )
        if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
            raise ValueError(
                f"position limits: expected finite min < max, got min {lo.tolist()} max "
                f"{hi.tolist()}"
            )
        if not self.vendor_position_field.isidentifier():
            raise ValueError(
                f"vendor_position_field: expected a field name, got {self.vendor_position_field!r}"
            )
        k = self.gripper_rad_per_unit
        if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k == 0:
            raise ValueError(f"gripper_rad_per_unit: expected a finite non-zero number, got {k!r}")

    @classmethod
    def from_arm_profile(cls, arm: ArmProfile, **overrides: Any) -> AcOneArmRelayConfig:
        """The relay of a profile arm.

        Names, JointState topics and limits come from the profile; vendor topics and mapping
        from its ``driver`` (``vendor_state_topic``,
        ``vendor_command_topic``, ``vendor_position_field``, ``gripper_rad_per_unit``).

        Raises:
            ValueError: the driver lacks a vendor topic, or a field is invalid (as the class).
        """
        driver = dict(arm.driver)
        missing = [k for k in ("vendor_state_topic", "vendor_command_topic") if k not in driver]
        if missing:
            raise ValueError(f"arm {arm.name!r}: profile driver lacks {missing} (vendor topics)")
        fields: dict[str, Any] = {
            "arm": arm.name,
            "joint_names": arm.joint_state_names,
            "vendor_state_topic": str(driver["vendor_state_topic"]),
            "vendor_command_topic": str(driver["vendor_command_topic"]),
            "state_topic": arm.state_topic,
            "command_topic": arm.command_topic,
            "leader_topic": str(driver.get("leader_topic", "")),
            "position_min_rad": (*arm.position_min_rad, arm.gripper.min),
            "position_max_rad": (*arm.position_max_rad, arm.gripper.max),
        }
        for key in ("vendor_position_field", "gripper_rad_per_unit"):
            if key in driver:
                fields[key] = driver[key]
        fields.update(overrides)
        return cls(**fields)


def vendor_to_joint_state(
    cfg: AcOneArmRelayConfig, vendor_positions: Sequence[float]
) -> tuple[tuple[str, ...], np.ndarray]:
    """Vendor positions -> the JointState names and positions of one arm.

    Args:
        cfg: the arm's relay config.
        vendor_positions: the vendor array (7,): joints 1..6 [rad], gripper normalised (vendor
            units, 0 .. 1 on the AC-One driver).

    Returns:
        (``cfg.joint_names``, float64 (7,) positions: joints [rad], gripper [rad] =
        vendor gripper * ``gripper_rad_per_unit``). Limits are not checked here (a measured pose
        past a limit is the policy gate's to judge).

    Raises:
        RelayError: not 7 values, or a non-finite one.
    """
    q = np.asarray(vendor_positions, dtype=np.float64).reshape(-1)
    if q.size != N_POSITIONS:
        raise RelayError(
            f"arm {cfg.arm}: vendor {cfg.vendor_position_field} has {q.size} values, expected "
            f"{N_POSITIONS} (6 joints + gripper)"
        )
    if not np.isfinite(q).all():
        raise RelayError(f"arm {cfg.arm}: non-finite vendor state {q.tolist()}")
    out = q.copy()
    out[6] = q[6] * cfg.gripper_rad_per_unit
    return cfg.joint_names, out


def joint_state_to_vendor(
    cfg: AcOneArmRelayConfig, names: Sequence[str], positions: Sequence[float]
) -> np.ndarray:
    """A JointState command (names, positions) -> the vendor array of one arm.

    Args:
        cfg: the arm's relay config.
        names: the JointState names; every one of ``cfg.joint_names`` must be there (the
            gripper too: the vendor message always carries it); others are ignored.
        positions: the JointState positions, same length as ``names`` [rad; gripper rad].

    Returns:
        float64 (7,): joints 1..6 [rad] in ``cfg.joint_names`` order, then the gripper in vendor
        units (gripper rad / ``gripper_rad_per_unit``, clamped to :data:`VENDOR_GRIPPER_RANGE`).

    Raises:
        RelayError: lengths differ, a name repeated or missing, a non-finite value, or a value
            outside [position_min_rad, position_max_rad] (the message names the joints).
    """
    names = list(names)
    pos = np.asarray(positions, dtype=np.float64).reshape(-1)
    if len(names) != pos.size:
        raise RelayError(f"arm {cfg.arm}: command has {len(names)} names but {pos.size} positions")
    index = {n: i for i, n in enumerate(names)}
    if len(index) != len(names):
        raise RelayError(f"arm {cfg.arm}: command repeats joint names: {names}")
    missing = [n for n in cfg.joint_names if n not in index]
    if missing:
        raise RelayError(f"arm {cfg.arm}: command lacks joints {missing}; has {names}")
    q = pos[[index[n] for n in cfg.joint_names]]
    bad = [n for n, v in zip(cfg.joint_names, q, strict=True) if not math.isfinite(v)]
    if bad:
        raise RelayError(f"arm {cfg.arm}: non-finite command for {bad}: {q.tolist()}")
    lo, hi = np.array(cfg.position_min_rad), np.array(cfg.position_max_rad)
    out_of_range = [
        f"{n}={v:.4g} not in [{a:.4g}, {b:.4g}]"
        for n, v, a, b in zip(cfg.joint_names, q, lo, hi, strict=True)
        if not a <= v <= b
    ]
    if out_of_range:
        raise RelayError(f"arm {cfg.arm}: command outside the limits [rad]: {out_of_range}")
    out = q.copy()
    out[6] = np.clip(q[6] / cfg.gripper_rad_per_unit, *VENDOR_GRIPPER_RANGE)
    return out
