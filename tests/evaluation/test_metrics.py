"""Frame metrics: SSIM split into per-image halves (metrics.SsimImage) and the cross term
(metrics.ssim_pair) equals the float64 textbook definition (Wang et al. 2004, Gaussian 11x11,
sigma 1.5, K1 0.01, K2 0.03, L 255), for colour, grey and tiny images; its work arrays are
pooled; bad input is refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from motus_policy.evaluation import metrics


def ssim_float64(a: np.ndarray, b: np.ndarray) -> float:
    x = a.astype(np.float64).reshape(a.shape[0], a.shape[1], -1)
    y = b.astype(np.float64).reshape(x.shape)

    def blur(z):
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT).reshape(x.shape)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    if m.shape[0] > 10 and m.shape[1] > 10:
        m = m[5:-5, 5:-5]
    return float(m.mean())


@pytest.mark.parametrize("shape", [(384, 320, 3), (48, 64), (48, 64, 1), (8, 9, 3)])
def test_ssim_matches_the_float64_definition(shape):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-40, 40, shape), 0, 255).astype(np.uint8)
    assert metrics.ssim(a, b) == pytest.approx(ssim_float64(a, b), rel=1e-6)
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    # one half reused against several images gives the same values
    half = metrics.SsimImage(a)
    for other in (b, a, b[::-1].copy()):
        assert metrics.ssim_pair(half, metrics.SsimImage(other)) == pytest.approx(
            metrics.ssim(a, other), rel=1e-7
        )


def test_work_arrays_are_reused():
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (40, 30, 3), dtype=np.uint8) for _ in range(6)]
    metrics.ssim(imgs[0], imgs[1])
    pool = metrics._POOL[(40, 30, 3)]
    size = len(pool)
    ids = {id(a) for a in pool}
    for i in range(5):
        metrics.ssim(imgs[i], imgs[i + 1])
    assert len(pool) == size and {id(a) for a in pool} == ids


def test_bad_input_is_refused():
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim(a, np.zeros((20, 21, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        metrics.SsimImage(a.astype(np.float32))
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim_pair(metrics.SsimImage(a), metrics.SsimImage(a[:10]))
