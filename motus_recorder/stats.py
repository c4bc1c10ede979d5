"""Dataset statistics in the upstream ``stat.json`` format.

Sources: docs/checkpoint-format.md §8, docs/motus.md §4.2.

``<root>/stat.json`` = ``{normalization_key: {"min": [14 floats], "max": [14 floats]}}``: the
per-dimension min and max over every complete episode under ``root`` recorded with that key. The
model normalises with ``(x - min) / (max - min)`` (a zero range replaced by 1).

Each episode's own min/max is in its ``meta/<i>.json``, so the file is recomputed from metadata
alone (no torch, no video decoding) and written atomically (tmp file, fsync, rename). Keys in an
existing file that no local episode uses (e.g. the upstream ``ac_one`` values) are kept.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np

STAT_FILE = "stat.json"


def collect_episode_ranges(root: str | os.PathLike[str]) -> dict[str, dict[str, list[float]]]:
    """Min/max per normalisation key over complete episodes' metadata under ``root``."""
    acc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for meta_path in sorted(Path(root).rglob("meta/*.json")):
        qpos = meta_path.parent.parent / "qpos" / f"{meta_path.stem}.pt"
        if not qpos.is_file():
            continue  # not a complete episode
        meta = json.loads(meta_path.read_text())
        key = meta.get("normalization_key")
        if not key or "qpos_min" not in meta:
            continue
        lo, hi = np.asarray(meta["qpos_min"]), np.asarray(meta["qpos_max"])
        if key in acc:
            lo, hi = np.minimum(acc[key][0], lo), np.maximum(acc[key][1], hi)
        acc[key] = (lo, hi)
    return {k: {"min": lo.tolist(), "max": hi.tolist()} for k, (lo, hi) in acc.items()}


def minmax(qpos_list: list[np.ndarray]) -> dict[str, list[float]]:
    """``{"min": [D], "max": [D]}`` over the rows of several [T, D] arrays."""
    allq = np.concatenate([np.asarray(q, dtype=np.float64) for q in qpos_list], axis=0)
    return {"min": allq.min(axis=0).tolist(), "max": allq.max(axis=0).tolist()}


def read_stat_file(path: str | os.PathLike[str]) -> dict[str, dict[str, list[float]]]:
    """Load a ``stat.json``; ValueError when an entry is not ``{"min": [..], "max": [..]}``."""
    data = json.loads(Path(path).read_text())
    for key, v in data.items():
        if not (isinstance(v, dict) and len(v.get("min", [])) == len(v.get("max", [])) > 0):
            raise ValueError(f"{path}: entry {key!r}: expected {{'min': [D], 'max': [D]}}")
    return data


def update_stat_file(root: str | os.PathLike[str]) -> dict[str, dict[str, list[float]]]:
    """Recompute ``<root>/stat.json`` from episode metadata and replace it atomically."""
    root = Path(root)
    path = root / STAT_FILE
    with open(root / ".stat.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_stat_file(path) if path.is_file() else {}
        data.update(collect_episode_ranges(root))
        tmp = root / f".{STAT_FILE}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return data
