"""Raw topics to a rosbag2 (MCAP) with ``rosbags``, no ROS install needed (docs/platform.md §2).

The node hands over the CDR bytes it received (``raw=True`` subscriptions or
``rclpy.serialization.serialize_message``), the topic, the ROS type name
(``sensor_msgs/msg/Image``) and the receive/stamp time. Bags are rosbag2 version 9, typestore
``ROS2_JAZZY``: ``ros2 bag`` and MCAP readers open them (docs/platform.md §2 verified the type
hashes and the MCAP profile). Offered QoS is not recorded (``ros2 bag play`` falls back to
defaults).

Each message is parsed with the typestore's own CDR deserializer before it is written, and only
the bytes the message occupies are kept: the rclpy wheels' ``serialize_message`` (Jazzy,
rmw_fastrtps_cpp) returns 8 bytes more than the message (seen on ``sensor_msgs/msg/JointState``),
which ``rosbags`` rejects on reading ("CDR message size mismatch", issue #15 §5). Bytes that do not
parse as the named type are refused here, not discovered at replay.

Threads: one thread at a time (the recorder node's executor thread).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


class RawBagWriter:
    """Append serialized messages to a new bag folder ``path`` (must not exist yet).

    Raises:
        FileExistsError: ``path`` exists. ValueError: a topic reused with another type, a type
        unknown to the Jazzy typestore, or bytes that are not a CDR message of that type.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._ts = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._conns: dict[str, tuple[str, object]] = {}
        self.messages = 0

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Write one message (``msgtype`` like ``sensor_msgs/msg/Image``) at ``stamp_ns``.

        ``data`` is one CDR-encapsulated message (4-byte encapsulation header, then the
        message); trailing bytes after the message are dropped (see the module docstring).

        Raises:
            ValueError: see the class docstring; the message names the topic and the type.
        """
        known = self._conns.get(topic)
        if known is None:
            if msgtype not in self._ts.types:
                raise ValueError(f"{topic}: type {msgtype!r} is not in the ROS 2 Jazzy typestore")
            conn = self._writer.add_connection(topic, msgtype, typestore=self._ts)
            known = self._conns[topic] = (msgtype, conn)
        elif known[0] != msgtype:
            raise ValueError(f"{topic}: recorded as {known[0]}, got a {msgtype}")
        self._writer.write(
            known[1], int(stamp_ns), cdr_message_bytes(self._ts, topic, msgtype, data)
        )
        self.messages += 1

    def close(self) -> None:
        """Finish the bag (writes metadata.yaml) and fsync its files."""
        self._writer.close()
        for p in self.path.iterdir():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def cdr_message_bytes(typestore, topic: str, msgtype: str, data: bytes | memoryview) -> bytes:
    """The CDR bytes of the one ``msgtype`` message at the start of ``data``, trailing bytes cut.

    The message's end is where the typestore's deserializer stops (the same generated code that
    ``Typestore.deserialize_cdr`` runs, rosbags/typesys/store.py); ``deserialize_cdr`` itself
    refuses more than 3 trailing bytes, so it cannot be asked directly.

    Raises:
        ValueError: not a CDR encapsulation header (expected 00 00 or 00 01), or the bytes do
            not hold a ``msgtype`` message; the message names ``topic``.
    """
    view = memoryview(data).cast("B")
    if len(view) < 4 or bytes(view[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError(
            f"{topic}: expected CDR data (encapsulation 00 00 or 00 01), got "
            f"{bytes(view[:4]).hex(' ') or 'nothing'} ({len(view)} bytes)"
        )
    msgdef = typestore.get_msgdef(msgtype)
    func = msgdef.deserialize_cdr_le if view[1] else msgdef.deserialize_cdr_be
    try:
        _, end = func(view[4:], 0, msgdef.cls, typestore)
    except (struct.error, UnicodeDecodeError, ValueError, IndexError) as exc:
        raise ValueError(f"{topic}: {len(view)} bytes are not a CDR {msgtype}: {exc}") from exc
    return bytes(view[: 4 + end])
