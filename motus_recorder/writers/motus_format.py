"""Crash-safe writer of Motus real-robot datasets (docs/motus.md §4.2).

Layout, per task variant ``<root>/<task>/<variant>/``::

    videos/<i>.mp4         T-layout composite at raw resolution, H.264 (docs/platform.md §8)
    qpos/<i>.pt            float32 tensor [T, 14], 14-D layout (schema.py): commanded joint
                           positions (docs/motus.md §4.1 ``joint_action``) or measured state
    state/<i>.pt           ours, optional: float32 [T, 14] measured joint state beside commanded
                           qpos (``qpos_source: command``)
    instructions/<i>.txt   the instruction text (the VLM text is the whole file)
    instructions/<i>.pt    UMT5 embedding [L, 4096] bf16, only when an ``embed_fn`` is given
    meta/<i>.json          ours: rates, names, per-frame times, sync stats, notes, version
    bags/<i>/              optional raw rosbag2 (MCAP) of the episode's topics
    <root>/stat.json       {normalization_key: {"min": [14], "max": [14]}} over all episodes

Lifecycle: :meth:`start_episode`, :meth:`add_frame` per step,
:meth:`save_episode` or :meth:`discard_episode`, :meth:`close`.

Crash safety. An episode is written into ``<variant>/.tmp-<i>-<pid>/``; every file is fsynced.
Then a ``COMMIT`` file listing the moves is written and fsynced, and the files are renamed into
place, ``qpos/<i>.pt`` **last**: an episode is complete iff its qpos file exists (readers and the
upstream loader enumerate qpos). On start, :func:`recover` finishes the moves of a tmp folder
that has ``COMMIT`` (all data was on disk) and deletes any other tmp folder, so a crash, SIGKILL
or full disk never leaves a half episode visible, and an aborted episode does not consume an
index. One writer per variant folder at a time (``flock`` on ``.writer.lock``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from motus_recorder import schema
from motus_recorder.episode import EpisodeBuffer, Frame, FrameValidator
from motus_recorder.profile import RobotProfile
from motus_recorder.stats import STAT_FILE, update_stat_file
from motus_recorder.writers import torch_io
from motus_recorder.writers.atomic import (
    COMPLETED,
    commit,
    committed_indices,
    fsync_dir,
    recover,
    remove_stale_tmp,
    write_text,
)
from motus_recorder.writers.video import EncoderWorker, VideoEncoder

log = logging.getLogger(__name__)

SOFTWARE_VERSION = "motus_recorder 0.1.0"
FORMAT = "motus-recorder/1"
PART_DIRS = ("videos", "qpos", "instructions", "meta")


def clean_stat_tmp(root: Path) -> list[str]:
    """Remove ``<root>/.stat.json.<pid>.tmp`` files a killed :func:`update_stat_file` left.

    Takes ``<root>/.stat.lock`` (the lock :func:`motus_recorder.stats.update_stat_file` writes
    under), so a temporary file of a live writer in another process is never touched.

    Returns:
        One message per file removed.
    """
    root = Path(root)
    if not any(root.glob(f".{STAT_FILE}.*.tmp")):
        return []
    with open(root / ".stat.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        gone = remove_stale_tmp(root, STAT_FILE)
    return [
        f"removed stale temporary file {p.name} of an interrupted stat.json update" for p in gone
    ]


class EpisodeWriteError(RuntimeError):
    """Saving failed; nothing of the episode is visible and its index was not consumed."""


@dataclass(frozen=True)
class WriterConfig:
    """Where and how episodes are written."""

    root: str
    task: str
    variant: str = "default"
    crf: int = 23
    preset: str = "veryfast"
    queue_size: int = 64
    put_timeout_s: float = 2.0
    qpos_source: str = "command"
    """What the qpos rows hold (:data:`schema.QPOS_SOURCES`); written into meta."""

    def __post_init__(self) -> None:
        if self.qpos_source not in schema.QPOS_SOURCES:
            raise ValueError(
                f"WriterConfig.qpos_source: expected one of {schema.QPOS_SOURCES}, "
                f"got {self.qpos_source!r}"
            )
        for name in ("task", "variant"):
            v = getattr(self, name)
            if not v or "/" in v or v.startswith("."):
                raise ValueError(f"WriterConfig.{name}: expected a plain folder name, got {v!r}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"WriterConfig.crf: expected 0..51, got {self.crf}")
        if self.queue_size < 1 or self.put_timeout_s <= 0:
            raise ValueError("WriterConfig.queue_size/put_timeout_s: expected positive values")


class MotusFormatWriter:
    """Writes episodes of one task variant (see module docstring).

    Threads: one producer thread calls every method; video encoding runs on a worker thread.

    Args:
        config: folders and encoder settings.
        profile: the robot profile (validation, names, rates, normalisation key).
        embed_fn: optional ``text -> float array [L, 4096]`` (UMT5 encoder); when given, the
            embedding is saved as ``instructions/<i>.pt`` (bf16, as upstream).
        clock: wall clock for the metadata's creation time, int ns.

    Raises:
        RuntimeError: another writer holds the variant folder.
    """

    def __init__(
        self,
        config: WriterConfig,
        profile: RobotProfile,
        embed_fn: Callable[[str], np.ndarray] | None = None,
        clock: Callable[[], int] = time.time_ns,
    ):
        self.config = config
        self.profile = profile
        self.embed_fn = embed_fn
        self.clock = clock
        self.root = Path(config.root)
        self.dir = self.root / config.task / config.variant
        for sub in PART_DIRS:
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / ".writer.lock", "w")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RuntimeError(f"{self.dir}: another writer is recording here") from None
        self.recovered = recover(self.dir)
        stat_tmp = clean_stat_tmp(self.root)
        self.recovered += stat_tmp
        if stat_tmp or any(m.startswith(COMPLETED) for m in self.recovered):
            # an episode committed after the last stat.json update (recovered now, or saved by
            # a writer killed while updating the file): bring stat.json up to date
            self._update_stats("a recovered episode")
        self.validator = FrameValidator(profile)
        cam = profile.cameras[0]
        self.composite_hw = (cam.height + cam.height // 2, cam.width)
        self._episode: dict[str, Any] | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """True between start_episode and save/discard."""
        return self._episode is not None

    @property
    def next_index(self) -> int:
        """Index the next saved episode gets (contiguous after the complete ones)."""
        return (committed_indices(self.dir) or [-1])[-1] + 1

    @property
    def bag_dir(self) -> Path:
        """Where to write the open episode's raw bag (committed to ``bags/<i>/`` on save)."""
        return self._require()["tmp"] / "bag"

    @property
    def queue_depth(self) -> int:
        """Frames waiting for the video encoder (0 when idle)."""
        return self._episode["worker"].depth if self._episode else 0

    def start_episode(self, instruction: str, operator_notes: str = "") -> None:
        """Open a new episode. Raises RuntimeError if one is open, ValueError if no text."""
        if self._episode is not None:
            raise RuntimeError("an episode is already being recorded; save or discard it first")
        if not instruction.strip():
            raise ValueError("instruction: expected a non-empty task description")
        idx = self.next_index
        tmp = self.dir / f".tmp-{idx}-{os.getpid()}"
        tmp.mkdir()
        h, w = self.composite_hw
        enc = VideoEncoder(
            tmp / "video.mp4",
            w,
            h,
            self.profile.record_rate_hz,
            self.config.crf,
            self.config.preset,
        )
        self._episode = {
            "index": idx,
            "tmp": tmp,
            "buffer": EpisodeBuffer(self.validator),
            "worker": EncoderWorker(enc, self.config.queue_size, self.config.put_timeout_s),
            "instruction": instruction,
            "notes": operator_notes,
            "started_ns": int(self.clock()),
        }

    def add_frame(self, frame: Frame) -> None:
        """Validate, buffer and queue one frame for encoding.

        Raises:
            FrameError: invalid frame (nothing was buffered).
            BackPressureError: the encoder fell behind; discard the episode.
            RuntimeError: no episode is open, or the encoder failed.
        """
        ep = self._require()
        composite = ep["buffer"].add(frame)
        ep["worker"].submit(composite)

    def save_episode(self, extra_meta: dict[str, Any] | None = None) -> int:
        """Finish the video, write all files and commit them; return the episode index.

        Args:
            extra_meta: JSON-ready additions to ``meta/<i>.json`` (e.g. ``{"sync": stats}``).

        Raises:
            EpisodeWriteError: empty episode, encoder failure, or an OS error such as ENOSPC.
                The episode is discarded: nothing is visible and the index is not consumed.
        """
        ep = self._require()
        try:
            moves = self._write_tmp(ep, extra_meta or {})
        except BaseException as exc:
            self._cleanup(ep)
            raise EpisodeWriteError(f"episode {ep['index']} not saved: {exc}") from exc
        self._episode = None
        try:
            commit(ep["tmp"], self.dir, moves)
        except BaseException as exc:
            try:  # all data is on disk: finish the moves now, or at the next start
                recover(self.dir)
            except OSError:
                log.exception("could not finish the commit of episode %d now", ep["index"])
            if not (self.dir / "qpos" / f"{ep['index']}.pt").is_file():
                raise EpisodeWriteError(
                    f"episode {ep['index']}: commit interrupted ({exc}); the next start "
                    "completes it"
                ) from exc
        self._update_stats(f"episode {ep['index']}")
        log.info("saved episode %d (%d frames) in %s", ep["index"], len(ep["buffer"]), self.dir)
        return ep["index"]

    def discard_episode(self, reason: str = "") -> None:
        """Drop the open episode (no-op when none is open); its index is not consumed."""
        if self._episode is None:
            return
        log.warning("discarding episode %d: %s", self._episode["index"], reason or "requested")
        self._cleanup(self._episode)

    def close(self) -> None:
        """Discard any open episode and release the folder lock."""
        self.discard_episode("writer closed")
        if not self._lock.closed:
            self._lock.close()

    # -- internals ------------------------------------------------------------------------------
    def _update_stats(self, what: str) -> None:
        try:
            update_stat_file(self.root)
        except (OSError, ValueError) as exc:  # the episode itself is safely on disk
            log.error(
                "%s saved, but %s/stat.json was not updated: %s "
                "(fix, then run `motus-dataset stats %s --write`)",
                what, self.root, exc, self.root,
            )  # fmt: skip

    def _require(self) -> dict[str, Any]:
        if self._episode is None:
            raise RuntimeError("no episode is being recorded; call start_episode first")
        return self._episode

    def _cleanup(self, ep: dict[str, Any]) -> None:
        ep["worker"].abort()
        self._episode = None
        shutil.rmtree(ep["tmp"], ignore_errors=True)

    def _write_tmp(self, ep: dict[str, Any], extra_meta: dict[str, Any]) -> list[list[str]]:
        buf: EpisodeBuffer = ep["buffer"]
        if len(buf) == 0:
            raise ValueError("episode has no frames")
        n_video = ep["worker"].finish()
        qpos = buf.qpos
        if n_video != qpos.shape[0]:
            raise RuntimeError(f"video has {n_video} frames, qpos {qpos.shape[0]} rows")
        i, tmp = ep["index"], ep["tmp"]
        moves = [["video.mp4", f"videos/{i}.mp4"], ["instruction.txt", f"instructions/{i}.txt"]]
        if (tmp / "bag").is_dir():  # the raw bag the caller wrote into bag_dir (closed)
            (self.dir / "bags").mkdir(exist_ok=True)
            moves.insert(0, ["bag", f"bags/{i}"])
        write_text(tmp / "instruction.txt", ep["instruction"])
        emb_shape = None
        if self.embed_fn is not None:
            emb = np.asarray(self.embed_fn(ep["instruction"]), dtype=np.float32)
            if emb.ndim != 2 or emb.shape[1] != 4096 or not np.isfinite(emb).all():
                raise ValueError(f"embed_fn: expected finite [L, 4096], got {emb.shape}")
            torch_io.save_tensor(tmp / "instruction.pt", emb, torch_dtype="bfloat16")
            moves.append(["instruction.pt", f"instructions/{i}.pt"])
            emb_shape = list(emb.shape)
        meta = self._meta(ep, qpos, emb_shape, extra_meta)
        write_text(tmp / "meta.json", json.dumps(meta, indent=1))
        moves.append(["meta.json", f"meta/{i}.json"])
        state = buf.state
        if state is not None:
            (self.dir / "state").mkdir(exist_ok=True)
            torch_io.save_tensor(tmp / "state.pt", state)
            moves.append(["state.pt", f"state/{i}.pt"])
        torch_io.save_tensor(tmp / "qpos.pt", qpos)
        moves.append(["qpos.pt", f"qpos/{i}.pt"])  # last: its presence marks the episode complete
        fsync_dir(tmp)
        return moves

    def _meta(self, ep, qpos, emb_shape, extra: dict[str, Any]) -> dict[str, Any]:
        p = self.profile
        buf: EpisodeBuffer = ep["buffer"]
        worker: EncoderWorker = ep["worker"]
        meta = {
            "format": FORMAT,
            "software_version": SOFTWARE_VERSION,
            "episode_index": ep["index"],
            "task": self.config.task,
            "variant": self.config.variant,
            "profile": p.name,
            "normalization_key": p.normalization_key,
            "record_rate_hz": p.record_rate_hz,
            "frames": int(qpos.shape[0]),
            "camera_names": list(p.camera_names),
            "camera_hw": {c.name: [c.height, c.width] for c in p.cameras},
            "composite_hw": list(self.composite_hw),
            "joint_names": list(p.joint_names),
            "instruction": ep["instruction"],
            "operator_notes": ep["notes"],
            "embedding_shape": emb_shape,
            "video": {"codec": "libx264", "pix_fmt": "yuv420p", "crf": self.config.crf},
            "encoder": {
                "backpressure_events": worker.backpressure_events,
                "max_queue_depth": worker.max_depth,
                "queue_size": self.config.queue_size,
            },
            "created_unix_ns": ep["started_ns"],
            "qpos_min": qpos.min(axis=0).astype(float).tolist(),
            "qpos_max": qpos.max(axis=0).astype(float).tolist(),
            "qpos_source": self.config.qpos_source,
            "has_state": buf.state is not None,
            "t_ns": buf.t_ns,
            "stamps_ns": buf.stamps_ns,
        }
        meta.update(extra)
        return meta
