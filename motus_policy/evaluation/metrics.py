"""Open-loop metrics: action errors per joint / horizon step, gripper timing, latency, PSNR, SSIM.

All functions are pure numpy (plus OpenCV's norm and Gaussian filter for PSNR and SSIM) and return
plain floats / lists so results serialise to JSON directly.

Frame metrics are computed at the model's frame size at most (``FRAME_METRIC_MAX_HW``, the 384 x
320 pad-to-fit input of docs/motus.md §3.4): replay pad-resizes larger frames to it before
scoring (issue #15 §9: full-resolution SSIM was 80 % of a replay's time). SSIM is computed in
float32, all channels in one filter call; it agrees with the float64 definition to ~1e-6
relative.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import cv2
import numpy as np

from motus_recorder import schema

PSNR_CAP_DB = 100.0
"""PSNR reported for identical frames (MSE = 0), so the JSON stays finite."""

FRAME_METRIC_MAX_HW = schema.MODEL_IMAGE_HW
"""(H, W) 384 x 320: frames larger than this are pad-resized to it before PSNR / SSIM (the
model's frame size, docs/motus.md §3.4; a Motus checkpoint predicts frames of this size)."""


def action_errors(predicted: np.ndarray, recorded: np.ndarray) -> dict:
    """Error statistics of predicted vs recorded action chunks.

    Args:
        predicted: float (N, A, 14) predicted joint targets (rad; grippers in the profile unit).
        recorded: float (N, A, 14) recorded joint positions at the same due times.

    Returns:
        dict with ``mse_per_joint`` / ``mae_per_joint`` (14 floats, mean over chunks and steps),
        ``mse_per_step`` / ``mae_per_step`` (A floats, mean over chunks and joints),
        ``mse_arm_joints`` / ``mae_arm_joints`` (the 12 arm joints, rad², rad),
        ``mse_gripper`` / ``mae_gripper`` (the 2 grippers, profile unit), ``chunks`` N and
        ``horizon`` A. Grippers and joints have different units, so no all-joint mean is given.

    Raises:
        ValueError: shapes differ or are not (N, A, 14) with N >= 1.
    """
    p = np.asarray(predicted, dtype=np.float64)
    r = np.asarray(recorded, dtype=np.float64)
    if p.shape != r.shape or p.ndim != 3 or p.shape[2] != schema.STATE_DIM or p.shape[0] < 1:
        raise ValueError(f"expected equal (N>=1, A, 14) arrays, got {p.shape} and {r.shape}")
    err = p - r
    sq, ab = err**2, np.abs(err)
    grip = [schema.LEFT_GRIPPER, schema.RIGHT_GRIPPER]
    arm = [j for j in range(schema.STATE_DIM) if j not in grip]
    return {
        "chunks": int(p.shape[0]),
        "horizon": int(p.shape[1]),
        "mse_per_joint": sq.mean(axis=(0, 1)).tolist(),
        "mae_per_joint": ab.mean(axis=(0, 1)).tolist(),
        "mse_per_step": sq[:, :, arm].mean(axis=(0, 2)).tolist(),
        "mae_per_step": ab[:, :, arm].mean(axis=(0, 2)).tolist(),
        "mse_gripper_per_step": sq[:, :, grip].mean(axis=(0, 2)).tolist(),
        "mse_arm_joints": float(sq[:, :, arm].mean()),
        "mae_arm_joints": float(ab[:, :, arm].mean()),
        "mse_gripper": float(sq[:, :, grip].mean()),
        "mae_gripper": float(ab[:, :, grip].mean()),
    }


def first_crossing(start: float, seq: np.ndarray, threshold: float) -> tuple[int, int] | None:
    """First step where ``seq`` is on the other side of ``threshold`` than ``start``.

    Returns:
        (step index k, direction +1 opening / -1 closing) or None when it never crosses.
        ``start`` exactly on the threshold counts as below it.
    """
    above = start > threshold
    other = seq <= threshold if above else seq > threshold
    hits = np.flatnonzero(other)
    if hits.size == 0:
        return None
    return int(hits[0]), (-1 if above else 1)


def gripper_timing(
    start_states: np.ndarray,
    predicted: np.ndarray,
    recorded: np.ndarray,
    period_s: float,
    thresholds: Sequence[float],
) -> dict:
    """Gripper open/close event timing, predicted vs recorded, per chunk.

    In each chunk and for each gripper, the event is the first action step whose gripper value is
    on the other side of the gripper's threshold (mid-range of the profile's min..max) than the
    state the chunk was predicted from; its time is ``(k + 1) * period_s`` after the observation
    (the due time of action k, :mod:`motus_policy.types`). Events of the same direction in both
    give a timing error ``t_pred - t_rec``; an event only in the recording is *missed*, one only
    in the prediction *spurious*, opposite directions count as both.

    Args:
        start_states: float (N, 14) observation states.
        predicted: float (N, A, 14) predicted chunks.
        recorded: float (N, A, 14) recorded positions at the same due times.
        period_s: action period, s.
        thresholds: (left, right) gripper thresholds in the profile unit.

    Returns:
        dict: ``matched`` / ``missed`` / ``spurious`` counts, ``errors_s`` (signed, per matched
        event), ``mean_abs_error_s`` / ``max_abs_error_s`` (None without matched events).
    """
    errors, missed, spurious = [], 0, 0
    for n in range(predicted.shape[0]):
        for j, thr in zip((schema.LEFT_GRIPPER, schema.RIGHT_GRIPPER), thresholds, strict=True):
            s = float(start_states[n, j])
            ep = first_crossing(s, predicted[n, :, j], thr)
            er = first_crossing(s, recorded[n, :, j], thr)
            if ep and er and ep[1] == er[1]:
                errors.append((ep[0] - er[0]) * period_s)
            else:
                missed += er is not None
                spurious += ep is not None
    absd = [abs(e) for e in errors]
    return {
        "matched": len(errors),
        "missed": missed,
        "spurious": spurious,
        "errors_s": errors,
        "mean_abs_error_s": float(np.mean(absd)) if absd else None,
        "max_abs_error_s": float(np.max(absd)) if absd else None,
    }


def latency_stats(latencies_ns: Sequence[int]) -> dict:
    """Mean / p50 / p90 / p99 / max in ms of ``latencies_ns`` (``count`` 0 gives Nones)."""
    if len(latencies_ns) == 0:
        return {
            "count": 0,
            "mean_ms": None,
            "p50_ms": None,
            "p90_ms": None,
            "p99_ms": None,
            "max_ms": None,
        }
    ms = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "count": int(ms.size),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(ms.max()),
    }


def check_pair(a: np.ndarray, b: np.ndarray) -> None:
    """Raise ValueError unless ``a`` and ``b`` are uint8 images of one shape."""
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"expected two uint8 images of one shape, got {a.shape} and {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (peak 255); capped at 100 dB.

    Raises:
        ValueError: shapes or dtypes differ / not uint8.
    """
    check_pair(a, b)
    mse = cv2.norm(a, b, cv2.NORM_L2SQR) / a.size  # exact: integer squared differences
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * np.log10(255.0**2 / mse))


SSIM_C1 = (0.01 * 255) ** 2
"""SSIM stabiliser (K1 L)^2 with K1 = 0.01, L = 255 (Wang et al. 2004, see :func:`ssim`)."""
SSIM_C2 = (0.03 * 255) ** 2
"""SSIM stabiliser (K2 L)^2 with K2 = 0.03, L = 255."""


_POOL: dict[tuple[int, ...], list[np.ndarray]] = {}
_POOL_MAX = 64
"""Free float32 work arrays per shape. SSIM at 384 x 320 x 3 touches ~1.5 MB per array; fresh
allocations of that size come from mmap and page-fault on first write, which tripled the time
of one SSIM (measured: 15 ms fresh vs 5 ms reused on the 2-core dev box)."""


def _take(shape: tuple[int, ...]) -> np.ndarray:
    free = _POOL.get(shape)
    return free.pop() if free else np.empty(shape, dtype=np.float32)


def _give(*arrays: np.ndarray) -> None:
    for a in arrays:
        free = _POOL.setdefault(a.shape, [])
        if len(free) < _POOL_MAX:
            free.append(a)


def _blur(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """11 x 11 Gaussian (sigma 1.5) of float32 (H, W, C) ``z`` into ``out`` (same shape)."""
    res = cv2.GaussianBlur(z, (11, 11), 1.5, dst=out, borderType=cv2.BORDER_REFLECT)
    if res is not out:  # OpenCV returns (H, W) for one channel, or a new array
        np.copyto(out, res.reshape(out.shape))
    return out


class SsimImage:
    """The per-image half of SSIM, computed once and reusable against any number of images.

    Holds float32 (H, W, C) arrays: ``x`` the image minus its mean (small values keep the
    float32 cancellation error of the variance ~1e-7 relative; verified against float64),
    ``mu`` the Gaussian-weighted local mean of ``x``, ``m`` the local mean of the image,
    ``m2c`` m^2 + C1 / 2 and ``varc`` the local variance + C2 / 2 (each image contributes half
    of the constants of the SSIM denominator). Compare two with :func:`ssim_pair`; :func:`ssim`
    does both steps for one pair. Replay computes a recorded frame's half once for every
    predicted frame due at its tick. The arrays go back to a pool of work arrays when the
    object is deleted.

    Args:
        img: uint8 (H, W) or (H, W, C) image.

    Raises:
        ValueError: not uint8, or not 2- / 3-dimensional.
    """

    __slots__ = ("shape", "x", "mu", "m", "m2c", "varc")

    def __init__(self, img: np.ndarray):
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise ValueError(f"expected a uint8 (H, W[, C]) image, got {img.dtype} {img.shape}")
        self.shape = img.shape
        shape = (img.shape[0], img.shape[1], img.size // (img.shape[0] * img.shape[1]))
        x, mu, m, m2c, var = (_take(shape) for _ in range(5))
        np.copyto(x, img.reshape(shape), casting="unsafe")
        mean = np.float32(x.mean())
        x -= mean
        _blur(x, mu)
        np.multiply(x, x, out=m)
        _blur(m, var)
        np.multiply(mu, mu, out=m2c)
        var -= m2c
        var += np.float32(SSIM_C2 / 2)
        np.add(mu, mean, out=m)
        np.multiply(m, m, out=m2c)
        m2c += np.float32(SSIM_C1 / 2)
        self.x, self.mu, self.m, self.m2c, self.varc = x, mu, m, m2c, var

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, TypeError):  # half-built, or at exit
            _give(self.x, self.mu, self.m, self.m2c, self.varc)


def ssim_pair(a: SsimImage, b: SsimImage) -> float:
    """SSIM of two images from their precomputed halves (:class:`SsimImage`); see :func:`ssim`.

    Raises:
        ValueError: the two images' shapes differ.
    """
    if a.shape != b.shape:
        raise ValueError(f"expected two images of one shape, got {a.shape} and {b.shape}")
    t1, t2, t3 = (_take(a.x.shape) for _ in range(3))
    np.multiply(a.x, b.x, out=t3)
    _blur(t3, t2)  # local E[xy] of the mean-shifted images
    np.multiply(a.mu, b.mu, out=t1)
    t2 -= t1  # covariance
    t2 *= np.float32(2)
    t2 += np.float32(SSIM_C2)  # 2 cov + C2
    np.multiply(a.m, b.m, out=t1)
    t1 *= np.float32(2)
    t1 += np.float32(SSIM_C1)  # 2 mu_a mu_b + C1
    t1 *= t2
    np.add(a.m2c, b.m2c, out=t2)  # mu_a^2 + mu_b^2 + C1
    np.add(a.varc, b.varc, out=t3)  # var_a + var_b + C2
    t2 *= t3
    t1 /= t2
    m = t1[5:-5, 5:-5] if t1.shape[0] > 10 and t1.shape[1] > 10 else t1
    value = float(np.mean(m))  # = mean of the channel means (equal sizes); float32 pairwise sum
    _give(t1, t2, t3)
    return value


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 images, mean over channels.

    Wang, Bovik, Sheikh, Simoncelli (2004), "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4): 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
    K2 = 0.03, L = 255; local statistics with the Gaussian weights, the SSIM map averaged over
    the pixels whose window lies inside the image (a 5-pixel border is dropped when the image is
    larger than the window, as scikit-image does). Computed in float32 through
    :class:`SsimImage` (each image's half) and :func:`ssim_pair` (the cross term).

    Raises:
        ValueError: shapes or dtypes differ / not uint8.
    """
    check_pair(a, b)
    return ssim_pair(SsimImage(a), SsimImage(b))
