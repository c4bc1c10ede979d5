"""The Motus T-layout camera composite and the pad-to-fit resize (docs/motus.md §3.4).

All Motus robots feed one composite RGB image per time step: the head camera on top at its native
size, the left-wrist and right-wrist images below it at half width and half height, side by side
(left wrist on the left). A 640x480 head camera gives a 640x720 (W x H) composite. The dataset
then resizes it to the model's 384x320 (H x W) with an aspect-preserving resize and centred black
padding (for 720x640 -> scale 0.5 -> 360x320, 12 px bars top and bottom). The same composite goes
to the VAE and, at its original resolution, to the VLM.

Resizing uses OpenCV (INTER_AREA when shrinking, INTER_LINEAR when enlarging).
"""

from __future__ import annotations

import cv2
import numpy as np


def _check_rgb(name: str, img: np.ndarray) -> None:
    if (
        not isinstance(img, np.ndarray)
        or img.dtype != np.uint8
        or img.ndim != 3
        or img.shape[2] != 3
    ):
        got = f"{img.dtype} {img.shape}" if isinstance(img, np.ndarray) else type(img).__name__
        raise ValueError(f"{name}: expected uint8 (H, W, 3) RGB, got {got}")


def _resize(img: np.ndarray, h: int, w: int) -> np.ndarray:
    if img.shape[:2] == (h, w):
        return img
    shrink = h < img.shape[0] or w < img.shape[1]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def compose_t_layout(head: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Build the T-layout composite.

    Args:
        head: uint8 (H, W, 3) head camera (``cam_high``).
        left: uint8 (h, w, 3) left-wrist camera, any size (resized to (H/2, W/2)).
        right: uint8 (h, w, 3) right-wrist camera, any size (resized to (H/2, W/2)).

    Returns:
        uint8 (H + H//2, W, 3) composite: head on top; left wrist bottom-left, right wrist
        bottom-right, each (H//2, W//2). For odd W the right half is one pixel wider.

    Raises:
        ValueError: an image is not uint8 (H, W, 3).
    """
    _check_rgb("head", head)
    _check_rgb("left", left)
    _check_rgb("right", right)
    h, w = head.shape[:2]
    hh, wl = h // 2, w // 2
    out = np.zeros((h + hh, w, 3), dtype=np.uint8)
    out[:h] = head
    out[h:, :wl] = _resize(left, hh, wl)
    out[h:, wl:] = _resize(right, hh, w - wl)
    return out


def resize_pad(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Aspect-preserving resize into ``out_hw`` with centred black padding (docs/motus.md §3.4).

    Args:
        img: uint8 (H, W, 3).
        out_hw: target (height, width), e.g. :data:`motus_recorder.schema.MODEL_IMAGE_HW`.

    Returns:
        uint8 (out_h, out_w, 3): the image scaled by ``min(out_h / H, out_w / W)``, centred, with
        black bars filling the rest.

    Raises:
        ValueError: bad image or a non-positive target size.
    """
    _check_rgb("img", img)
    oh, ow = int(out_hw[0]), int(out_hw[1])
    if oh <= 0 or ow <= 0:
        raise ValueError(f"out_hw: expected positive (height, width), got {out_hw}")
    h, w = img.shape[:2]
    scale = min(oh / h, ow / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    resized = _resize(img, nh, nw)
    out = np.zeros((oh, ow, 3), dtype=np.uint8)
    top, left = (oh - nh) // 2, (ow - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out
