"""Synthetic recorder test data: a small-camera profile and deterministic frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from motus_recorder.episode import Frame
from motus_recorder.profile import RobotProfile, profile_dir

CAM_H, CAM_W = 48, 64


def write_small_profile(path: Path, rate_hz: float = 25.0) -> Path:
    """aloha_sim with 64x48 cameras (test-sized images), written to ``path``."""
    data = yaml.safe_load((profile_dir() / "aloha_sim.yaml").read_text())
    data["name"] = "aloha_sim_small"
    data["record_rate_hz"] = rate_hz
    for cam in data["cameras"]:
        cam["height"], cam["width"], cam["rate_hz"] = CAM_H, CAM_W, rate_hz
    path.write_text(yaml.safe_dump(data))
    return path


def qpos_at(k: int) -> np.ndarray:
    """A smooth in-limit 14-D trajectory point for step k."""
    q = 0.3 * np.sin(0.1 * k + np.arange(14) * 0.5)
    q[[6, 13]] = 0.5 + 0.4 * np.sin(0.05 * k + np.array([0.0, 1.0]))
    return q.astype(np.float32)


def image_at(k: int, cam: int) -> np.ndarray:
    """A smooth gradient image whose brightness encodes step k and camera."""
    y, x = np.mgrid[0:CAM_H, 0:CAM_W]
    img = np.empty((CAM_H, CAM_W, 3), np.uint8)
    img[..., 0] = (x * 3 + 5 * k) % 256
    img[..., 1] = (y * 4 + 60 * cam) % 256
    img[..., 2] = 40 + 40 * cam
    return img


def frame_at(profile: RobotProfile, k: int, t0_ns: int = 1_000_000_000) -> Frame:
    period = round(1e9 / profile.record_rate_hz)
    images = {n: image_at(k, i) for i, n in enumerate(profile.camera_names)}
    return Frame(t_ns=t0_ns + k * period, images=images, qpos=qpos_at(k))
