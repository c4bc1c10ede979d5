import numpy as np
import pytest

from motus_recorder import schema
from motus_recorder.composite import compose_t_layout, resize_pad


def _solid(h, w, rgb):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = rgb
    return img


def test_t_layout_places_views_as_reference_3_4():
    head = _solid(480, 640, (255, 0, 0))
    left = _solid(480, 640, (0, 255, 0))
    right = _solid(480, 640, (0, 0, 255))
    out = compose_t_layout(head, left, right)
    assert out.shape == (720, 640, 3)
    assert (out[:480] == (255, 0, 0)).all()
    assert (out[480:, :320] == (0, 255, 0)).all()
    assert (out[480:, 320:] == (0, 0, 255)).all()


def test_resize_pad_matches_reference_bars():
    comp = np.full((720, 640, 3), 200, np.uint8)
    out = resize_pad(comp, schema.MODEL_IMAGE_HW)
    assert out.shape == (384, 320, 3)
    # scale 0.5 -> 360 x 320 image, 12 px black bars top and bottom (docs/motus.md §3.4)
    assert (out[:12] == 0).all() and (out[-12:] == 0).all()
    assert (out[12:372] == 200).all()


def test_bad_images_are_rejected_with_shapes():
    with pytest.raises(ValueError, match=r"head: expected uint8 \(H, W, 3\)"):
        compose_t_layout(np.zeros((4, 4), np.uint8), _solid(2, 2, 0), _solid(2, 2, 0))
    with pytest.raises(ValueError, match="float32"):
        resize_pad(np.zeros((4, 4, 3), np.float32), (2, 2))
