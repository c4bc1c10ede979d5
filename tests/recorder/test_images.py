"""One CompressedImage decoder for live and bag messages (issue #15): rosbags-image's
``compressed_image_to_cvimage`` behind :func:`motus_recorder.images.decode_compressed`, used by
the nodes' conversions and by the bag reader, which turns its errors into a BagError naming the
topic and the stamp. Real JPEG / PNG bytes, real rosbags and rclpy message objects."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.evaluation.bag_reader import COMPRESSED_TYPE, BagError, decode_image
from motus_recorder.images import ImageDecodeError, decode_compressed
from tests.fakes.bags import compressed_msg


def _image() -> np.ndarray:
    img = np.zeros((24, 32, 3), np.uint8)
    img[:, :16, 0] = 250  # left half red, right half blue: a BGR/RGB swap shows
    img[:, 16:, 2] = 250
    return img


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_bag_and_live_messages_decode_to_the_same_rgb(fmt):
    from motus_recorder.ros.conversions import compressed_to_image, image_to_compressed_msg

    img = _image()
    bag_msg = compressed_msg(img, 123, fmt)  # a rosbags (typestore) message
    from_bag = decode_image(COMPRESSED_TYPE, bag_msg, "/cam")
    assert from_bag.dtype == np.uint8 and from_bag.shape == (24, 32, 3)
    err = np.abs(from_bag.astype(int) - img)
    assert err.max() == 0 if fmt == "png" else err.mean() < 4  # JPEG: lossy at the edge
    assert from_bag[:, :8, 0].min() > 200 and from_bag[:, -8:, 2].min() > 200  # RGB, not BGR
    live = compressed_to_image(image_to_compressed_msg(img, 123, fmt=fmt))
    np.testing.assert_array_equal(live, from_bag)
    np.testing.assert_array_equal(decode_compressed(bag_msg), from_bag)


def test_garbage_data_is_a_clear_error_not_an_assert():
    msg = compressed_msg(_image(), 5_000, "jpeg")
    msg.data = np.frombuffer(b"not a jpeg at all", np.uint8)
    with pytest.raises(ImageDecodeError, match=r"^'jpeg' data \(17 bytes\) does not decode"):
        decode_compressed(msg)
    with pytest.raises(BagError, match=r"^/cam at 5000 ns: 'jpeg' data \(17 bytes\) does not"):
        decode_image(COMPRESSED_TYPE, msg, "/cam")
    msg.format = "tiff"
    with pytest.raises(BagError, match="compressed format 'tiff' not supported"):
        decode_image(COMPRESSED_TYPE, msg, "/cam")
    with pytest.raises(ImageDecodeError, match="unsupported compressed format 'tiff'"):
        decode_compressed(msg)
