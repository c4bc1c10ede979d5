"""AgileX Piper arm driver core (ROS-free) on top of piper-sdk's ``C_PiperInterface_V2``.

Units: our side speaks SI (joints in rad, gripper stroke in m, effort in N*m); piper-sdk speaks
integers: joints in 0.001 deg, gripper stroke in 0.001 mm, gripper effort in 0.001 N*m (0-5000)
(piper-sdk 0.6.2 ``JointCtrl`` / ``GripperCtrl`` docstrings; docs/platform.md §4).
Conversions round to the nearest integer unit, so a command is exact to 0.5e-3 deg and 0.5 um.

Safety: every command is checked before anything is sent. A NaN/inf or a value outside the
profile's limits raises :class:`CommandRejectedError` and sends *no* frame; commands are also
refused while the arm is e-stopped through this driver (call :meth:`PiperArm.resume`).

Threads: all methods may be called from any thread; SDK sends are serialised by one lock (the SDK
reuses one ``tx_msg`` object per interface, so concurrent sends would race).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from motus_recorder.profile import ArmProfile, check_positions

MDEG_PER_RAD = 180_000.0 / math.pi
"""0.001 deg per rad (piper-sdk joint unit)."""
UM_PER_M = 1_000_000.0
"""0.001 mm per m (piper-sdk gripper stroke unit)."""
MNM_PER_NM = 1000.0
"""0.001 N*m per N*m (piper-sdk gripper effort unit)."""
GRIPPER_EFFORT_MAX_NM = 5.0
"""GripperCtrl effort range 0-5000 (0.001 N*m), piper-sdk 0.6.2 docstring."""

CTRL_MODE_CAN = 0x01
MOVE_MODE_J = 0x01
POSITION_VELOCITY_MODE = 0x00
ESTOP_CODE = 0x01
RESUME_CODE = 0x02
GRIPPER_ENABLE = 0x01
GRIPPER_DISABLE = 0x00
LEADER_LINKAGE = 0xFA
"""MasterSlaveConfig linkage code: this arm is the teaching-input (leader) arm."""
ALL_MOTORS = 7
ENABLE_POLL_S = 0.01


class CommandRejectedError(ValueError):
    """A command was NaN/inf, the wrong shape, out of limits, or sent while e-stopped."""


@dataclass
class PiperArmConfig:
    """One Piper arm as seen by the driver.

    Attributes:
        joint_names: the 6 joint names (14-D order; from the profile arm).
        gripper_joint_name: gripper name in JointState messages.
        position_min_rad / position_max_rad: 6 joint limits (rad), min < max.
        gripper_min_m / gripper_max_m: gripper stroke limits (m), 0 <= min < max.
        gripper_effort_nm: gripper grip effort sent with every gripper command (N*m, 0-5).
            Default 1.0 N*m: firm enough to hold light objects, a fifth of the SDK maximum.
        speed_rate_percent: MotionCtrl_2 move-speed rate, 1-100 (%). Default 50, the piper-sdk
            ``MotionCtrl_2`` default; raise it for fast streamed commands once tested.
        enable_timeout_s: how long :meth:`PiperArm.enable` waits for all drivers to report
            enabled (s), > 0.
    """

    joint_names: tuple[str, ...]
    gripper_joint_name: str
    position_min_rad: tuple[float, ...]
    position_max_rad: tuple[float, ...]
    gripper_min_m: float
    gripper_max_m: float
    gripper_effort_nm: float = 1.0
    speed_rate_percent: int = 50
    enable_timeout_s: float = 2.0

    def __post_init__(self):
        self.joint_names = tuple(self.joint_names)
        self.position_min_rad = tuple(float(v) for v in self.position_min_rad)
        self.position_max_rad = tuple(float(v) for v in self.position_max_rad)
        for name in ("joint_names", "position_min_rad", "position_max_rad"):
            if len(getattr(self, name)) != 6:
                raise ValueError(f"{name} must have 6 entries, got {getattr(self, name)!r}")
        lo, hi = np.array(self.position_min_rad), np.array(self.position_max_rad)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
            raise ValueError(
                f"position_min_rad must be < position_max_rad (finite), got {lo} and {hi}"
            )
        if not (0.0 <= self.gripper_min_m < self.gripper_max_m <= 0.2):
            raise ValueError(
                "gripper_min_m/gripper_max_m must satisfy 0 <= min < max <= 0.2 m, got "
                f"{self.gripper_min_m!r}, {self.gripper_max_m!r}"
            )
        if not (0.0 <= self.gripper_effort_nm <= GRIPPER_EFFORT_MAX_NM):
            raise ValueError(
                f"gripper_effort_nm must be in [0, {GRIPPER_EFFORT_MAX_NM}], "
                f"got {self.gripper_effort_nm!r}"
            )
        if not (isinstance(self.speed_rate_percent, int) and 1 <= self.speed_rate_percent <= 100):
            raise ValueError(
                f"speed_rate_percent must be an int in 1..100, got {self.speed_rate_percent!r}"
            )
        if not (self.enable_timeout_s > 0):
            raise ValueError(f"enable_timeout_s must be > 0, got {self.enable_timeout_s!r}")

    @classmethod
    def from_arm_profile(cls, arm: ArmProfile, **overrides: Any) -> PiperArmConfig:
        """Build from a profile arm; the gripper unit must be ``m`` (Piper stroke)."""
        if arm.gripper.unit != "m":
            raise ValueError(
                f"arm {arm.name!r}: Piper gripper unit must be 'm', got {arm.gripper.unit!r}"
            )
        return cls(
            joint_names=arm.joint_names,
            gripper_joint_name=arm.gripper.joint_name,
            position_min_rad=arm.position_min_rad,
            position_max_rad=arm.position_max_rad,
            gripper_min_m=arm.gripper.min,
            gripper_max_m=arm.gripper.max,
            **overrides,
        )

    @property
    def names(self) -> tuple[str, ...]:
        """The 7 JointState names: 6 joints then the gripper."""
        return (*self.joint_names, self.gripper_joint_name)


@dataclass(frozen=True)
class ArmReading:
    """Joints float64 (6,) rad, gripper stroke m, SDK receive time (s, host clock; 0 = never)."""

    joints_rad: np.ndarray
    gripper_m: float
    sdk_time_s: float


def rad_to_mdeg(q_rad: np.ndarray) -> list[int]:
    """Radians -> piper-sdk integer 0.001 deg (rounded)."""
    return [int(round(float(v) * MDEG_PER_RAD)) for v in q_rad]


def m_to_um(x_m: float) -> int:
    """Metres -> piper-sdk integer 0.001 mm (rounded)."""
    return int(round(float(x_m) * UM_PER_M))


def connect_piper(can_channel: str, can_interface: str = "socketcan") -> Any:
    """Create and connect a ``C_PiperInterface_V2`` on a CAN channel (docs/platform.md §4).

    ``can_interface`` is a python-can interface name: ``socketcan`` on the robot, ``virtual`` in
    tests (then the SDK's SocketCAN link check is skipped). The SDK keeps one instance per
    channel name.

    Raises:
        ConnectionError: the SDK could not open the bus.
    """
    from piper_sdk import C_PiperInterface_V2

    judge = can_interface == "socketcan"
    sdk = C_PiperInterface_V2(can_name=can_channel, judge_flag=judge, can_auto_init=False)
    sdk.CreateCanBus(can_channel, bustype=can_interface, judge_flag=judge)
    sdk.ConnectPort()
    return sdk


class PiperArm:
    """Commands and feedback of one Piper arm through a connected piper-sdk interface."""

    def __init__(self, config: PiperArmConfig, sdk: Any):
        self.config = config
        self._sdk = sdk
        self._lock = threading.Lock()
        self._estopped = False
        self._lo = np.array(config.position_min_rad)
        self._hi = np.array(config.position_max_rad)

    @property
    def estopped(self) -> bool:
        """True after :meth:`estop` until :meth:`resume`."""
        return self._estopped

    # -- power / safety ----------------------------------------------------------------------
    def enable(self) -> bool:
        """Enable all motors and the gripper; wait up to ``enable_timeout_s`` for confirmation.

        Returns:
            True when all six joint drivers report enabled (``GetArmEnableStatus``).
        """
        deadline = time.monotonic() + self.config.enable_timeout_s
        while True:
            with self._lock:
                self._sdk.EnableArm(ALL_MOTORS, 0x02)
                self._sdk.GripperCtrl(0, self._effort(), GRIPPER_ENABLE, 0)
            if self.is_enabled():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(ENABLE_POLL_S)

    def disable(self) -> None:
        """Disable all motors (the arm goes limp: support it first) and the gripper."""
        with self._lock:
            self._sdk.DisableArm(ALL_MOTORS, 0x01)
            self._sdk.GripperCtrl(0, 0, GRIPPER_DISABLE, 0)

    def is_enabled(self) -> bool:
        """True when all six joint drivers report enabled."""
        return bool(all(self._sdk.GetArmEnableStatus()))

    def estop(self) -> None:
        """Quick emergency stop (MotionCtrl_1 emergency_stop=0x01); commands refused after."""
        with self._lock:
            self._estopped = True
            self._sdk.MotionCtrl_1(ESTOP_CODE, 0x00, 0x00)

    def resume(self) -> None:
        """Leave the emergency stop (MotionCtrl_1 emergency_stop=0x02); commands accepted again."""
        with self._lock:
            self._sdk.MotionCtrl_1(RESUME_CODE, 0x00, 0x00)
            self._estopped = False

    # -- commands ----------------------------------------------------------------------------
    def check_command(self, joints_rad: np.ndarray, gripper_m: float | None) -> np.ndarray:
        """Validate a command (:func:`motus_recorder.profile.check_positions`).

        Args:
            joints_rad: float (6,) joint targets, rad.
            gripper_m: gripper stroke target, m, or None (no gripper command).

        Returns:
            The joints as float64 (6,).

        Raises:
            CommandRejectedError: wrong shape, NaN/inf, or outside the profile limits; the
                message names the first offending joint, its value and the limits.
        """
        q = check_positions(
            joints_rad,
            self.config.joint_names,
            self._lo,
            self._hi,
            "joint command (rad)",
            error=CommandRejectedError,
        )
        if gripper_m is not None:
            check_positions(
                np.array([float(gripper_m)]),
                (self.config.gripper_joint_name,),
                np.array([self.config.gripper_min_m]),
                np.array([self.config.gripper_max_m]),
                "gripper command (m)",
                error=CommandRejectedError,
            )
        return q

    def command(self, joints_rad: np.ndarray, gripper_m: float | None = None) -> None:
        """Send a joint (and optional gripper) position target.

        Sends MotionCtrl_2(CAN control, MOVE J, speed rate) then JointCtrl (0x155-0x157) and,
        when ``gripper_m`` is given, GripperCtrl (0x159) with the configured effort.

        Args:
            joints_rad: float (6,) joint targets in rad, within the profile limits.
            gripper_m: gripper stroke target in m, or None to leave the gripper alone.

        Raises:
            CommandRejectedError: invalid command or e-stopped; nothing is sent.
        """
        q = self.check_command(joints_rad, gripper_m)
        with self._lock:
            if self._estopped:
                raise CommandRejectedError("arm is e-stopped; call resume() before commanding")
            self._sdk.MotionCtrl_2(
                CTRL_MODE_CAN, MOVE_MODE_J, self.config.speed_rate_percent, POSITION_VELOCITY_MODE
            )
            self._sdk.JointCtrl(*rad_to_mdeg(q))
            if gripper_m is not None:
                self._sdk.GripperCtrl(m_to_um(gripper_m), self._effort(), GRIPPER_ENABLE, 0)

    def _effort(self) -> int:
        return int(round(self.config.gripper_effort_nm * MNM_PER_NM))

    # -- feedback ----------------------------------------------------------------------------
    def read_state(self) -> ArmReading:
        """Latest joint (0x2A5-0x2A7) and gripper (0x2A8) feedback in rad / m."""
        js = self._sdk.GetArmJointMsgs()
        gs = self._sdk.GetArmGripperMsgs()
        j = js.joint_state
        mdeg = (j.joint_1, j.joint_2, j.joint_3, j.joint_4, j.joint_5, j.joint_6)
        return ArmReading(
            joints_rad=np.array(mdeg, dtype=np.float64) / MDEG_PER_RAD,
            gripper_m=gs.gripper_state.grippers_angle / UM_PER_M,
            sdk_time_s=float(js.time_stamp),
        )

    # -- leader (teaching) arm ---------------------------------------------------------------
    def configure_as_leader(self) -> None:
        """Make this arm the teaching-input (leader) arm: MasterSlaveConfig(0xFA, 0, 0, 0)."""
        with self._lock:
            self._sdk.MasterSlaveConfig(LEADER_LINKAGE, 0x00, 0x00, 0x00)

    def read_leader_command(self) -> ArmReading | None:
        """The leader's latest JointCtrl (0x155-0x157) / GripperCtrl (0x159) frames in rad / m.

        Returns None until the first leader frame has arrived.
        """
        jc = self._sdk.GetArmJointCtrl()
        gc = self._sdk.GetArmGripperCtrl()
        if not jc.time_stamp:
            return None
        j = jc.joint_ctrl
        mdeg = (j.joint_1, j.joint_2, j.joint_3, j.joint_4, j.joint_5, j.joint_6)
        return ArmReading(
            joints_rad=np.array(mdeg, dtype=np.float64) / MDEG_PER_RAD,
            gripper_m=gc.gripper_ctrl.grippers_angle / UM_PER_M,
            sdk_time_s=float(jc.time_stamp),
        )
