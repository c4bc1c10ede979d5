"""Tiny rosbag2 bags written with rosbags for the evaluation tests (imported by conftest / tests).

The recorded trajectory is known in closed form so replay metrics can be computed by hand:
joint j of the 14-D vector at time t (s after the first sample) is ``Q0[j] + V[j] * t``;
every camera frame i is a constant image of value ``2 * i`` (mod 256).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from motus_recorder.profile import load_profile

TS = get_typestore(Stores.ROS2_JAZZY)
T0_NS = 1_700_000_000_000_000_000
Q0 = np.array([0.1 * j for j in range(14)])
Q0[6], Q0[13] = 0.0205, 0.0895  # grippers (m): left opens through 0.05 at sample 30, right
# closes through it at sample 40 (at 30 Hz); never exactly on the threshold
V = np.array([0.01 * (j + 1) for j in range(14)])
V[6], V[13] = 0.03, -0.03
HW = (24, 32)


def stamp_ns(i: int, rate_hz: float) -> int:
    return T0_NS + round(i * 1e9 / rate_hz)


def q_at(t_s: float) -> np.ndarray:
    return Q0 + V * t_s


def _header(ns: int):
    Time = TS.types["builtin_interfaces/msg/Time"]
    Header = TS.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000), frame_id="")


def image_msg(img: np.ndarray, ns: int, encoding: str = "rgb8"):
    Image = TS.types["sensor_msgs/msg/Image"]
    h, w = img.shape[:2]
    data = img[:, :, ::-1] if encoding == "bgr8" else img
    return Image(
        header=_header(ns),
        height=h,
        width=w,
        encoding=encoding,
        is_bigendian=0,
        step=w * 3,
        data=np.ascontiguousarray(data).reshape(-1),
    )


def compressed_msg(img: np.ndarray, ns: int, fmt: str = "jpeg"):
    Compressed = TS.types["sensor_msgs/msg/CompressedImage"]
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", img[:, :, ::-1])
    assert ok
    return Compressed(header=_header(ns), format=fmt, data=buf.reshape(-1))


def joint_msg(names, positions, ns: int):
    JointState = TS.types["sensor_msgs/msg/JointState"]
    return JointState(
        header=_header(ns),
        name=list(names),
        position=np.ascontiguousarray(positions, dtype=np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


def write_bag(
    path: Path,
    *,
    storage: str = "sqlite3",
    profile="aloha_agilex_2",
    n: int = 30,
    rate_hz: float = 30.0,
    encoding: str | None = None,
    skip_topics: tuple[str, ...] = (),
    joint_topic: str | None = None,
    stamp_fn=None,
) -> Path:
    """Write ``n`` samples per stream at ``rate_hz``; returns the bag folder.

    Args:
        profile: profile name or RobotProfile whose topics and joint names are used.
        encoding: rgb8 / bgr8 / mono8 raw Image, or ``jpeg`` / ``png`` CompressedImage; None
            (default) follows the profile's camera transport: ``jpeg`` for compressed cameras
            (AgileX's /camera_*/color/image_raw/compressed), else ``rgb8``.
        joint_topic: write both arms on this one topic (another tool's /joint_states).
        stamp_fn: (topic, i) -> header stamp ns, to break ordering on purpose.
    """
    prof = load_profile(profile) if isinstance(profile, str | Path) else profile
    if encoding is None:
        encoding = "jpeg" if prof.cameras[0].compressed else "rgb8"
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    stamp_fn = stamp_fn or (lambda topic, i: stamp_ns(i, rate_hz))
    with Writer(path, version=9, storage_plugin=plugin) as w:
        cam_type = (
            "sensor_msgs/msg/CompressedImage"
            if encoding in ("jpeg", "png")
            else "sensor_msgs/msg/Image"
        )
        cams = [
            (c.topic, w.add_connection(c.topic, cam_type, typestore=TS))
            for c in prof.cameras
            if c.topic not in skip_topics
        ]
        if joint_topic:
            names = [*prof.arms[0].joint_names, prof.arms[0].gripper.joint_name]
            names += [*prof.arms[1].joint_names, prof.arms[1].gripper.joint_name]
            arms = [
                (
                    joint_topic,
                    w.add_connection(joint_topic, "sensor_msgs/msg/JointState", typestore=TS),
                    names[::-1],
                    slice(13, None, -1),
                )
            ]
        else:
            arms = [
                (
                    a.state_topic,
                    w.add_connection(a.state_topic, "sensor_msgs/msg/JointState", typestore=TS),
                    [*a.joint_names, a.gripper.joint_name],
                    slice(7 * k, 7 * k + 7),
                )
                for k, a in enumerate(prof.arms)
                if a.state_topic not in skip_topics
            ]
        for i in range(n):
            log_ns = stamp_ns(i, rate_hz)
            q = q_at(i / rate_hz)
            for topic, conn, names, sl in arms:
                msg = joint_msg(names, q[sl], stamp_fn(topic, i))
                w.write(conn, log_ns, TS.serialize_cdr(msg, conn.msgtype))
            img = np.full((*HW, 3), (2 * i) % 256, dtype=np.uint8)
            for topic, conn in cams:
                ns = stamp_fn(topic, i)
                if cam_type.endswith("CompressedImage"):
                    msg = compressed_msg(img, ns, encoding)
                else:
                    msg = image_msg(img, ns, encoding)
                w.write(conn, log_ns, TS.serialize_cdr(msg, conn.msgtype))
    return path


def write_recorder_bag(path: Path, *, profile="aloha_agilex_2", n: int = 30, rate_hz=30.0) -> Path:
    """The same recording as :func:`write_bag` (mcap), written the way ``recorder_node`` does.

    Messages are built as rclpy messages with the nodes' own conversions
    (``motus_recorder.ros.conversions``), serialized with ``rclpy.serialization.
    serialize_message`` and handed to the recorder's ``RawBagWriter`` (``write_bag: true``),
    bytes for bytes what ``recorder_node._raw`` passes on. Returns the bag folder.
    """
    from rclpy.serialization import serialize_message

    from motus_recorder.ros.conversions import image_to_msg, joint_state_to_msg
    from motus_recorder.writers.raw_bag import RawBagWriter

    prof = load_profile(profile) if isinstance(profile, str | Path) else profile
    w = RawBagWriter(path)
    try:
        for i in range(n):
            ns = stamp_ns(i, rate_hz)
            q = q_at(i / rate_hz)
            for k, a in enumerate(prof.arms):
                msg = joint_state_to_msg(a.joint_state_names, q[7 * k : 7 * k + 7], ns)
                w.write(a.state_topic, "sensor_msgs/msg/JointState", ns, serialize_message(msg))
            img = np.full((*HW, 3), (2 * i) % 256, dtype=np.uint8)
            for c in prof.cameras:
                msg = image_to_msg(img, ns)
                w.write(c.topic, "sensor_msgs/msg/Image", ns, serialize_message(msg))
    finally:
        w.close()
    return path
