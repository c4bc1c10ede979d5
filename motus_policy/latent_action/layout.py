"""Where latent actions live beside an episode, and which episodes have them.

Layout (docs/data-format.md, "Latent actions"; the official stage-2 loader's folder name,
docs/motus.md §4.4): in a task folder, ``latent_action_dim14/<i>.pt`` holds a float32 tensor
[T-1, 14]: row t is the latent action of the frame pair (t, t+1) of ``videos/<i>.mp4`` (T frames).
Each file is written whole under a temporary name and renamed into place
(:func:`motus_recorder.writers.atomic.replace_file`), so a file with the final name is complete;
temporary files are hidden (``.<name>.<pid>.tmp``) and never match ``<digits>.pt``.

A *video episode* needs only ``videos/<i>.mp4``: episodes without ``qpos/`` (unlabeled video,
other robots, human video) are labeled and trained on like recorded ones. A *latent episode*
(what stage 2 trains on) is a video episode with its latent actions and an instruction text
(per-episode or shared, as :class:`motus_recorder.dataset.TaskFolder` finds it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from motus_recorder.dataset import EpisodeFileError, TaskFolder, first_nonfinite

LATENT_DIR = "latent_action_dim14"
LATENT_DIM = 14  # paper §4.2: 14-D latent actions


def video_task_folders(root: str | os.PathLike[str]) -> list[Path]:
    """Folders under ``root`` (itself included) holding ``videos/``; sorted, hidden skipped."""
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if "videos" in dirnames:
            out.append(Path(dirpath))
    return out


def video_episodes(roots: Iterable[str | os.PathLike[str]]) -> list[tuple[Path, int]]:
    """``(task folder, i)`` of every ``videos/<i>.mp4`` under ``roots`` (qpos not required).

    Order: roots as given, folders sorted, indices ascending.
    """
    out = []
    for root in roots:
        for task in video_task_folders(root):
            idx = sorted(int(p.stem) for p in (task / "videos").glob("*.mp4") if p.stem.isdigit())
            out += [(task, i) for i in idx]
    return out


def latent_path(task: str | os.PathLike[str], i: int) -> Path:
    """``<task>/latent_action_dim14/<i>.pt``."""
    return Path(task) / LATENT_DIR / f"{i}.pt"


def latent_episodes(roots: Iterable[str | os.PathLike[str]]) -> list[tuple[TaskFolder, int]]:
    """Video episodes that have latent actions and an instruction text (stage-2 training)."""
    out = []
    for task, i in video_episodes(roots):
        tf = TaskFolder(task)
        if latent_path(task, i).is_file() and tf.instruction_path(i) is not None:
            out.append((tf, i))
    return out


def read_latent_actions(path: str | os.PathLike[str]) -> np.ndarray:
    """Load one latent-action file as float32 [T-1, 14].

    Accepts a tensor or, as the official loader does, a dict with key ``latent_action``
    (torch is imported here, on first use).

    Raises:
        EpisodeFileError: unreadable, not [N >= 1, 14], or a NaN/inf (row and dim named).
    """
    import torch

    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise EpisodeFileError(path, f"cannot read the .pt file: {exc}") from exc
    if isinstance(obj, dict):
        obj = obj.get("latent_action")
    if not isinstance(obj, torch.Tensor):
        raise EpisodeFileError(
            path, f"expected a [T-1, {LATENT_DIM}] tensor, got {type(obj).__name__}"
        )
    arr = obj.detach().float().numpy()
    if arr.ndim != 2 or arr.shape[1] != LATENT_DIM or arr.shape[0] < 1:
        raise EpisodeFileError(path, f"expected a [T-1, {LATENT_DIM}] tensor, got {arr.shape}")
    bad = first_nonfinite(arr)
    if bad is not None:
        raise EpisodeFileError(path, f"non-finite value at row {bad[0]}, dim {bad[1]}")
    return arr.astype(np.float32)
