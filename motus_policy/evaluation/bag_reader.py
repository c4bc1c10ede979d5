"""Reading recorded rosbag2 bags (sqlite3 or mcap) without a ROS graph, mapped by a robot profile.

Uses ``rosbags`` (``AnyReader`` with the ``ROS2_JAZZY`` typestore; docs/platform.md §2) and decodes
images with numpy (raw ``sensor_msgs/Image`` rgb8 / bgr8) or rosbags-image (``CompressedImage``
JPEG / PNG, :func:`motus_recorder.images.decode_compressed`, shared with the nodes), never
cv_bridge (docs/platform.md §3).

Which topics hold what comes from the profile: ``cameras[].topic`` and ``arms[].state_topic`` with
the arm's joint names (6 joints + gripper). A bag recorded by another tool is read by writing a
profile YAML with its topic names. Message times are the header stamps (the bag's log time only
where a header stamp is zero).

Everything the replay relies on is checked up front by :func:`index_bag`: every mapped topic
present with a supported type, stamps strictly increasing per topic, every joint name present,
supported image encodings. Problems raise :class:`BagError` naming the topic and the time.

Integrity (issue #14): a damaged file can read "successfully" with messages missing (rosbags
skips the rest of a chunk whose records are garbage) or changed. :func:`index_bag` therefore
compares, per mapped topic, the messages it read with the counts the bag declares:
``metadata.yaml``'s ``topics_with_message_count`` and, for MCAP files, the summary section's
``Statistics.channel_message_counts`` (read with the ``mcap`` library); and it re-reads every MCAP
file with ``mcap``'s ``StreamReader(validate_crcs=True)``, which checks each chunk's CRC and the
data-section CRC where the writer stored them (``ros2 bag record`` does; ``rosbags``' writer
stores 0, "not computed", so changed bytes inside a chunk of such a file go unnoticed unless they
break its records). Any difference is an error, or with ``allow_damaged`` a
:class:`BagIntegrity` with the count lost that the caller must report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mcap.reader import make_reader
from mcap.records import Channel, DataEnd, Message
from mcap.stream_reader import StreamReader
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from motus_recorder.images import (
    COMPRESSED_FORMATS,
    ImageDecodeError,
    decode_compressed,
    supported_format,
)
from motus_recorder.profile import RobotProfile

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_TYPE = "sensor_msgs/msg/JointState"
RAW_ENCODINGS = ("rgb8", "bgr8")


class BagError(ValueError):
    """The bag cannot be replayed as asked; the message names the topic / time / file."""


@dataclass(frozen=True)
class StreamMap:
    """Bag topics per stream, from a profile.

    Attributes:
        cameras: (camera name, topic) in T-layout order.
        arms: (arm name, topic, 7 joint names: 6 joints + gripper) in 14-D order (left first).
    """

    cameras: tuple[tuple[str, str], ...]
    arms: tuple[tuple[str, str, tuple[str, ...]], ...]

    @classmethod
    def from_profile(cls, profile: RobotProfile) -> StreamMap:
        """Camera and arm topics and joint names of ``profile``."""
        return cls(
            tuple((c.name, c.topic) for c in profile.cameras),
            tuple((a.name, a.state_topic, a.joint_state_names) for a in profile.arms),
        )


@dataclass(frozen=True)
class JointTrack:
    """One arm's recorded joint states: ``stamps_ns`` int64 (N,), ``positions`` float64 (N, 7)."""

    topic: str
    stamps_ns: np.ndarray
    positions: np.ndarray

    def latest_index(self, t_ns: int) -> int:
        """Index of the last sample with stamp <= ``t_ns``, or -1 if none."""
        return int(np.searchsorted(self.stamps_ns, t_ns, side="right")) - 1

    def interpolate(self, times_ns: np.ndarray) -> np.ndarray:
        """float64 (len(times), 7) linearly interpolated positions.

        Raises:
            BagError: a time outside the recorded range [first, last stamp].
        """
        t = np.asarray(times_ns, dtype=np.int64)
        if t.min() < self.stamps_ns[0] or t.max() > self.stamps_ns[-1]:
            raise BagError(
                f"{self.topic}: time {int(t.max())} ns outside the recording "
                f"[{int(self.stamps_ns[0])}, {int(self.stamps_ns[-1])}] ns"
            )
        # Relative times in float64 keep ns precision over hours of recording.
        base = self.stamps_ns[0]
        x, xp = (t - base).astype(np.float64), (self.stamps_ns - base).astype(np.float64)
        return np.stack([np.interp(x, xp, self.positions[:, j]) for j in range(7)], axis=1)


@dataclass(frozen=True)
class CameraIndex:
    """One camera's messages in file order: topic, message type, ``stamps_ns`` int64 (N,)."""

    name: str
    topic: str
    msgtype: str
    stamps_ns: np.ndarray

    def latest_index(self, t_ns: int) -> int:
        """Index of the last frame with stamp <= ``t_ns``, or -1 if none."""
        return int(np.searchsorted(self.stamps_ns, t_ns, side="right")) - 1


@dataclass(frozen=True)
class BagIntegrity:
    """Per mapped topic: messages the bag declares vs messages read (see the module docstring).

    Attributes:
        declared: topic -> count from ``metadata.yaml`` (``topics_with_message_count``).
        read: topic -> messages read and decoded.
        problems: one line per difference (a count, a CRC, an unreadable file), empty if sound.
    """

    declared: dict[str, int]
    read: dict[str, int]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing is missing, changed or unreadable."""
        return not self.problems

    @property
    def lost(self) -> int:
        """Messages declared but not read, summed over the mapped topics."""
        return sum(max(0, n - self.read.get(t, 0)) for t, n in self.declared.items())

    def as_dict(self) -> dict:
        """JSON-ready form (for replay.json)."""
        return {
            "ok": self.ok,
            "lost": self.lost,
            "declared": dict(self.declared),
            "read": dict(self.read),
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class BagIndex:
    """What :func:`index_bag` found: joint tracks per arm, camera indices, the bag's topics."""

    path: Path
    joints: dict[str, JointTrack]
    cameras: dict[str, CameraIndex]
    topics: dict[str, str]
    """Every topic in the bag -> message type."""
    integrity: BagIntegrity = field(default_factory=lambda: BagIntegrity({}, {}))


@contextlib.contextmanager
def open_bag(path: str | Path) -> Iterator[AnyReader]:
    """Open a rosbag2 folder (sqlite3 or mcap) for reading, as a context manager.

    Raises:
        BagError: missing path, a folder without ``metadata.yaml``, or the bag cannot be
            opened (bad metadata, truncated file); the message names the path and the cause.
    """
    p = Path(path)
    if not p.exists():
        raise BagError(f"{p}: no such bag")
    if p.is_dir() and not (p / "metadata.yaml").is_file():
        files = sorted(f.name for f in p.iterdir())[:8]
        raise BagError(
            f"{p}: no metadata.yaml, so not a readable rosbag2 folder (it holds {files}); a "
            "rosbag2 bag is a folder with metadata.yaml and its .mcap / .db3 files; "
            "`ros2 bag reindex <folder>` rebuilds a lost metadata.yaml"
        )
    try:
        reader = AnyReader([p], default_typestore=get_typestore(Stores.ROS2_JAZZY))
        reader.open()
    except Exception as exc:  # rosbags raises several types for a damaged bag
        raise BagError(f"{p}: cannot open bag: {type(exc).__name__}: {exc}") from exc
    try:
        yield reader
    finally:
        reader.close()


def _stamp_ns(msg, log_ns: int) -> int:
    s = msg.header.stamp
    ns = int(s.sec) * 1_000_000_000 + int(s.nanosec)
    return ns if ns else int(log_ns)


def _check_increasing(topic: str, stamps: list[int]) -> np.ndarray:
    arr = np.asarray(stamps, dtype=np.int64)
    bad = np.flatnonzero(np.diff(arr) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "duplicate" if arr[i] == arr[i - 1] else "out-of-order"
        raise BagError(
            f"{topic}: {kind} stamp at message {i}: {arr[i]} ns after {arr[i - 1]} ns "
            "(stamps must be strictly increasing per topic)"
        )
    return arr


def _check_image(topic: str, msgtype: str, msg, stamp_ns: int) -> None:
    if msgtype == IMAGE_TYPE and msg.encoding not in RAW_ENCODINGS:
        raise BagError(
            f"{topic} at {stamp_ns} ns: image encoding {msg.encoding!r} not supported; "
            f"expected one of {list(RAW_ENCODINGS)}"
        )
    if msgtype == COMPRESSED_TYPE and not supported_format(msg.format):
        raise BagError(
            f"{topic} at {stamp_ns} ns: compressed format {msg.format!r} not supported; "
            f"expected one of {list(COMPRESSED_FORMATS)}"
        )


def index_bag(reader: AnyReader, streams: StreamMap, allow_damaged: bool = False) -> BagIndex:
    """Read every joint state and every image stamp of the mapped topics and validate them.

    Args:
        reader: an open bag (:func:`open_bag`).
        streams: which topics hold what.
        allow_damaged: replay what can be read from a damaged bag instead of raising; the
            returned :attr:`BagIndex.integrity` then names the damage and the count lost, and
            the caller must report it.

    Returns:
        BagIndex with one :class:`JointTrack` per arm (positions in the arm's joint-name order),
        one :class:`CameraIndex` per camera and the :class:`BagIntegrity` check.

    Raises:
        BagError: a mapped topic missing (the message lists the bag's topics), a wrong message
            type, an empty topic, a joint name missing from a message, an unsupported image
            encoding, non-increasing stamps; and, unless ``allow_damaged``, a damaged bag:
            fewer / more messages read than declared, a CRC mismatch or an unreadable file
            (the message gives the counts per topic).
    """
    path = Path(reader.paths[0])
    topics = {c.topic: c.msgtype for c in reader.connections}
    wanted = [(t, (IMAGE_TYPE, COMPRESSED_TYPE)) for _, t in streams.cameras]
    wanted += [(t, (JOINT_TYPE,)) for _, t, _ in streams.arms]
    for topic, types in wanted:
        if topic not in topics:
            raise BagError(
                f"{path}: topic {topic} not in the bag; it has {sorted(topics)} "
                "(map other names with a profile YAML)"
            )
        if topics[topic] not in types:
            raise BagError(f"{topic}: message type {topics[topic]}, expected one of {list(types)}")
    conns = [c for c in reader.connections if c.topic in {t for t, _ in wanted}]
    cam_stamps: dict[str, list[int]] = {t: [] for _, t in streams.cameras}
    joint_msgs: dict[str, list[tuple[int, list[str], np.ndarray]]] = {
        t: [] for _, t, _ in streams.arms
    }
    read_error = None
    try:
        for conn, log_ns, raw in reader.messages(connections=conns):
            msg = reader.deserialize(raw, conn.msgtype)
            stamp = _stamp_ns(msg, log_ns)
            if conn.msgtype == JOINT_TYPE:
                joint_msgs[conn.topic].append((stamp, list(msg.name), np.asarray(msg.position)))
            else:
                _check_image(conn.topic, conn.msgtype, msg, stamp)
                cam_stamps[conn.topic].append(stamp)
    except BagError:
        raise
    except Exception as exc:  # a truncated / corrupt file surfaces here
        read_error = f"reading stopped (truncated or corrupt bag): {type(exc).__name__}: {exc}"
    read = {t: len(v) for t, v in cam_stamps.items()}
    read.update({t: len(v) for t, v in joint_msgs.items()})
    integrity = check_integrity(reader, read, read_error)
    if not integrity.ok and not allow_damaged:
        raise BagError(
            f"{path}: damaged bag, {integrity.lost} mapped messages lost: "
            + "; ".join(integrity.problems)
            + " (--allow-damaged replays what can be read, with a warning)"
        )

    joints = {}
    for arm, topic, names in streams.arms:
        msgs = joint_msgs[topic]
        if not msgs:
            raise BagError(f"{topic}: no messages in the bag")
        stamps = _check_increasing(topic, [m[0] for m in msgs])
        pos = np.empty((len(msgs), len(names)), dtype=np.float64)
        for i, (stamp, msg_names, values) in enumerate(msgs):
            for j, name in enumerate(names):
                if name not in msg_names:
                    raise BagError(
                        f"{topic} at {stamp} ns: joint {name!r} ({arm} arm) not in {msg_names}"
                    )
                pos[i, j] = values[msg_names.index(name)]
        if not np.all(np.isfinite(pos)):
            i = int(np.argmax(~np.all(np.isfinite(pos), axis=1)))
            raise BagError(f"{topic} at {int(stamps[i])} ns: non-finite position {pos[i]}")
        joints[arm] = JointTrack(topic, stamps, pos)
    cameras = {}
    for name, topic in streams.cameras:
        if not cam_stamps[topic]:
            raise BagError(f"{topic}: no messages in the bag")
        cameras[name] = CameraIndex(
            name, topic, topics[topic], _check_increasing(topic, cam_stamps[topic])
        )
    return BagIndex(path, joints, cameras, topics, integrity)


def check_integrity(
    reader: AnyReader, read: dict[str, int], read_error: str | None = None
) -> BagIntegrity:
    """Compare ``read`` (topic -> messages read) with what the bag declares; check MCAP CRCs.

    Declared counts: ``metadata.yaml`` through rosbags (``Connection.msgcount``, summed over a
    topic's connections); for each ``.mcap`` file also its summary ``Statistics`` (mcap library)
    and a full pass of ``StreamReader(validate_crcs=True)`` counting the message records per
    topic. ``read_error`` (the exception that ended the caller's read) is kept as a problem.
    """
    declared: dict[str, int] = {}
    for c in reader.connections:
        if c.topic in read:
            declared[c.topic] = declared.get(c.topic, 0) + int(c.msgcount)
    problems = [read_error] if read_error else []
    for topic, n in declared.items():
        if read[topic] != n:
            problems.append(f"{topic}: {read[topic]} of {n} messages read (metadata.yaml)")
    mcaps = [f for p in reader.paths for f in sorted(Path(p).glob("*.mcap"))]
    if mcaps:
        summary: dict[str, int] = {}
        stream: dict[str, int] = {}
        with_stats = True
        for f in mcaps:
            found, had_stats = _mcap_counts(f, set(read), summary, stream)
            problems += found
            with_stats &= had_stats
        checks = [("MCAP summary", summary)] if with_stats else []  # statistics are optional
        for name, counts in [*checks, ("MCAP records", stream)]:
            for topic in declared:
                if counts.get(topic, 0) != declared[topic]:
                    problems.append(
                        f"{topic}: {counts.get(topic, 0)} messages in the {name}, "
                        f"{declared[topic]} in metadata.yaml"
                    )
    return BagIntegrity(declared, dict(read), tuple(problems))


def _mcap_counts(
    path: Path, topics: set[str], summary: dict[str, int], stream: dict[str, int]
) -> tuple[list[str], bool]:
    """Add ``path``'s per-topic counts (summary statistics, record pass) into the dicts.

    Returns (problems, whether the summary had statistics).
    """
    problems = []
    with path.open("rb") as f:
        try:
            s = make_reader(f).get_summary()
        except Exception as exc:  # noqa: BLE001 - garbage in the summary: damage
            s = None
            problems.append(f"{path.name}: MCAP summary unreadable: {type(exc).__name__}: {exc}")
        if s is not None and s.statistics is not None:
            for cid, n in s.statistics.channel_message_counts.items():
                ch = s.channels.get(cid)
                if ch is not None and ch.topic in topics:
                    summary[ch.topic] = summary.get(ch.topic, 0) + int(n)
        f.seek(0)
        channels: dict[int, str] = {}
        try:
            for rec in StreamReader(f, validate_crcs=True).records:
                if isinstance(rec, Message):
                    t = channels.get(rec.channel_id)
                    if t in topics:
                        stream[t] = stream.get(t, 0) + 1
                elif isinstance(rec, Channel):
                    channels[rec.id] = rec.topic
                elif isinstance(rec, DataEnd):
                    break
        except Exception as exc:  # noqa: BLE001 - CRC errors, garbage records: all damage
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return problems, s is not None and s.statistics is not None


def decode_image(msgtype: str, msg, topic: str = "?") -> np.ndarray:
    """uint8 (H, W, 3) RGB from a deserialized Image (rgb8/bgr8) or CompressedImage (JPEG/PNG).

    CompressedImage data is decoded by :func:`motus_recorder.images.decode_compressed`
    (``rosbags.image.compressed_image_to_cvimage``), the decoder the nodes use on live messages.

    Raises:
        BagError: unsupported encoding, or data that does not decode / fit the declared size.
    """
    stamp = _stamp_ns(msg, 0)
    _check_image(topic, msgtype, msg, stamp)
    if msgtype == IMAGE_TYPE:
        h, w, step = int(msg.height), int(msg.width), int(msg.step)
        data = np.asarray(msg.data, dtype=np.uint8)
        if step < 3 * w or data.size < step * h:
            raise BagError(
                f"{topic} at {stamp} ns: {data.size} bytes for {w}x{h} step {step} {msg.encoding}"
            )
        img = data[: step * h].reshape(h, step)[:, : 3 * w].reshape(h, w, 3)
        return np.ascontiguousarray(img[:, :, ::-1] if msg.encoding == "bgr8" else img)
    try:
        return decode_compressed(msg)  # the live path's decoder (rosbags-image)
    except ImageDecodeError as exc:
        raise BagError(f"{topic} at {stamp} ns: {exc}") from None


def iter_frames(
    reader: AnyReader, index: BagIndex, needed: dict[str, set[int]]
) -> Iterator[tuple[str, int, np.ndarray]]:
    """Yield (camera name, frame index, RGB image) in file order, decoding only ``needed`` ones.

    ``needed`` maps camera name -> frame indices (positions in :attr:`CameraIndex.stamps_ns`).
    """
    by_topic = {c.topic: c for c in index.cameras.values()}
    counters = dict.fromkeys(by_topic, 0)
    conns = [c for c in reader.connections if c.topic in by_topic]
    try:
        for conn, _, raw in reader.messages(connections=conns):
            cam = by_topic[conn.topic]
            i = counters[conn.topic]
            counters[conn.topic] = i + 1
            if i in needed.get(cam.name, ()):
                msg = reader.deserialize(raw, conn.msgtype)
                yield cam.name, i, decode_image(conn.msgtype, msg, conn.topic)
    except BagError:
        raise
    except Exception as exc:
        raise BagError(f"{index.path}: cannot read messages: {exc}") from exc
