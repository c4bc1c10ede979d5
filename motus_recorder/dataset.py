"""Read and validate Motus real-robot datasets (docs/motus.md §4.2); numpy only at import.

A *task folder* is any folder under the root that holds ``videos/``, ``qpos/`` and
``instructions/`` (found recursively, as upstream). Episode ``i`` is complete when
``qpos/<i>.pt`` exists (our writer renames it last), together with ``videos/<i>.mp4`` and an
instruction: per-episode ``instructions/<i>.txt`` or one shared ``instructions/<name>.txt``.
The embedding is ``instructions/<i>.pt``, the shared ``<name>.pt``, or ``umt5_wan/<i>.pt``.

``.pt`` files are read through :mod:`motus_recorder.writers.torch_io` (torch imported lazily);
videos are decoded with PyAV.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from motus_recorder import schema
from motus_recorder.writers import torch_io

TASK_DIRS = ("videos", "qpos", "instructions")


def find_tasks(root: str | os.PathLike[str]) -> list[Path]:
    """Task folders under ``root`` (``root`` itself included), sorted; hidden folders skipped."""
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if all(d in dirnames for d in TASK_DIRS):
            out.append(Path(dirpath))
    return out


def decode_video(path: str | os.PathLike[str], indices: list[int] | None = None) -> np.ndarray:
    """Decode an MP4 to uint8 [N, H, W, 3] RGB: all frames, or those at ``indices`` (any order).

    With ``indices``, the decoder seeks to the keyframe before the smallest index (our videos
    have a keyframe every second, docs/platform.md §8) and stops after the largest, so sampling a
    clip from a long episode does not decode it from the start. Frame k is the one whose
    timestamp is k / fps (constant frame rate, as written by the recorder and upstream).

    Raises:
        ValueError: an index is beyond the last frame.
    """
    if indices is not None and len(indices) == 0:
        raise ValueError("indices: expected at least one frame index")
    want = None if indices is None else sorted({int(i) for i in indices})
    frames: dict[int, np.ndarray] = {}
    with av.open(os.fspath(path)) as c:
        stream = c.streams.video[0]
        tb, rate = stream.time_base, stream.average_rate
        start = stream.start_time or 0
        seekable = want is not None and tb is not None and rate and want[0] > 0
        if seekable:
            c.seek(start + int(want[0] / rate / tb), stream=stream, backward=True)
        k = -1
        for f in c.decode(stream):
            k = (
                round(float((f.pts - start) * tb * rate))
                if seekable and f.pts is not None
                else k + 1
            )
            if want is None or k in want:
                frames[k] = f.to_ndarray(format="rgb24")
            if want is not None and k >= want[-1]:
                break
    if indices is None:
        return np.stack([frames[k] for k in sorted(frames)])
    missing = [i for i in want if i not in frames]
    if missing:
        raise ValueError(f"{path}: has no frame {missing[0]} (last decoded index {k})")
    return np.stack([frames[int(i)] for i in indices])


def count_frames(path: str | os.PathLike[str]) -> int:
    """Number of decodable frames (decodes the stream; container metadata can be wrong)."""
    with av.open(os.fspath(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@dataclass
class Episode:
    """One episode. ``qpos`` float32 [T, 14]; ``embedding`` [L, 4096] float32 (or a list)."""

    task_dir: Path
    index: int
    qpos: np.ndarray
    instruction: str
    video_path: Path
    embedding: np.ndarray | list[np.ndarray] | None
    meta: dict[str, Any] | None

    def frames(self, indices: list[int] | None = None) -> np.ndarray:
        """Decoded T-layout frames, uint8 [N, H, W, 3]."""
        return decode_video(self.video_path, indices)


class TaskFolder:
    """One task folder (see module docstring)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"TaskFolder({str(self.path)!r})"

    def _shared(self, suffix: str) -> Path | None:
        files = [
            p for p in (self.path / "instructions").glob(f"*{suffix}") if not p.stem.isdigit()
        ]
        return files[0] if len(files) == 1 else None

    def instruction_path(self, i: int) -> Path | None:
        """The instruction text of episode ``i`` (per-episode, else shared), or None."""
        p = self.path / "instructions" / f"{i}.txt"
        return p if p.is_file() else self._shared(".txt")

    def embedding_path(self, i: int) -> Path | None:
        """The UMT5 embedding of episode ``i`` if any (per-episode, shared, ``umt5_wan/``)."""
        for p in (self.path / "instructions" / f"{i}.pt", self.path / "umt5_wan" / f"{i}.pt"):
            if p.is_file():
                return p
        return self._shared(".pt")

    def episode_indices(self) -> list[int]:
        """Indices of complete episodes: qpos, video and instruction text present."""
        out = []
        for p in (self.path / "qpos").glob("*.pt"):
            if not p.stem.isdigit():
                continue
            i = int(p.stem)
            if (self.path / "videos" / f"{i}.mp4").is_file() and self.instruction_path(i):
                out.append(i)
        return sorted(out)

    def read_episode(self, i: int, embedding: bool = True) -> Episode:
        """Load episode ``i`` (video not decoded). Raises FileNotFoundError / ValueError."""
        qpath = self.path / "qpos" / f"{i}.pt"
        q = torch_io.load_tensor(qpath)
        if not isinstance(q, np.ndarray) or q.ndim != 2 or q.shape[1] != schema.STATE_DIM:
            shape = getattr(q, "shape", type(q).__name__)
            raise ValueError(f"{qpath}: expected a [T, {schema.STATE_DIM}] tensor, got {shape}")
        txt = self.instruction_path(i)
        if txt is None:
            raise FileNotFoundError(f"{self.path}/instructions: no {i}.txt nor a shared .txt")
        meta_path = self.path / "meta" / f"{i}.json"
        emb_path = self.embedding_path(i) if embedding else None
        return Episode(
            task_dir=self.path,
            index=i,
            qpos=q.astype(np.float32),
            instruction=txt.read_text(encoding="utf-8").strip(),
            video_path=self.path / "videos" / f"{i}.mp4",
            embedding=torch_io.load_tensor(emb_path) if emb_path else None,
            meta=json.loads(meta_path.read_text()) if meta_path.is_file() else None,
        )


def complete_episodes(roots) -> list[tuple[TaskFolder, int]]:
    """``(task folder, episode index)`` of every complete episode under ``roots``.

    Order: roots as given, task folders as :func:`find_tasks` sorts them, indices ascending.
    """
    return [(TaskFolder(t), i) for root in roots for t in find_tasks(root)
            for i in TaskFolder(t).episode_indices()]  # fmt: skip


def _check_episode(task: TaskFolder, i: int, decode: bool) -> list[str]:
    problems = []
    qpath = task.path / "qpos" / f"{i}.pt"
    try:
        ep = task.read_episode(i)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a report line
        return [f"{qpath}: cannot read episode: {exc}"]
    n_rows = ep.qpos.shape[0]
    if n_rows == 0:
        problems.append(f"{qpath}: empty (0 rows)")
    if not np.isfinite(ep.qpos).all():
        r, c = np.argwhere(~np.isfinite(ep.qpos))[0]
        problems.append(f"{qpath}: non-finite value at row {r}, dim {c}")
    if ep.embedding is not None:
        embs = ep.embedding if isinstance(ep.embedding, list) else [ep.embedding]
        for e in embs:
            if e.ndim != 2 or e.shape[1] != 4096:
                problems.append(f"{task.embedding_path(i)}: expected [L, 4096], got {e.shape}")
    if ep.meta is not None and ep.meta.get("frames") not in (None, n_rows):
        problems.append(
            f"{task.path}/meta/{i}.json: frames = {ep.meta['frames']} but qpos has {n_rows} rows"
        )
    if decode:
        try:
            n = count_frames(ep.video_path)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{ep.video_path}: cannot decode: {exc}")
        else:
            if n != n_rows:
                problems.append(f"{ep.video_path}: {n} video frames but qpos has {n_rows} rows")
    return problems


def validate(root: str | os.PathLike[str], decode: bool = True) -> tuple[int, list[str]]:
    """Check every task folder under ``root``.

    Returns:
        (number of complete episodes, problems); each problem is one line starting with the
        offending file's path. Problems: no task folder, unreadable or non-[T, 14] qpos,
        non-finite values, video frame count != qpos rows, undecodable video, parts without a
        qpos file (an incomplete episode), leftovers of interrupted saves, a bad ``stat.json``.
    """
    root = Path(root)
    if not root.is_dir():
        return 0, [f"{root}: not a folder"]
    tasks = find_tasks(root)
    problems: list[str] = []
    if not tasks:
        problems.append(f"{root}: no task folder (one with {', '.join(TASK_DIRS)}/) found")
    n = 0
    for t in tasks:
        task = TaskFolder(t)
        idx = task.episode_indices()
        n += len(idx)
        for i in idx:
            problems.extend(_check_episode(task, i, decode))
        for v in (t / "videos").glob("*.mp4"):
            if v.stem.isdigit() and int(v.stem) not in idx:
                problems.append(f"{v}: no matching qpos/{v.stem}.pt (incomplete episode)")
        problems.extend(
            f"{p}: episode being written, or leftover of an interrupted save (the recorder "
            "cleans it on its next start)"
            for p in t.glob(".tmp-*")
        )
    stat = root / "stat.json"
    if stat.is_file():
        from motus_recorder.stats import read_stat_file

        try:
            read_stat_file(stat)
        except (ValueError, json.JSONDecodeError) as exc:
            problems.append(f"{stat}: {exc}")
    return n, problems
