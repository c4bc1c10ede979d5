"""Message <-> numpy conversions shared by every node (no cv_bridge: docs/platform.md §3).

Times: ``builtin_interfaces/Time`` <-> int nanoseconds. Images: ``sensor_msgs/Image`` rgb8/bgr8
and ``sensor_msgs/CompressedImage`` JPEG/PNG <-> uint8 (H, W, 3) RGB (compressed images decoded
by ``rosbags.image``, i.e. OpenCV's ``imdecode``; encoded by OpenCV's ``imencode``). Joint states:
``sensor_msgs/JointState`` <-> float (n,) in a given name order, looked up per message (two arms
may use the same names on their own topics).
"""

from __future__ import annotations

import array
from collections.abc import Sequence

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import CompressedImage, Image, JointState

from motus_recorder.images import decode_compressed
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


def compressed_to_image(msg: CompressedImage) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG or PNG) -> uint8 (H, W, 3) RGB.

    The decoder the bag reader uses too: :func:`motus_recorder.images.decode_compressed`
    (``rosbags.image.compressed_image_to_cvimage``, OpenCV ``imdecode``).

    Raises:
        ValueError: (an :class:`~motus_recorder.images.ImageDecodeError`) a format that names
            neither JPEG nor PNG, or data that does not decode to a 3-channel image (the message
            gives the format and the byte count).
    """
    return decode_compressed(msg)


def image_to_compressed_msg(
    rgb: np.ndarray, stamp_ns: int, fmt: str = "jpeg", frame_id: str = "", quality: int = 90
) -> CompressedImage:
    """uint8 (H, W, 3) RGB -> sensor_msgs/CompressedImage (``jpeg`` or ``png``, OpenCV encoder).

    ``quality`` is the JPEG quality 0..100 (OpenCV ``IMWRITE_JPEG_QUALITY``). Raises ValueError
    for other shapes / dtypes or formats.
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    if fmt not in ("jpeg", "png"):
        raise ValueError(f"fmt: expected jpeg or png, got {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, buf = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", rgb[:, :, ::-1], params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    msg = CompressedImage()
    msg.header.stamp = ns_to_time(stamp_ns)
    msg.header.frame_id = frame_id
    msg.format = fmt
    data = array.array("B")
    data.frombytes(buf.tobytes())
    msg.data = data
    return msg


def any_image_to_rgb(msg: Image | CompressedImage) -> np.ndarray:
    """uint8 (H, W, 3) RGB from a sensor_msgs/Image or CompressedImage.

    Dispatches to :func:`msg_to_image` / :func:`compressed_to_image`; ValueError as those raise.
    """
    if isinstance(msg, CompressedImage):
        return compressed_to_image(msg)
    return msg_to_image(msg)


def image_type(compressed: bool) -> type:
    """The message class of a camera topic: CompressedImage when ``compressed``, else Image."""
    return CompressedImage if compressed else Image


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
        ValueError: a name is missing or repeated in the message, or name/position lengths
            differ.
    """
    if len(msg.name) != len(msg.position):
        raise ValueError(f"JointState has {len(msg.name)} names but {len(msg.position)} positions")
    index = {n: i for i, n in enumerate(msg.name)}
    if len(index) != len(msg.name):
        raise ValueError(f"JointState repeats joint names: {list(msg.name)}")
    missing = [n for n in names if n not in index]
    if missing:
        raise ValueError(f"JointState lacks joints {missing}; has {list(msg.name)}")
    return np.array([msg.position[index[n]] for n in names], dtype=np.float64)
