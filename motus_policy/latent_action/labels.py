"""Label episodes with latent actions: frames -> flow images -> VAE mean -> ``.pt`` beside them.

For every video episode under the roots (qpos not needed; :mod:`layout`), the frames of
``videos/<i>.mp4`` are decoded, the flow of each consecutive pair is rendered as an image
(:class:`~motus_policy.latent_action.flow.FlowImages`, with the flow settings saved in the VAE
folder) and encoded; the latent action of a pair is the posterior mean (no sampling, so labels
are deterministic). The result, float32 [T-1, 14], is written to
``latent_action_dim14/<i>.pt`` crash-safely: the tensor goes to a hidden temporary sibling that
is fsynced and renamed into place (:func:`motus_recorder.writers.atomic.replace_file`), so a
killed run leaves either no file or a complete one, never a partial file the loader would read.
One writer per task folder: ``latent_action_dim14/.writer.lock`` (flock) is held while writing,
and temporary files a killed run left behind are removed under it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from motus_policy.latent_action.flow import FlowConfig, FlowImages
from motus_policy.latent_action.layout import LATENT_DIR, latent_path, video_episodes
from motus_policy.latent_action.vae import LatentActionVAE
from motus_recorder.dataset import decode_video
from motus_recorder.writers.atomic import remove_stale_tmp, replace_file
from motus_recorder.writers.torch_io import write_tensor

log = logging.getLogger(__name__)

LOCK_FILE = ".writer.lock"


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) flow images -> float32 [N, 3, S, S] in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0)


class LatentActionLabeler:
    """A trained latent-action VAE folder as a function frames -> latent actions.

    Args:
        vae_dir: folder written by ``python -m motus_policy.cli.train_latent_action``.
        device: torch device for the VAE.
        batch_size: flow images per VAE call.

    Raises:
        FileNotFoundError: ``vae_dir`` is not such a folder.
    """

    def __init__(self, vae_dir: str | os.PathLike[str], device: str = "cpu", batch_size: int = 64):
        self.model, extra = LatentActionVAE.load(vae_dir)
        self.device = torch.device(device)
        self.model.to(self.device)
        self.flow = FlowImages(FlowConfig(**{**extra["flow"], "device": str(self.device)}))
        self.batch_size = batch_size

    @torch.no_grad()
    def encode_images(self, images: np.ndarray) -> np.ndarray:
        """uint8 flow images (N, S, S, 3) -> latent-action means float32 (N, 14)."""
        out = []
        for k in range(0, len(images), self.batch_size):
            x = images_to_tensor(images[k : k + self.batch_size]).to(self.device)
            out.append(self.model.encode(x)[0].float().cpu().numpy())
        return np.concatenate(out)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames (T, H, W, 3), T >= 2 -> latent actions float32 (T-1, 14)."""
        return self.encode_images(self.flow.images(frames))


@dataclass
class LabelSummary:
    """What :func:`label_dataset` did: files written, episodes skipped (already labeled)."""

    written: list[Path] = field(default_factory=list)
    skipped: int = 0
    too_short: list[str] = field(default_factory=list)


def _lock(task: Path):
    folder = task / LATENT_DIR
    folder.mkdir(exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RuntimeError(
            f"{folder}: another label-latent run holds {LOCK_FILE}; wait for it to finish"
        ) from None
    return fd


def label_dataset(
    roots: Iterable[str | os.PathLike[str]],
    labeler: Callable[[np.ndarray], np.ndarray],
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> LabelSummary:
    """Write ``latent_action_dim14/<i>.pt`` for every video episode under ``roots``.

    Args:
        roots: dataset roots (folders with ``videos/`` found recursively).
        labeler: uint8 frames (T, H, W, 3) -> float32 (T-1, 14), e.g.
            :class:`LatentActionLabeler`.
        force: relabel episodes that already have a file.
        progress: called with one line per written file.

    Returns:
        :class:`LabelSummary`.

    Raises:
        ValueError: no video episode under ``roots``, or the labeler returned another shape.
        RuntimeError: another run is writing in a task folder.
        OSError: a write failed (the file is left as it was).
    """
    roots = list(roots)
    episodes = video_episodes(roots)
    if not episodes:
        raise ValueError(f"no videos/<i>.mp4 under {[str(r) for r in roots]}")
    summary = LabelSummary()
    by_task: dict[Path, list[int]] = {}
    for task, i in episodes:
        by_task.setdefault(task, []).append(i)
    for task, indices in by_task.items():
        fd = _lock(task)
        try:
            for p in remove_stale_tmp(task / LATENT_DIR):
                log.warning("removed a temporary file of an interrupted run: %s", p)
            for i in indices:
                dest = latent_path(task, i)
                if dest.is_file() and not force:
                    summary.skipped += 1
                    continue
                frames = decode_video(task / "videos" / f"{i}.mp4")
                if len(frames) < 2:
                    summary.too_short.append(f"{task}:{i} ({len(frames)} frame)")
                    continue
                actions = np.asarray(labeler(frames), np.float32)
                if actions.shape != (len(frames) - 1, 14):
                    raise ValueError(
                        f"labeler: expected ({len(frames) - 1}, 14) for {len(frames)} frames, "
                        f"got {actions.shape}"
                    )
                replace_file(dest, lambda f, a=actions: write_tensor(f, a))
                summary.written.append(dest)
                if progress is not None:
                    progress(f"wrote {dest} ({len(actions)} latent actions)")
        finally:
            os.close(fd)  # closing the descriptor releases the flock
    return summary
