"""Small statistics for evaluation reports."""

from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95 %, z = 1.96).

    Wilson (1927), "Probable inference, the law of succession, and statistical inference",
    JASA 22(158). Better behaved than the normal approximation at small n and at 0 % / 100 %.

    Args:
        successes: number of successes, 0 <= successes <= n.
        n: number of trials, >= 0. With n = 0 the interval is (0, 1).
        z: standard-normal quantile of the two-sided level.

    Returns:
        (low, high) in [0, 1].

    Raises:
        ValueError: successes outside [0, n] or negative n.
    """
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"expected 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def format_rate(successes: int, n: int) -> str:
    """``"45/50 = 90.0 % (95 % CI 78.6-95.7 %)"``."""
    lo, hi = wilson_interval(successes, n)
    rate = 100.0 * successes / n if n else float("nan")
    return f"{successes}/{n} = {rate:.1f} % (95 % CI {100 * lo:.1f}-{100 * hi:.1f} %)"
