"""A tiny Motus-format dataset written by the real recorder writer (for training tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from motus_recorder.profile import load_profile
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from tests.fakes.recordings import frame_at, write_small_profile

EPISODE_FRAMES = (60, 64, 56)  # tiny preset: A*g = 48, so c ranges over 0..T-49
INSTRUCTIONS = ("pick up the red cube", "put the cube in the bowl", "open the drawer")


def write_tiny_dataset(root: Path, with_embeddings: bool = False) -> Path:
    """Three episodes of 64x48 cameras at 25 Hz (composites 72x64, H.264 mp4, qpos, stat.json).

    ``with_embeddings`` also writes a deterministic [L, 4096] ``instructions/<i>.pt``.
    """
    profile = load_profile(write_small_profile(root.parent / f"{root.name}_profile.yaml"))
    embed = None
    if with_embeddings:

        def embed(text: str) -> np.ndarray:
            rng = np.random.default_rng(len(text))
            return rng.standard_normal((len(text.split()) + 1, 4096)).astype(np.float32)

    writer = MotusFormatWriter(WriterConfig(root=str(root), task="tiny_task"), profile, embed)
    try:
        for ep, n in enumerate(EPISODE_FRAMES):
            writer.start_episode(INSTRUCTIONS[ep])
            for k in range(n):
                writer.add_frame(frame_at(profile, k + 7 * ep))
            writer.save_episode()
    finally:
        writer.close()
    return root
