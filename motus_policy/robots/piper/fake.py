"""A fake AgileX Piper arm at the CAN boundary, for tests without hardware.

The fake sits on python-can's in-process ``virtual`` bus (SocketCAN/vcan are unavailable here,
docs/platform.md §4) and speaks the Piper CAN protocol as decoded by piper-sdk 0.6.2
(``piper_sdk/protocol/protocol_v2/piper_protocol_v2.py``; IDs in docs/platform.md §4):

* it decodes ``0x150`` MotionCtrl_1 (byte 0: 0x01 e-stop, 0x02 resume), ``0x151`` MotionCtrl_2
  (byte 0 control mode), ``0x155``-``0x157`` JointCtrl (two big-endian int32 per frame, 0.001 deg),
  ``0x159`` GripperCtrl (big-endian int32 stroke in 0.001 mm, uint16 effort, uint8 code) and
  ``0x471`` motor enable (byte 0 motor 1-7 / 0xFF, byte 1: 0x02 enable, 0x01 disable);
* it follows joint and gripper targets with a first-order lag
  ``x += (target - x) * (1 - exp(-dt / time_constant_s))`` while enabled and not e-stopped;
* it answers at ``feedback_rate_hz`` with ``0x2A5``-``0x2A7`` joint feedback and ``0x2A8``
  gripper feedback, plus ``0x2A1`` arm status and ``0x261``-``0x266`` low-speed driver info
  (bit 6 of byte 5 = driver enabled, which ``GetArmEnableStatus()`` reads) at
  ``status_rate_hz``.

As a *leader* (teaching) arm it instead emits JointCtrl ``0x155``-``0x157`` and GripperCtrl
``0x159`` frames from a scripted motion, as a real Piper set to ``MasterSlaveConfig(0xFA, ...)``
does on its bus (docs/platform.md §4, "teleop").

Threads: one daemon thread owns the bus; ``frames_seen``/``state`` may be called from any thread.
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import can
import numpy as np

ID_MOTION_CTRL_1 = 0x150
ID_MOTION_CTRL_2 = 0x151
ID_JOINT_CTRL = (0x155, 0x156, 0x157)
ID_GRIPPER_CTRL = 0x159
ID_MOTOR_ENABLE = 0x471
ID_ARM_STATUS = 0x2A1
ID_JOINT_FEEDBACK = (0x2A5, 0x2A6, 0x2A7)
ID_GRIPPER_FEEDBACK = 0x2A8
ID_LOW_SPD_FEEDBACK = (0x261, 0x262, 0x263, 0x264, 0x265, 0x266)

ESTOP = 0x01
RESUME = 0x02
ENABLE_FLAG = 0x02
DISABLE_FLAG = 0x01
DRIVER_ENABLED_BIT = 1 << 6
ARM_STATUS_NORMAL = 0x00
ARM_STATUS_ESTOP = 0x01
GRIPPER_ENABLED_BIT = 1 << 6
FRAME_LOG_MAX = 100_000
"""Frames kept for inspection by tests (oldest dropped first)."""

LeaderScript = Callable[[float], tuple[np.ndarray, float]]
"""``t_s -> (joints (6,) in 0.001 deg as ints, gripper in 0.001 mm)`` for a fake leader arm."""


def default_leader_script(t_s: float) -> tuple[np.ndarray, float]:
    """In-limit sinusoid: joint 1 +-20 deg at 0.5 Hz, joint 2 at 30 deg, gripper 0..50 mm."""
    s = math.sin(2.0 * math.pi * 0.5 * t_s)
    joints = np.array([20_000 * s, 30_000, -30_000, 0, 10_000 * s, 0], dtype=np.int64)
    return joints, 25_000 + 25_000 * s


@dataclass
class FakePiperConfig:
    """Fake arm settings.

    Attributes:
        channel: python-can virtual channel name (unique per test: the SDK is a singleton per
            can_name).
        time_constant_s: first-order lag of the joints and gripper (s), > 0.
        feedback_rate_hz: rate of 0x2A5-0x2A8 feedback (or of leader JointCtrl frames), > 0.
        status_rate_hz: rate of 0x2A1 / 0x261-0x266 status frames, > 0.
        initial_joints_mdeg: start position, 6 ints in 0.001 deg.
        initial_gripper_um: start gripper stroke in 0.001 mm.
        leader: act as a leader (teaching) arm that emits a scripted JointCtrl stream.
    """

    channel: str
    time_constant_s: float = 0.05
    feedback_rate_hz: float = 250.0
    status_rate_hz: float = 50.0
    initial_joints_mdeg: tuple[int, ...] = (0, 0, 0, 0, 0, 0)
    initial_gripper_um: int = 0
    leader: bool = False

    def __post_init__(self):
        if not self.channel:
            raise ValueError("channel must be a non-empty virtual CAN channel name")
        for name in ("time_constant_s", "feedback_rate_hz", "status_rate_hz"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if len(self.initial_joints_mdeg) != 6:
            raise ValueError(
                f"initial_joints_mdeg must have 6 values, got {self.initial_joints_mdeg!r}"
            )


class FakePiperArm:
    """A first-order Piper follower (or scripted leader) on a virtual CAN channel.

    Use as a context manager or call ``start()`` / ``stop()``.
    """

    def __init__(self, config: FakePiperConfig, leader_script: LeaderScript | None = None):
        self.config = config
        self._script = leader_script or default_leader_script
        self._lock = threading.Lock()
        self._frames: list[tuple[int, bytes]] = []
        self._pos = np.array(config.initial_joints_mdeg, dtype=np.float64)
        self._target = self._pos.copy()
        self._grip = float(config.initial_gripper_um)
        self._grip_target = self._grip
        self._enabled = [False] * 7
        self._estopped = False
        self._ctrl_mode = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bus: can.BusABC | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakePiperArm:
        """Open the virtual bus and start the arm thread (idempotent)."""
        if self._thread is None:
            self._bus = can.Bus(interface="virtual", channel=self.config.channel)
            self._thread = threading.Thread(target=self._run, name="fake_piper", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close the bus."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        if self._bus is not None:
            self._bus.shutdown()
            self._bus = None

    def __enter__(self) -> FakePiperArm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- inspection (any thread) -------------------------------------------------------------
    def frames_seen(self, arbitration_id: int | None = None) -> list[tuple[int, bytes]]:
        """Frames received so far as ``(id, data)``, optionally only those with one id."""
        with self._lock:
            return [f for f in self._frames if arbitration_id is None or f[0] == arbitration_id]

    def clear_frames(self) -> None:
        """Forget the frames received so far."""
        with self._lock:
            self._frames.clear()

    def state(self) -> dict:
        """Snapshot: joints / targets (0.001 deg), gripper (0.001 mm), enabled, estopped."""
        with self._lock:
            return {
                "joints_mdeg": self._pos.copy(),
                "target_mdeg": self._target.copy(),
                "gripper_um": self._grip,
                "gripper_target_um": self._grip_target,
                "enabled": all(self._enabled[:6]),
                "estopped": self._estopped,
                "ctrl_mode": self._ctrl_mode,
            }

    # -- arm thread --------------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        period = 1.0 / cfg.feedback_rate_hz
        status_period = 1.0 / cfg.status_rate_hz
        t0 = last = time.monotonic()
        next_tick, next_status = t0, t0
        while not self._stop.is_set():
            self._drain()
            now = time.monotonic()
            if cfg.leader:
                self._emit_leader(now - t0)
            else:
                self._integrate(now - last)
                self._emit_feedback()
            last = now
            if now >= next_status:
                self._emit_status()
                next_status = now + status_period
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -period:  # fell behind (loaded machine): do not burst to catch up
                next_tick = time.monotonic()
            elif delay > 0:
                self._stop.wait(delay)

    def _drain(self) -> None:
        assert self._bus is not None
        while (msg := self._bus.recv(timeout=0)) is not None:
            self._handle(msg.arbitration_id, bytes(msg.data))

    def _handle(self, can_id: int, data: bytes) -> None:
        with self._lock:
            if len(self._frames) >= FRAME_LOG_MAX:
                del self._frames[: FRAME_LOG_MAX // 10]
            self._frames.append((can_id, data))
            if can_id in ID_JOINT_CTRL:
                i = 2 * ID_JOINT_CTRL.index(can_id)
                self._target[i : i + 2] = struct.unpack(">ii", data[:8])
            elif can_id == ID_GRIPPER_CTRL:
                self._grip_target = float(struct.unpack(">i", data[:4])[0])
            elif can_id == ID_MOTION_CTRL_1 and data[0] in (ESTOP, RESUME):
                self._estopped = data[0] == ESTOP
            elif can_id == ID_MOTION_CTRL_2:
                self._ctrl_mode = data[0]
            elif can_id == ID_MOTOR_ENABLE and data[1] in (ENABLE_FLAG, DISABLE_FLAG):
                motors = range(7) if data[0] in (7, 0xFF) else [data[0] - 1]
                for m in motors:
                    if 0 <= m < 7:
                        self._enabled[m] = data[1] == ENABLE_FLAG

    def _integrate(self, dt: float) -> None:
        alpha = 1.0 - math.exp(-max(dt, 0.0) / self.config.time_constant_s)
        with self._lock:
            if all(self._enabled[:6]) and not self._estopped:
                self._pos += (self._target - self._pos) * alpha
            if self._enabled[6] and not self._estopped:
                self._grip += (self._grip_target - self._grip) * alpha

    def _send(self, can_id: int, data: bytes) -> None:
        assert self._bus is not None
        self._bus.send(can.Message(arbitration_id=can_id, data=data, is_extended_id=False))

    def _emit_feedback(self) -> None:
        with self._lock:
            joints = np.round(self._pos).astype(np.int64)
            grip = int(round(self._grip))
            grip_status = GRIPPER_ENABLED_BIT if self._enabled[6] else 0
        for k, can_id in enumerate(ID_JOINT_FEEDBACK):
            self._send(can_id, struct.pack(">ii", joints[2 * k], joints[2 * k + 1]))
        self._send(ID_GRIPPER_FEEDBACK, struct.pack(">ihBB", grip, 0, grip_status, 0))

    def _emit_leader(self, t_s: float) -> None:
        joints, grip = self._script(t_s)
        joints = np.round(np.asarray(joints)).astype(np.int64)
        for k, can_id in enumerate(ID_JOINT_CTRL):
            self._send(can_id, struct.pack(">ii", joints[2 * k], joints[2 * k + 1]))
        self._send(ID_GRIPPER_CTRL, struct.pack(">iHBB", int(round(grip)), 1000, 0x01, 0))

    def _emit_status(self) -> None:
        with self._lock:
            enabled = list(self._enabled)
            status = ARM_STATUS_ESTOP if self._estopped else ARM_STATUS_NORMAL
            mode = self._ctrl_mode
        # 0x2A1: ctrl_mode, arm_status, mode_feed, teach_status, motion_status, traj_num, err u16
        self._send(ID_ARM_STATUS, bytes([mode, status, 0x01, 0, 0, 0, 0, 0]))
        for k, can_id in enumerate(ID_LOW_SPD_FEEDBACK):
            foc = DRIVER_ENABLED_BIT if enabled[k] else 0
            # voltage 24.0 V (0.1 V), driver temp 30 C, motor temp 30 C, foc status, bus current
            self._send(can_id, struct.pack(">HhbBH", 240, 30, 30, foc, 0))
