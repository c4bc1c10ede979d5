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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_TMP_RE = re.compile(r"^\.tmp-(\d+)-(\d+)$")

COMPLETED = "completed interrupted save"
"""Start of the :func:`recover` message for a save it finished (the caller refreshes
``stat.json`` then)."""

TMP_FILE_DIRS = ("instructions", "meta")
"""Part folders where :func:`replace_file` leaves ``.<name>.<pid>.tmp`` files if killed."""


def tmp_name(path: Path) -> Path:
    """The temporary sibling :func:`replace_file` writes first: ``.<name>.<pid>.tmp``.

    Hidden and not ending in ``.pt`` / ``.txt`` / ``.json``, so neither our reader nor the
    official loader (which lists ``*.pt`` / ``*.txt``) can take it for a part of an episode.
    """
    return path.parent / f".{path.name}.{os.getpid()}.tmp"


def replace_file(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Replace ``path`` atomically (temporary sibling, fsync, rename, fsync of the folder).

    ``write`` fills the temporary sibling :func:`tmp_name`. A crash leaves the old file or the new
    one, never a mix (plus at worst a stale temporary file, removed by :func:`remove_stale_tmp`).

    Raises:
        OSError: writing failed (e.g. ENOSPC); ``path`` is unchanged and the temporary file gone.
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def remove_stale_tmp(folder: Path, name_glob: str = "*") -> list[Path]:
    """Delete ``.<name>.<pid>.tmp`` files left in ``folder`` by a killed writer.

    Only call this while holding the lock every writer of those files holds (the variant's
    ``.writer.lock``, or ``.stat.lock`` for ``stat.json``): then no temporary file is live.

    Returns:
        The paths removed.
    """
    gone = []
    for p in Path(folder).glob(f".{name_glob}.*.tmp"):
        if p.is_file() and p.name.rsplit(".", 2)[-2].isdigit():
            p.unlink(missing_ok=True)
            gone.append(p)
    return gone


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
    """Finish or remove leftovers of interrupted saves; return one message per action.

    A tmp folder holding ``COMMIT`` is finished (message starting with :data:`COMPLETED`), any
    other is deleted, stale ``.<name>.<pid>.tmp`` files in :data:`TMP_FILE_DIRS` are removed,
    and parts beyond the last complete episode are set aside in ``.orphans/``. Call it with the
    variant's ``.writer.lock`` held.
    """
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
            msgs.append(f"{COMPLETED} {tmp.name} ({len(moves)} files)")
        else:
            msgs.append(f"removed incomplete episode {tmp.name}")
        shutil.rmtree(tmp, ignore_errors=True)
    for sub in TMP_FILE_DIRS:  # our lock is held: every temporary file here is stale
        for p in remove_stale_tmp(Path(variant_dir) / sub):
            msgs.append(f"removed stale temporary file {sub}/{p.name}")
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
