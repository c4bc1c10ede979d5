"""Crash-safe commit of one episode's files (the protocol of ``motus_format``).

Files are written and fsynced in ``<variant>/.tmp-<i>-<pid>/``; :func:`commit` then writes a
``COMMIT`` list of moves (atomically: written as ``COMMIT.part``, fsynced, renamed), renames
each file into place in list order (``qpos/<i>.pt`` last: its presence marks the episode
complete) and removes the tmp folder. :func:`recover` on the next start finishes the moves of a
tmp folder holding ``COMMIT`` (all data was on disk) and deletes any other tmp folder.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

_TMP_RE = re.compile(r"^\.tmp-(\d+)-(\d+)$")


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (new names, renames) to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text and fsync it. Raises OSError (e.g. ENOSPC)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def committed_indices(variant_dir: Path) -> list[int]:
    """Indices of complete episodes (those whose ``qpos/<i>.pt`` exists), sorted."""
    qdir = Path(variant_dir) / "qpos"
    if not qdir.is_dir():
        return []
    return sorted(int(p.stem) for p in qdir.glob("*.pt") if p.stem.isdigit())


def recover(variant_dir: Path) -> list[str]:
    """Finish or remove leftovers of interrupted saves; return one message per action."""
    msgs = []
    for tmp in sorted(Path(variant_dir).glob(".tmp-*")):
        if not _TMP_RE.match(tmp.name) or not tmp.is_dir():
            continue
        marker = tmp / "COMMIT"
        if marker.is_file():
            moves = json.loads(marker.read_text())
            for src, dst in moves:
                if (tmp / src).exists():
                    os.replace(tmp / src, Path(variant_dir) / dst)
            msgs.append(f"completed interrupted save {tmp.name} ({len(moves)} files)")
        else:
            msgs.append(f"removed incomplete episode {tmp.name}")
        shutil.rmtree(tmp, ignore_errors=True)
    # parts of an index beyond the last complete episode belong to no episode (only outside
    # interference makes them): set aside in .orphans/ so the next save cannot mix them in
    nxt = (committed_indices(variant_dir) or [-1])[-1] + 1
    for sub in ("videos", "instructions", "meta", "bags"):
        for p in (Path(variant_dir) / sub).glob("*"):
            if p.stem.isdigit() and int(p.stem) >= nxt:
                dest = Path(variant_dir) / ".orphans" / f"{sub}-{p.name}-{time.time_ns()}"
                dest.parent.mkdir(exist_ok=True)
                os.replace(p, dest)
                msgs.append(f"moved orphan {sub}/{p.name} (no qpos/{p.stem}.pt) to {dest}")
    for m in msgs:
        log.warning("%s: %s", variant_dir, m)
    return msgs


def commit(tmp: Path, dest: Path, moves: Sequence[Sequence[str]]) -> None:
    """Move ``tmp/src`` to ``dest/dst`` for each ``[src, dst]``, in order, after ``COMMIT``.

    Raises:
        OSError: writing ``COMMIT`` failed (nothing moved) or a rename failed (the rest is
            finished by :func:`recover`).
    """
    write_text(tmp / "COMMIT.part", json.dumps(moves))
    os.replace(tmp / "COMMIT.part", tmp / "COMMIT")  # atomic: COMMIT is whole or absent
    fsync_dir(tmp)
    for src, dst in moves:
        os.replace(tmp / src, dest / dst)
    for folder in {(dest / dst).parent for _, dst in moves}:
        fsync_dir(folder)
    shutil.rmtree(tmp)
