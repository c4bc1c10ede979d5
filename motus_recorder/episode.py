"""One recorded time step (:class:`Frame`), its validation, and the per-episode buffer.

Every frame is checked against the robot profile *before* it is buffered: the three camera images
by name, each uint8 (H, W, 3) of the profile's size; the 14-D joint vector finite and inside the
profile's position limits; the timestamp increasing. A bad frame raises :class:`FrameError` naming
what was expected and what came; the recorder then marks the episode for discard, so a corrupt
frame never reaches the disk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from motus_recorder import schema
from motus_recorder.composite import compose_t_layout
from motus_recorder.profile import RobotProfile, check_positions


class FrameError(ValueError):
    """A frame does not match the profile; the message names the field, expected and found."""


@dataclass(frozen=True)
class Frame:
    """One synchronised time step.

    Attributes:
        t_ns: the step's time (the recording clock), int ns.
        images: camera name -> uint8 (H, W, 3) RGB, for the profile's three cameras.
        qpos: (14,) joint vector in the 14-D layout (rad; grippers in the profile's unit): the
            commanded joint positions (``qpos_source: command``, the official format's
            ``joint_action``) or the measured joint state (``qpos_source: state``).
        stamps_ns: per-stream message stamps used for this step (metadata only).
        state: (14,) measured joint state, same layout, or None. Recorded beside commanded
            ``qpos`` so tracking error and grasp closure stay visible in the dataset.
    """

    t_ns: int
    images: Mapping[str, np.ndarray]
    qpos: np.ndarray
    stamps_ns: Mapping[str, int] = field(default_factory=dict)
    state: np.ndarray | None = None


class FrameValidator:
    """Checks frames against a profile's cameras and joint limits.

    Args:
        profile: the robot profile (camera sizes, joint limits).
        limit_margin: tolerance added to the position limits (same units), for sensor noise at
            the joint stops.
    """

    def __init__(self, profile: RobotProfile, limit_margin: float = 1e-3):
        self.profile = profile
        self.limit_margin = float(limit_margin)
        self._lo = profile.position_min - self.limit_margin
        self._hi = profile.position_max + self.limit_margin

    def check(self, frame: Frame) -> np.ndarray:
        """Validate ``frame``; return its qpos as float32 (14,). Raises :class:`FrameError`."""
        names = set(frame.images)
        want = set(self.profile.camera_names)
        if names != want:
            raise FrameError(f"images: expected cameras {sorted(want)}, got {sorted(names)}")
        for cam in self.profile.cameras:
            img = frame.images[cam.name]
            shape = (cam.height, cam.width, 3)
            if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.shape != shape:
                got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img)
                raise FrameError(f"{cam.name}: expected uint8 {shape}, got {got}")
        return self.check_joints(frame.qpos, "qpos")

    def check_joints(self, values: np.ndarray, what: str) -> np.ndarray:
        """Validate one 14-D joint vector (shape, finite, limits); return it as float32.

        Raises:
            FrameError: names ``what``, the joint, the value and the limits (widened by
                ``limit_margin``).
        """
        q = check_positions(
            values, self.profile.joint_names, self._lo, self._hi, what,
            error=FrameError, show_index=True, limits_name="the profile limits (+ margin)",
        )  # fmt: skip
        return q.astype(np.float32)


class EpisodeBuffer:
    """The non-video part of an episode in memory: qpos (+ state) rows, times, stamps.

    ``add`` validates the frame and returns the T-layout composite for the video encoder.
    Threads: used by one thread at a time (the writer's caller).
    """

    def __init__(self, validator: FrameValidator):
        self.validator = validator
        self._qpos: list[np.ndarray] = []
        self._state: list[np.ndarray] = []
        self.t_ns: list[int] = []
        self.stamps_ns: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._qpos)

    def add(self, frame: Frame) -> np.ndarray:
        """Validate and buffer ``frame``; return its uint8 composite (H + H/2, W, 3).

        Raises:
            FrameError: invalid frame, a time not after the previous frame's, or a frame with
                (without) ``state`` after frames without (with) it.
        """
        q = self.validator.check(frame)
        if self.t_ns and frame.t_ns <= self.t_ns[-1]:
            raise FrameError(
                f"t_ns: expected > previous {self.t_ns[-1]}, got {frame.t_ns} (clock jump?)"
            )
        has_state = frame.state is not None
        if self._qpos and has_state != bool(self._state):
            raise FrameError(
                f"state: expected {'a' if self._state else 'no'} measured state like the "
                f"previous frames, got {'one' if has_state else 'none'}"
            )
        st = self.validator.check_joints(frame.state, "state") if has_state else None
        head, left, right = (frame.images[n] for n in self.validator.profile.camera_names)
        composite = compose_t_layout(head, left, right)
        self._qpos.append(q)
        if st is not None:
            self._state.append(st)
        self.t_ns.append(int(frame.t_ns))
        for name, st in frame.stamps_ns.items():
            self.stamps_ns.setdefault(name, []).append(int(st))
        return composite

    @property
    def qpos(self) -> np.ndarray:
        """float32 [T, 14]."""
        if not self._qpos:
            return np.zeros((0, schema.STATE_DIM), dtype=np.float32)
        return np.stack(self._qpos).astype(np.float32)

    @property
    def state(self) -> np.ndarray | None:
        """float32 [T, 14] measured joint state, or None when frames carried none."""
        if not self._state:
            return None
        return np.stack(self._state).astype(np.float32)
