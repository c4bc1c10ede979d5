"""The data contract between robot I/O, the policy runtime and the model (docs/architecture.md §4).

Dimension letters: ``A`` action chunk length, ``F`` predicted video frames, ``H, W`` image size,
``D = 14`` joint vector (layout in :mod:`motus_recorder.schema`).

* Times are ``int`` nanoseconds (ROS time; sim time in simulation). ``rclpy.time.Time`` is
  converted at the ROS edge only.
* Images are ``uint8 (H, W, 3)`` RGB at the boundary.
* Joint vectors are ``float32 (14,)``: joints in rad, grippers in the profile's unit.
* Actions are absolute joint targets for the next ``A`` action periods; action ``k`` (0-based)
  is due at ``t0_ns + (k + 1) * period_ns``: the *next* targets after the observation, as in
  the official dataset indices ``c + 1 .. c + A`` (docs/motus.md §3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from motus_recorder import schema

MODES = ("joint", "vla", "vgm", "wm", "idm")
"""Motus inference modes (paper §4.1, Algorithms 2-6): ``joint`` (the official deployment mode:
video and actions denoised together), ``vla`` (actions only), ``vgm`` (video only), ``wm`` (world
model: video given actions), ``idm`` (inverse dynamics: actions given future frames)."""

FRAME_MODES = ("joint", "wm", "vgm")
"""Modes that predict ("imagine") future frames."""

ACTION_MODES = ("joint", "vla", "idm")
"""Modes whose actions the runtime may execute."""


def check_mode(mode: str) -> str:
    """Return ``mode`` unchanged.

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES` (the message lists them).
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
    return mode


@dataclass(frozen=True)
class Observation:
    """One synchronised observation.

    Attributes:
        images: camera name -> uint8 (H, W, 3) RGB; names from :data:`schema.CAMERA_NAMES`.
        state: float32 (14,) current joint vector.
        stamp_ns: observation time (the joint state's stamp), int ns.
        image_stamps_ns: camera name -> stamp of that frame, int ns.
        instruction: natural-language task instruction.
    """

    images: Mapping[str, np.ndarray]
    state: np.ndarray
    stamp_ns: int
    image_stamps_ns: Mapping[str, int] = field(default_factory=dict)
    instruction: str = ""

    def __post_init__(self) -> None:
        state = np.asarray(self.state)
        if state.shape != (schema.STATE_DIM,):
            raise ValueError(f"Observation.state: expected shape (14,), got {state.shape}")
        if not np.all(np.isfinite(state)):
            raise ValueError(f"Observation.state: expected finite values, got {state}")
        for name, img in self.images.items():
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(
                    f"Observation.images[{name!r}]: expected uint8 (H, W, 3), "
                    f"got {img.dtype} {img.shape}"
                )


@dataclass(frozen=True)
class ActionChunk:
    """A chunk of absolute joint targets with their due times.

    Attributes:
        actions: float32 (A, 14) joint targets (rad / gripper unit), de-normalised.
        t0_ns: time of the observation the chunk was predicted from, int ns.
        period_ns: spacing between actions, int ns (1e9 / action rate).
        frames: optional uint8 (F, H, W, 3) predicted ("imagined") frames, in joint/WM/VGM modes.
        frame_stamps_ns: optional int ns due time of each predicted frame, length F.
        latency_ns: measured observation-to-chunk inference time, int ns (0 if unknown).
    """

    actions: np.ndarray
    t0_ns: int
    period_ns: int
    frames: np.ndarray | None = None
    frame_stamps_ns: tuple[int, ...] | None = None
    latency_ns: int = 0

    def __post_init__(self) -> None:
        a = np.asarray(self.actions)
        if a.ndim != 2 or a.shape[1] != schema.STATE_DIM:
            raise ValueError(f"ActionChunk.actions: expected (A, 14), got {a.shape}")
        if self.period_ns <= 0:
            raise ValueError(f"ActionChunk.period_ns: expected > 0, got {self.period_ns}")

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def stamps_ns(self) -> np.ndarray:
        """int64 (A,) due time of each action: ``t0_ns + (k + 1) * period_ns``."""
        k = np.arange(1, len(self) + 1, dtype=np.int64)
        return np.int64(self.t0_ns) + k * np.int64(self.period_ns)
