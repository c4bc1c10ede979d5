"""Message <-> numpy conversions shared by every node (no cv_bridge: docs/platform.md §3).

Times: ``builtin_interfaces/Time`` <-> int nanoseconds. Images: ``sensor_msgs/Image`` rgb8/bgr8
<-> uint8 (H, W, 3) RGB. Joint states: ``sensor_msgs/JointState`` <-> float (n,) in a
given name order.
"""

from __future__ import annotations

import array
from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState

from motus_recorder.schema import NS_PER_S


def time_to_ns(t: Time) -> int:
    """builtin_interfaces/Time -> int ns."""
    return int(t.sec) * NS_PER_S + int(t.nanosec)


def ns_to_time(ns: int) -> Time:
    """Int ns (>= 0) -> builtin_interfaces/Time. Raises ValueError for negative times."""
    if ns < 0:
        raise ValueError(f"time must be >= 0 ns, got {ns}")
    return Time(sec=int(ns // NS_PER_S), nanosec=int(ns % NS_PER_S))


def image_to_msg(rgb: np.ndarray, stamp_ns: int, frame_id: str = "") -> Image:
    """uint8 (H, W, 3) RGB -> sensor_msgs/Image (rgb8); ValueError on other shapes/dtypes."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    msg = Image()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = int(rgb.shape[1] * 3)
    # array.array('B') skips the generated setter's per-byte check of a bytes value (~50 ms for
    # 640x480 in rclpy 7's sensor_msgs; the whole camera budget at 30 Hz x 3 cameras)
    data = array.array("B")
    data.frombytes(np.ascontiguousarray(rgb).tobytes())
    msg.data = data
    return msg


def msg_to_image(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8 or bgr8) -> uint8 (H, W, 3) RGB.

    Raises:
        ValueError: unsupported encoding, or a data length that does not match height x step.
    """
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"unsupported image encoding {msg.encoding!r}; expected rgb8 or bgr8")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    buf = np.frombuffer(msg.data, dtype=np.uint8)
    if step < w * 3 or buf.size != h * step:
        raise ValueError(
            f"image data has {buf.size} bytes; expected height*step = {h}*{step} "
            f"with step >= 3*width = {3 * w}"
        )
    img = buf.reshape(h, step)[:, : w * 3].reshape(h, w, 3)
    if msg.encoding == "bgr8":
        img = img[:, :, ::-1]
    return img


def joint_state_to_msg(
    names: Sequence[str],
    position: np.ndarray,
    stamp_ns: int,
    velocity: np.ndarray | None = None,
    effort: np.ndarray | None = None,
) -> JointState:
    """Named positions (and optional velocities / efforts) -> sensor_msgs/JointState."""
    msg = JointState()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.name = list(names)
    msg.position = [float(x) for x in position]
    if velocity is not None:
        msg.velocity = [float(x) for x in velocity]
    if effort is not None:
        msg.effort = [float(x) for x in effort]
    return msg


def msg_to_positions(msg: JointState, names: Sequence[str]) -> np.ndarray:
    """sensor_msgs/JointState -> float64 (len(names),) positions in ``names`` order.

    Raises:
        ValueError: a name is missing, or name/position lengths differ.
    """
    if len(msg.name) != len(msg.position):
        raise ValueError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"JointState lacks joints {missing}; has {list(msg.name)}")
    return np.array([msg.position[index[n]] for n in names], dtype=np.float64)
