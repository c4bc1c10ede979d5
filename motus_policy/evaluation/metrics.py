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


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"expected two uint8 images of one shape, got {a.shape} and {b.shape}")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images (peak 255); capped at 100 dB.

    Raises:
        ValueError: shapes or dtypes differ / not uint8.
    """
    _check_pair(a, b)
    mse = cv2.norm(a, b, cv2.NORM_L2SQR) / a.size  # exact: integer squared differences
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10.0 * np.log10(255.0**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two uint8 images, mean over channels.

    Wang, Bovik, Sheikh, Simoncelli (2004), "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 13(4): 11x11 Gaussian window with sigma 1.5, K1 = 0.01,
    K2 = 0.03, L = 255; local statistics with the Gaussian weights, the SSIM map averaged over
    the pixels whose window lies inside the image (a 5-pixel border is dropped when the image is
    larger than the window, as scikit-image does).

    Raises:
        ValueError: shapes or dtypes differ / not uint8.
    """
    _check_pair(a, b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    # float32, each image shifted by its mean: the variances are differences of blurred squares,
    # and small values keep the cancellation error ~1e-7 relative (verified against float64)
    x = a.astype(np.float32).reshape(a.shape[0], a.shape[1], -1)
    y = b.astype(np.float32).reshape(x.shape)
    cx, cy = np.float32(x.mean()), np.float32(y.mean())
    x -= cx
    y -= cy

    def blur(z: np.ndarray) -> np.ndarray:
        out = cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
        return out.reshape(x.shape)  # OpenCV drops a single channel's axis

    dx, dy = blur(x), blur(y)
    sxx = blur(x * x) - dx * dx
    syy = blur(y * y) - dy * dy
    sxy = blur(x * y) - dx * dy
    mx, my = dx + cx, dy + cy
    mxx, myy, mxy = mx * mx, my * my, mx * my
    m = ((2 * mxy + c1) * (2 * sxy + c2)) / ((mxx + myy + c1) * (sxx + syy + c2))
    if m.shape[0] > 10 and m.shape[1] > 10:
        m = m[5:-5, 5:-5]
    return float(np.mean(m))  # = mean of the channel means (equal sizes); float32 pairwise sum
