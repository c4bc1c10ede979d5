"""Decoding ``sensor_msgs/CompressedImage`` data, for live messages and bag messages alike.

One decoder for both paths (issue #15): the nodes' conversions
(:mod:`motus_recorder.ros.conversions`, rclpy messages) and the bag reader
(:mod:`motus_policy.evaluation.bag_reader`, ``rosbags``' deserialized messages). Both message
kinds carry ``format`` (str) and ``data`` (bytes-like), which is all
``rosbags.image.compressed_image_to_cvimage`` reads, so nothing here imports a ROS message type.
"""

from __future__ import annotations

import numpy as np
from rosbags.image import compressed_image_to_cvimage

COMPRESSED_FORMATS = ("jpeg", "jpg", "png")
"""Compressed formats decoded: ``msg.format`` must name one of them (``image_transport`` writes
``"rgb8; jpeg compressed bgr8"``; a bare ``jpeg`` / ``png`` is what other recorders write)."""


class ImageDecodeError(ValueError):
    """Compressed image data that cannot be turned into an RGB image (the message says why)."""


def supported_format(fmt: str) -> bool:
    """Whether a ``CompressedImage.format`` string names one of :data:`COMPRESSED_FORMATS`."""
    return any(f in str(fmt).lower() for f in COMPRESSED_FORMATS)


def decode_compressed(msg) -> np.ndarray:
    """A CompressedImage (JPEG or PNG; rclpy or rosbags message) -> uint8 (H, W, 3) RGB.

    Decoded with ``rosbags.image.compressed_image_to_cvimage(msg, "rgb8")`` (OpenCV ``imdecode``,
    which yields BGR whatever the format string says, converted to RGB by rosbags-image).

    Raises:
        ImageDecodeError: a format that names neither JPEG nor PNG, data that does not decode
            (rosbags-image asserts and OpenCV errors are turned into this; the message gives
            the format and the byte count), or an image that is not 3-channel colour.
    """
    fmt = str(msg.format)
    if not supported_format(fmt):
        raise ImageDecodeError(
            f"unsupported compressed format {fmt!r}; "
            f"expected one naming {list(COMPRESSED_FORMATS)}"
        )
    try:
        img = compressed_image_to_cvimage(msg, "rgb8")
    except Exception as exc:  # noqa: BLE001 - rosbags.image asserts, cv2 raises cv2.error
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        raise ImageDecodeError(
            f"{fmt!r} data ({len(msg.data)} bytes) does not decode ({why})"
        ) from None
    if img is None or img.ndim != 3 or img.shape[2] != 3:
        shape = None if img is None else img.shape
        raise ImageDecodeError(f"{fmt!r} data decodes to shape {shape}, expected (H, W, 3) color")
    return np.ascontiguousarray(img)
