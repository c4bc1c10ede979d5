"""Read and validate Motus real-robot datasets (docs/motus.md §4.2); numpy only at import.

A *task folder* is any folder under the root that holds ``videos/``, ``qpos/`` and
``instructions/`` (found recursively, as upstream). Episode ``i`` is complete when
``qpos/<i>.pt`` exists (our writer renames it last), together with ``videos/<i>.mp4`` and an
instruction: per-episode ``instructions/<i>.txt`` or one shared ``instructions/<name>.txt``.
The embedding is ``instructions/<i>.pt``, the shared ``<name>.pt``, or ``umt5_wan/<i>.pt``.

``.pt`` files are read through :mod:`motus_recorder.writers.torch_io` (torch imported lazily);
videos are decoded with PyAV.

Also what the official Motus trainer needs beyond the layout (docs/data-format.md §8.1): where
its loader finds each episode's UMT5 embedding (:func:`official_language_files`), writing the
embeddings (:func:`embed_dataset`), its stats entry (:func:`export_official_stat`) and the
checks of ``validate --official`` (:func:`official_problems`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np

from motus_recorder import schema
from motus_recorder.profile import RobotProfile, load_profile
from motus_recorder.stats import STAT_FILE
from motus_recorder.writers import torch_io
from motus_recorder.writers.atomic import remove_stale_tmp, replace_file

TASK_DIRS = ("videos", "qpos", "instructions")

OFFICIAL_KEYS = ("aloha_agilex_2", "ac_one")
"""``stat.json`` keys of the official loaders that read this layout (``data/aloha_agilex_2/
aloha_agilex2_dataset.py``, ``data/ac_one/ac_one_dataset.py``; docs/motus.md §4.2)."""

OFFICIAL_RECORD_RATE_HZ = 30.0
"""Recording rate the official ac_one / aloha_agilex_2 configs assume (A = 48 actions at 30 Hz,
8 frames at 5 Hz; docs/motus.md §3.1)."""

OFFICIAL_ACTION_CHUNK = 48
"""A of the official ac_one / aloha_agilex_2 configs (F = 8 x r = 6; docs/motus.md §3.1)."""

OFFICIAL_STAT_FILE = "official_stat.json"
"""Default file ``motus-dataset stats --export-official`` writes and ``validate --official``
reads: ``<root>/official_stat.json``. The official loader reads ``data/utils/stat.json`` of the
Motus checkout (``AlohaAgilex2Dataset.__init__``); the README says how to hand it over."""


class EpisodeFileError(ValueError):
    """A file of an episode is unreadable or holds bad values; ``path`` is that file.

    The message starts with the path and names what was expected and what was found (for
    values: the row and the dimension).
    """

    def __init__(self, path: str | os.PathLike[str], message: str):
        super().__init__(f"{path}: {message}")
        self.path = Path(path)


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


def video_frame_count(path: str | os.PathLike[str]) -> int:
    """Frames of an MP4 from its header (``nb_frames``; no decoding), else by decoding.

    Raises:
        EpisodeFileError: the file cannot be opened as a video.
    """
    try:
        with av.open(os.fspath(path)) as c:
            n = int(c.streams.video[0].frames or 0)
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise EpisodeFileError(path, f"cannot open the video: {exc}") from exc
    return n if n > 0 else count_frames(path)


def first_nonfinite(q: np.ndarray) -> tuple[int, int] | None:
    """``(row, dim)`` of the first NaN/inf in a [T, D] array, or None."""
    bad = ~np.isfinite(q)
    if not bad.any():
        return None
    r, c = np.argwhere(bad)[0]
    return int(r), int(c)


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

    @property
    def qpos_path(self) -> Path:
        """``qpos/<i>.pt`` of this episode."""
        return self.task_dir / "qpos" / f"{self.index}.pt"

    def check_video_length(self) -> int:
        """Check that the video has one frame per qpos row (the header's count, no decoding).

        Returns:
            The number of frames.

        Raises:
            EpisodeFileError: (naming the video) frames != qpos rows, or an unreadable video.
        """
        n = video_frame_count(self.video_path)
        rows = self.qpos.shape[0]
        if n != rows:
            raise EpisodeFileError(
                self.video_path,
                f"{n} video frames but {self.qpos_path} has {rows} rows (expected one row per "
                "frame)",
            )
        return n


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
        """Load episode ``i`` (video not decoded).

        Args:
            i: episode index.
            embedding: also load the UMT5 embedding when there is one.

        Raises:
            FileNotFoundError: no instruction text for ``i``.
            EpisodeFileError: (a ValueError naming the file) unreadable qpos / meta / embedding,
                qpos not float [T, 14] with T >= 1, or a NaN/inf in qpos (row and dimension).
        """
        qpath = self.path / "qpos" / f"{i}.pt"
        q = _load(qpath)
        if not isinstance(q, np.ndarray) or q.ndim != 2 or q.shape[1] != schema.STATE_DIM:
            shape = getattr(q, "shape", type(q).__name__)
            raise EpisodeFileError(
                qpath, f"expected a [T, {schema.STATE_DIM}] tensor, got {shape}"
            )
        if q.shape[0] == 0:
            raise EpisodeFileError(qpath, "empty (0 rows)")
        bad = first_nonfinite(q)
        if bad is not None:
            r, c = bad
            raise EpisodeFileError(qpath, f"non-finite value at row {r}, dim {c} ({q[r, c]})")
        txt = self.instruction_path(i)
        if txt is None:
            raise FileNotFoundError(f"{self.path}/instructions: no {i}.txt nor a shared .txt")
        meta_path = self.path / "meta" / f"{i}.json"
        meta = None
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise EpisodeFileError(meta_path, f"not valid JSON: {exc}") from exc
            if not isinstance(meta, dict):
                raise EpisodeFileError(meta_path, f"expected a JSON object, got {type(meta)}")
        emb_path = self.embedding_path(i) if embedding else None
        return Episode(
            task_dir=self.path,
            index=i,
            qpos=q.astype(np.float32),
            instruction=txt.read_text(encoding="utf-8").strip(),
            video_path=self.path / "videos" / f"{i}.mp4",
            embedding=_load(emb_path) if emb_path else None,
            meta=meta,
        )


def _load(path: Path) -> np.ndarray | list[np.ndarray]:
    try:
        return torch_io.load_tensor(path)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        if isinstance(exc, EpisodeFileError):
            raise
        raise EpisodeFileError(path, f"cannot read the .pt file: {exc}") from exc


def complete_episodes(roots) -> list[tuple[TaskFolder, int]]:
    """``(task folder, episode index)`` of every complete episode under ``roots``.

    Order: roots as given, task folders as :func:`find_tasks` sorts them, indices ascending.
    """
    return [(TaskFolder(t), i) for root in roots for t in find_tasks(root)
            for i in TaskFolder(t).episode_indices()]  # fmt: skip


def stat_entry_problems(entry: Any, dim: int = schema.STATE_DIM) -> list[str]:
    """What is wrong with one ``stat.json`` entry ``{"min": [dim], "max": [dim]}`` (empty: ok).

    Each message names the field and dimension: not a list of ``dim`` numbers (``expected 14,
    got 12``), NaN/inf, or ``max < min``.
    """
    if not isinstance(entry, dict):
        return [f"expected {{'min': [{dim}], 'max': [{dim}]}}, got {type(entry).__name__}"]
    out = []
    vals = {}
    for k in ("min", "max"):
        v = entry.get(k)
        if not isinstance(v, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in v
        ):
            out.append(f"{k}: expected a list of {dim} numbers, got {type(v).__name__}")
            continue
        if len(v) != dim:
            out.append(f"{k}: expected {dim} values, got {len(v)}")
            continue
        for d, x in enumerate(v):
            if not math.isfinite(x):
                out.append(f"{k}[{d}] is {x} (not finite)")
        vals[k] = np.asarray(v, np.float64)
    if len(vals) == 2 and np.isfinite(vals["min"]).all() and np.isfinite(vals["max"]).all():
        for d in np.flatnonzero(vals["max"] < vals["min"]):
            out.append(f"dim {d}: max {vals['max'][d]} < min {vals['min'][d]}")
    return out


def stat_file_problems(
    path: str | os.PathLike[str], keys: Iterable[str] | None = None
) -> list[str]:
    """Problems of a ``stat.json``-style file, one line each starting with the path.

    Args:
        path: the file.
        keys: entries that must be present; None checks every entry and requires none.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return [f"{path}: cannot read: {exc}"]
    if not isinstance(data, dict):
        return [f"{path}: expected a JSON object of entries, got {type(data).__name__}"]
    out = []
    for key in keys if keys is not None else data:
        if key not in data:
            out.append(f"{path}: no entry {key!r} (entries: {sorted(data)})")
            continue
        out.extend(f"{path}: entry {key!r}: {p}" for p in stat_entry_problems(data[key]))
    return out


@dataclass
class ValidationReport:
    """Result of :func:`validate_report`.

    Attributes:
        episodes: complete episodes found.
        tasks: task folders found.
        problems: one line per defect, starting with the offending path; any makes it invalid.
        notes: facts worth knowing that do not make the data unusable (e.g. limits that could
            not be checked because the profile is not installed here).
    """

    episodes: int = 0
    tasks: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    _noted: set = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        """True when there is no problem."""
        return not self.problems

    def note_once(self, key: object, text: str) -> None:
        """Add the note ``text`` unless one with the same ``key`` was added (one per cause)."""
        if key not in self._noted:
            self._noted.add(key)
            self.notes.append(text)


class _Profiles:
    """Profiles named by episode metadata, loaded once each (None when not loadable)."""

    def __init__(self) -> None:
        self._cache: dict[str, RobotProfile | str] = {}

    def get(self, name: str) -> RobotProfile | str:
        if name not in self._cache:
            try:
                self._cache[name] = load_profile(name)
            except (OSError, ValueError) as exc:
                self._cache[name] = str(exc)
        return self._cache[name]


def limit_problem(qpath: Path, q: np.ndarray, profile: RobotProfile) -> str | None:
    """The first qpos value outside the profile's position limits, as a report line, or None.

    The limits are compared after rounding them to float32 (qpos is stored as float32; a value
    recorded inside the float64 limits stays inside the rounded ones), so no tolerance is needed.
    """
    lo = profile.position_min.astype(np.float32)
    hi = profile.position_max.astype(np.float32)
    out = (q < lo) | (q > hi)
    if not out.any():
        return None
    r, d = (int(x) for x in np.argwhere(out)[0])
    return (
        f"{qpath}: row {r}, dim {d} ({profile.joint_names[d]}) = {q[r, d]:.4f} outside the "
        f"limits [{lo[d]:.4f}, {hi[d]:.4f}] of profile {profile.name!r} "
        f"({int(out.any(axis=1).sum())} row(s) out of limits)"
    )


def _check_episode(
    task: TaskFolder, i: int, decode: bool, profiles: _Profiles, report: ValidationReport
) -> Episode | None:
    qpath = task.path / "qpos" / f"{i}.pt"
    try:
        ep = task.read_episode(i)
    except EpisodeFileError as exc:
        report.problems.append(str(exc))
        return None
    except Exception as exc:  # noqa: BLE001 - every failure becomes a report line
        report.problems.append(f"{qpath}: cannot read episode {i}: {exc}")
        return None
    problems = report.problems
    n_rows = ep.qpos.shape[0]
    if ep.embedding is not None:
        embs = ep.embedding if isinstance(ep.embedding, list) else [ep.embedding]
        for e in embs:
            if e.ndim != 2 or e.shape[1] != torch_io.UMT5_WIDTH:
                problems.append(
                    f"{task.embedding_path(i)}: expected [L, {torch_io.UMT5_WIDTH}], got "
                    f"{list(e.shape)}"
                )
            elif not np.isfinite(e).all():
                problems.append(f"{task.embedding_path(i)}: holds NaN/inf")
    meta = ep.meta
    if meta is not None and meta.get("frames") not in (None, n_rows):
        problems.append(
            f"{task.path}/meta/{i}.json: frames = {meta['frames']} but qpos has {n_rows} rows"
        )
    if meta is not None and meta.get("profile"):
        prof = profiles.get(str(meta["profile"]))
        if isinstance(prof, str):
            report.note_once(
                ("profile", meta["profile"]),
                f"{task.path}/meta/{i}.json: profile {meta['profile']!r} is not installed here, "
                f"qpos limits of its episodes not checked ({prof})",
            )
        else:
            line = limit_problem(qpath, ep.qpos, prof)
            if line:
                problems.append(line)
    if decode:
        try:
            n = count_frames(ep.video_path)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{ep.video_path}: cannot decode: {exc}")
        else:
            if n != n_rows:
                problems.append(f"{ep.video_path}: {n} video frames but qpos has {n_rows} rows")
    return ep


def validate(root: str | os.PathLike[str], decode: bool = True) -> tuple[int, list[str]]:
    """Check every task folder under ``root`` (see :func:`validate_report`).

    Returns:
        (number of complete episodes, problems).
    """
    rep = validate_report(root, decode=decode)
    return rep.episodes, rep.problems


def validate_report(
    root: str | os.PathLike[str],
    decode: bool = True,
    official: str | None = None,
    official_stat: str | os.PathLike[str] | None = None,
) -> ValidationReport:
    """Check every task folder under ``root``.

    Problems (each a line starting with the offending file's path): no task folder, no complete
    episode, unreadable or non-[T, 14] qpos, NaN/inf in qpos (row, dim), qpos outside the limits
    of the profile the episode's metadata names (row, dim, joint), unreadable metadata, video
    frame count != qpos rows, undecodable video, an embedding not finite [L, 4096], parts without
    a qpos file, leftovers of interrupted saves, a bad ``<root>/stat.json`` (not 14 finite
    values per min / max, max < min).

    Args:
        root: dataset root, searched recursively.
        decode: decode every video to count its frames (else skipped).
        official: also check what the official loader of this ``stat.json`` key needs
            (:data:`OFFICIAL_KEYS`; see :func:`official_problems`).
        official_stat: the official stats file to check (default
            ``<root>/official_stat.json``, :data:`OFFICIAL_STAT_FILE`).

    Raises:
        ValueError: ``official`` not one of :data:`OFFICIAL_KEYS`.
    """
    if official is not None and official not in OFFICIAL_KEYS:
        raise ValueError(f"official: expected one of {OFFICIAL_KEYS}, got {official!r}")
    root = Path(root)
    report = ValidationReport()
    if not root.is_dir():
        report.problems.append(f"{root}: not a folder")
        return report
    tasks = find_tasks(root)
    report.tasks = len(tasks)
    if not tasks:
        report.problems.append(f"{root}: no task folder (one with {', '.join(TASK_DIRS)}/) found")
    profiles = _Profiles()
    episodes: list[Episode] = []
    for t in tasks:
        task = TaskFolder(t)
        idx = task.episode_indices()
        report.episodes += len(idx)
        for i in idx:
            ep = _check_episode(task, i, decode, profiles, report)
            if ep is not None:
                episodes.append(ep)
        for v in (t / "videos").glob("*.mp4"):
            if v.stem.isdigit() and int(v.stem) not in idx:
                report.problems.append(f"{v}: no matching qpos/{v.stem}.pt (incomplete episode)")
        report.problems.extend(
            f"{p}: episode being written, or leftover of an interrupted save (the recorder "
            "cleans it on its next start)"
            for p in t.glob(".tmp-*")
        )
    if tasks and report.episodes == 0:
        report.problems.append(
            f"{root}: no complete episode (qpos/<i>.pt, videos/<i>.mp4 and an instruction) in "
            f"{len(tasks)} task folder(s)"
        )
    stat = root / STAT_FILE
    if stat.is_file():
        report.problems.extend(stat_file_problems(stat))
    if official is not None:
        path = Path(official_stat) if official_stat else root / OFFICIAL_STAT_FILE
        official_problems(root, tasks, episodes, official, path, report)
    return report


# -- the official loader ----------------------------------------------------------------------
def official_language_files(task_dir: Path) -> dict[str, tuple[Path | None, Path | None]]:
    """Where the official loader takes each episode's embedding and text from.

    A transcription of ``AlohaAgilex2Dataset._load_task_episodes`` (upstream
    ``data/aloha_agilex_2/aloha_agilex2_dataset.py``; ``ac_one_dataset.py`` has the same rule):
    embeddings from ``instructions/*.pt``, else ``umt5_wan/*.pt``; exactly one ``.pt`` and one
    ``.txt`` make both shared; otherwise ``<id>.pt`` / ``<id>.txt`` per episode, falling back to
    ``<task folder name>.pt`` / ``.txt``.

    Returns:
        ``{episode id (video file stem): (embedding path or None, text path or None)}`` for
        every ``videos/*.mp4``.
    """
    instr = task_dir / "instructions"
    emb_dir, pts = None, []
    for cand in (instr, task_dir / "umt5_wan"):
        found = sorted(p.name for p in cand.glob("*.pt")) if cand.is_dir() else []
        if found:
            emb_dir, pts = cand, found
            break
    txts = sorted(p.name for p in instr.glob("*.txt")) if instr.is_dir() else []
    shared = len(pts) == 1 and len(txts) == 1 and emb_dir is not None
    name = task_dir.name
    out: dict[str, tuple[Path | None, Path | None]] = {}
    for v in sorted((task_dir / "videos").glob("*.mp4")):
        eid = v.stem
        if shared:
            out[eid] = (emb_dir / pts[0], instr / txts[0])
            continue
        lang = emb_dir / f"{eid}.pt" if emb_dir is not None else None
        lang = lang if lang is not None and lang.exists() else None
        text = instr / f"{eid}.txt" if (instr / f"{eid}.txt").exists() else None
        if lang is None and (instr / f"{name}.pt").exists():
            lang = instr / f"{name}.pt"
        if text is None and (instr / f"{name}.txt").exists():
            text = instr / f"{name}.txt"
        out[eid] = (lang, text)
    return out


def _embedding_problems(path: Path) -> list[str]:
    try:
        obj = torch_io.load_tensor(path)
    except Exception as exc:  # noqa: BLE001
        return [f"{path}: cannot read the embedding: {exc}"]
    out = []
    for k, e in enumerate(obj if isinstance(obj, list) else [obj]):
        what = f"{path}" + (f" item {k}" if isinstance(obj, list) else "")
        if e.ndim == 3 and e.shape[0] == 1:  # the official loader squeezes a batch dim
            e = e[0]
        if e.ndim != 2 or e.shape[1] != torch_io.UMT5_WIDTH:
            out.append(f"{what}: expected [L, {torch_io.UMT5_WIDTH}], got {list(e.shape)}")
        elif not 1 <= e.shape[0] <= torch_io.UMT5_MAX_TOKENS:
            out.append(f"{what}: expected 1..{torch_io.UMT5_MAX_TOKENS} rows, got {e.shape[0]}")
        elif not np.isfinite(e).all():
            out.append(f"{what}: holds NaN/inf")
    return out


def official_problems(
    root: Path,
    tasks: list[Path],
    episodes: list[Episode],
    key: str,
    stat_path: Path,
    report: ValidationReport,
) -> None:
    """Add to ``report`` what would make the official ``key`` loader skip or misread data.

    Checks (sources: upstream ``data/aloha_agilex_2/aloha_agilex2_dataset.py``,
    ``data/utils/norm.py``; docs/motus.md §3.1, §4.2):

    * every video's episode has a UMT5 embedding and a text where the official loader looks
      (:func:`official_language_files`; else it logs "Missing language embedding" and skips it),
      each finite [L, 4096] with 1 <= L <= 512;
    * numeric file names in ``videos/`` and ``qpos/`` (the official loader takes any name, ours
      only ``<i>``, so the two would train on different episodes), no task folder named
      ``*_bak`` (skipped upstream);
    * at least 2 frames per episode (the official item is None otherwise);
    * the stats entry ``key`` in ``stat_path``: 14 finite values per min / max, max >= min, and
      covering every episode's qpos (a stale export normalises new data outside [0, 1]);
    * the record rate: 30 Hz (:data:`OFFICIAL_RECORD_RATE_HZ`) for episodes of a real-robot
      profile (normalisation key ``ac_one`` / ``aloha_agilex_2``); other profiles (the
      simulation) get a note with the chunk duration the official config then means.
    """
    p = report.problems
    emb_checked: dict[Path, list[str]] = {}
    for t in tasks:
        if t.name.endswith("_bak"):
            p.append(f"{t}: the official loader skips folders named *_bak")
        for sub, ext in (("videos", ".mp4"), ("qpos", ".pt")):
            for f in sorted((t / sub).glob(f"*{ext}")):
                if not f.stem.isdigit():
                    p.append(
                        f"{f}: not a numeric episode name (<i>{ext}); the official loader "
                        "would read it, this project's reader does not"
                    )
        for eid, (lang, text) in official_language_files(t).items():
            if not (t / "qpos" / f"{eid}.pt").is_file():
                continue  # reported as an incomplete episode already
            if lang is None:
                p.append(
                    f"{t}/instructions/{eid}.pt: missing UMT5 embedding (the official loader "
                    f"skips episode {eid}); run `motus-dataset embed {root} --t5 PATH`"
                )
            elif lang not in emb_checked:
                emb_checked[lang] = _embedding_problems(lang)
                p.extend(emb_checked[lang])
            if text is None:
                p.append(f"{t}/instructions/{eid}.txt: missing (the official loader skips it)")
    lo = hi = None
    for ep in episodes:
        if ep.qpos.shape[0] < 2:
            p.append(f"{ep.qpos_path}: {ep.qpos.shape[0]} frame(s); the official loader needs 2")
        emin, emax = ep.qpos.min(axis=0), ep.qpos.max(axis=0)
        lo = emin if lo is None else np.minimum(lo, emin)
        hi = emax if hi is None else np.maximum(hi, emax)
        _check_rate(ep, key, report)
    if not stat_path.is_file():
        p.append(
            f"{stat_path}: missing; run `motus-dataset stats {root} --export-official {key}"
            + ("" if stat_path == root / OFFICIAL_STAT_FILE else f" --official-stat {stat_path}")
            + "`"
        )
        return
    stat_lines = stat_file_problems(stat_path, [key])
    p.extend(stat_lines)
    if stat_lines or lo is None:
        return
    entry = json.loads(stat_path.read_text(encoding="utf-8"))[key]
    smin, smax = np.asarray(entry["min"], np.float32), np.asarray(entry["max"], np.float32)
    dims = np.flatnonzero((lo < smin) | (hi > smax))
    if len(dims):
        d = int(dims[0])
        p.append(
            f"{stat_path}: entry {key!r} dim {d}: [{smin[d]:.4f}, {smax[d]:.4f}] does not cover "
            f"the data's [{lo[d]:.4f}, {hi[d]:.4f}] (dims not covered: {dims.tolist()}; stale "
            f"export? rerun `motus-dataset stats {root} --export-official {key}`)"
        )


def _check_rate(ep: Episode, key: str, report: ValidationReport) -> None:
    meta = ep.meta or {}
    where = f"{ep.task_dir}/meta/{ep.index}.json"
    rate = meta.get("record_rate_hz")
    if rate is None:
        report.note_once(
            ("rate", None), f"{where}: no record_rate_hz; the official {key} config assumes 30 Hz"
        )
        return
    if math.isclose(float(rate), OFFICIAL_RECORD_RATE_HZ):
        return
    real = meta.get("normalization_key") in OFFICIAL_KEYS or meta.get("profile") in OFFICIAL_KEYS
    if real:
        report.problems.append(
            f"{where}: recorded at {rate} Hz with real-robot profile {meta.get('profile')!r}; "
            f"the official {key} config expects {OFFICIAL_RECORD_RATE_HZ:g} Hz"
        )
    else:
        report.note_once(
            ("rate", rate, meta.get("profile")),
            f"{where}: recorded at {rate} Hz (profile {meta.get('profile')!r}, not a real-robot "
            f"profile): the official {key} config's {OFFICIAL_ACTION_CHUNK}-action chunk then "
            "spans "
            f"{OFFICIAL_ACTION_CHUNK / float(rate):.2f} s instead of "
            f"{OFFICIAL_ACTION_CHUNK / OFFICIAL_RECORD_RATE_HZ:.2f} s (and so "
            "its other episodes)",
        )


def official_stat_entry(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The official ``stat.json`` entry over every complete episode's qpos under ``root``.

    Format of upstream ``data/utils/calc_stat.py``: ``{"min": [14], "max": [14], "file_count",
    "total_files_scanned", "action_dim"}`` (the loader reads ``min`` and ``max``,
    ``data/utils/norm.py`` ``load_normalization_stats``). Computed from the qpos files
    themselves, as upstream, not from our metadata.

    Raises:
        ValueError: no complete episode under ``root``.
        EpisodeFileError: an unreadable qpos or one with NaN/inf (row and dimension named).
    """
    lo = hi = None
    n = 0
    for task, i in complete_episodes([root]):
        q = task.read_episode(i, embedding=False).qpos
        lo = q.min(axis=0) if lo is None else np.minimum(lo, q.min(axis=0))
        hi = q.max(axis=0) if hi is None else np.maximum(hi, q.max(axis=0))
        n += 1
    if lo is None:
        raise ValueError(f"{root}: no complete episode to compute statistics from")
    return {
        "min": lo.astype(float).tolist(),
        "max": hi.astype(float).tolist(),
        "file_count": n,
        "total_files_scanned": n,
        "action_dim": schema.STATE_DIM,
    }


def export_official_stat(
    root: str | os.PathLike[str], key: str, path: str | os.PathLike[str] | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write :func:`official_stat_entry` under ``key`` into the official stats file.

    Other entries of an existing file are kept (as upstream ``calc_stat.py`` merges), so the
    file can be the Motus checkout's ``data/utils/stat.json`` itself. Written atomically.

    Args:
        root: dataset root.
        key: one of :data:`OFFICIAL_KEYS`.
        path: the stats file; default ``<root>/official_stat.json``.

    Returns:
        (the file written, the entry).

    Raises:
        ValueError: unknown key, no episode, an existing file that is not a JSON object.
        EpisodeFileError: a bad qpos file.
    """
    if key not in OFFICIAL_KEYS:
        raise ValueError(f"key: expected one of {OFFICIAL_KEYS}, got {key!r}")
    path = Path(path) if path else Path(root) / OFFICIAL_STAT_FILE
    entry = official_stat_entry(root)
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); not overwritten") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of entries; not overwritten")
    data[key] = entry
    text = json.dumps(data, indent=4, ensure_ascii=False).encode("utf-8")
    replace_file(path, lambda f: f.write(text))
    return path, entry


# -- UMT5 embeddings --------------------------------------------------------------------------
@dataclass
class EmbedSummary:
    """What :func:`embed_dataset` did.

    ``encoded`` distinct texts, ``written`` files, ``skipped`` episodes that already had an
    embedding, ``files`` the paths written.
    """

    encoded: int = 0
    written: int = 0
    skipped: int = 0
    files: list[Path] = field(default_factory=list)


def embed_dataset(
    root: str | os.PathLike[str],
    embed: Callable[[str], np.ndarray],
    force: bool = False,
) -> EmbedSummary:
    """Write the UMT5 embedding of every complete episode where the official loader looks.

    Per task folder, with its ``.writer.lock`` held (so not while a recorder writes there):
    stale temporary files are removed; each episode without an embedding the official loader
    finds (:func:`official_language_files`) gets ``instructions/<i>.pt`` (bf16 [L, 4096], the
    official per-episode layout), or ``instructions/<name>.pt`` beside a shared
    ``<name>.txt``. Each distinct text is encoded once. Every file is written atomically
    (:func:`motus_recorder.writers.atomic.replace_file`), and ``meta/<i>.json``'s
    ``embedding_shape`` is updated the same way.

    Args:
        root: dataset root.
        embed: ``text -> float [L, 4096]`` (e.g. :class:`torch_io.UMT5Embedder`).
        force: re-encode episodes that already have an embedding.

    Raises:
        RuntimeError: a recorder is writing into a task folder.
        ValueError: ``embed`` returned something other than a finite [L, 4096], 1 <= L <= 512,
            or there is no complete episode.
    """
    summary = EmbedSummary()
    cache: dict[str, np.ndarray] = {}

    def encode(text: str) -> np.ndarray:
        text = torch_io.clean_instruction(text)  # texts equal after cleaning encode the same
        if text not in cache:
            e = np.asarray(embed(text), dtype=np.float32)
            if (
                e.ndim != 2
                or e.shape[1] != torch_io.UMT5_WIDTH
                or not 1 <= e.shape[0] <= torch_io.UMT5_MAX_TOKENS
                or not np.isfinite(e).all()
            ):
                raise ValueError(
                    f"UMT5 encoder: expected a finite [L, {torch_io.UMT5_WIDTH}] array with "
                    f"1 <= L <= {torch_io.UMT5_MAX_TOKENS} (umt5-xxl's width), got "
                    f"{list(e.shape)} for {text!r}"
                )
            cache[text] = e
            summary.encoded += 1
        return cache[text]

    tasks = find_tasks(root)
    if not any(TaskFolder(t).episode_indices() for t in tasks):
        raise ValueError(f"{root}: no complete episode to embed")
    for t in tasks:
        with open(t / ".writer.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RuntimeError(f"{t}: a recorder is writing here; stop it first") from None
            remove_stale_tmp(t / "instructions")
            remove_stale_tmp(t / "meta")
            _embed_task(TaskFolder(t), encode, force, summary)
    return summary


def _embed_task(task: TaskFolder, encode, force: bool, summary: EmbedSummary) -> None:
    found = official_language_files(task.path)
    for i in task.episode_indices():
        lang, _ = found.get(str(i), (None, None))
        if lang is not None and not force:
            summary.skipped += 1
            continue
        txt = task.instruction_path(i)
        per_episode = txt.stem == str(i)
        target = txt.with_suffix(".pt")
        umt5 = task.path / "umt5_wan"
        if not any((task.path / "instructions").glob("*.pt")) and any(umt5.glob("*.pt")):
            target = (
                umt5 / target.name
            )  # upstream reads umt5_wan/ only when instructions/ has none
        emb = encode(txt.read_text(encoding="utf-8").strip())
        if target not in summary.files:
            replace_file(target, lambda f, e=emb: torch_io.write_tensor(f, e, "bfloat16"))
            summary.files.append(target)
            summary.written += 1
        meta_path = task.path / "meta" / f"{i}.json"
        if per_episode and meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                continue  # validate reports it; the embedding itself is written
            meta["embedding_shape"] = list(emb.shape)
            data = json.dumps(meta, indent=1).encode("utf-8")
            replace_file(meta_path, lambda f, d=data: f.write(d))
