"""Raw topics to a rosbag2 (MCAP) with ``rosbags``, no ROS install needed (docs/platform.md §2).

The node hands over the CDR bytes it received (``raw=True`` subscriptions or
``rclpy.serialization.serialize_message``), the topic, the ROS type name
(``sensor_msgs/msg/Image``) and the receive/stamp time. Bags are rosbag2 version 9, typestore
``ROS2_JAZZY``: ``ros2 bag`` and MCAP readers open them (docs/platform.md §2 verified the type
hashes and the MCAP profile). Offered QoS is not recorded (``ros2 bag play`` falls back to
defaults).

Threads: one thread at a time (the recorder node's executor thread).
"""

from __future__ import annotations

import os
from pathlib import Path

from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore


class RawBagWriter:
    """Append serialized messages to a new bag folder ``path`` (must not exist yet).

    Raises:
        FileExistsError: ``path`` exists. ValueError: a topic reused with another type, or a
        type unknown to the Jazzy typestore.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._ts = get_typestore(Stores.ROS2_JAZZY)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._conns: dict[str, tuple[str, object]] = {}
        self.messages = 0

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes | memoryview) -> None:
        """Write one message (``msgtype`` like ``sensor_msgs/msg/Image``) at ``stamp_ns``."""
        known = self._conns.get(topic)
        if known is None:
            if msgtype not in self._ts.types:
                raise ValueError(f"{topic}: type {msgtype!r} is not in the ROS 2 Jazzy typestore")
            conn = self._writer.add_connection(topic, msgtype, typestore=self._ts)
            known = self._conns[topic] = (msgtype, conn)
        elif known[0] != msgtype:
            raise ValueError(f"{topic}: recorded as {known[0]}, got a {msgtype}")
        self._writer.write(known[1], int(stamp_ns), bytes(data))
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
