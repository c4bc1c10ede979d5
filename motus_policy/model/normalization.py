"""Per-dimension min-max normalisation of joint vectors to [0, 1] (docs/motus.md §4.2).

The one implementation used by inference (:class:`~motus_policy.model.policy.MotusPolicy`) and
training (:class:`~motus_policy.training.data.MotusEpisodeDataset`): ``(x - min) / range`` and
back, computed in float64 and returned as float32, with the statistics of the official
``stat.json`` entry (docs/checkpoint-format.md §8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from motus_recorder import schema

MIN_NORMALIZATION_RANGE = 1e-3
"""Floor on ``max - min`` (rad, or normalised gripper) for checkpoints trained **here**, recorded
in their ``config.json`` (``PolicyConfig.normalization_min_range``). A joint that never moves in
the data (e.g. a waist held at 0) has a range of ~1e-15 from float noise, and dividing by it turns
a 1e-5 rad sensor wiggle into 1e10; below 1 mrad the range is replaced by 1. Official checkpoints
use the official rule (only an exactly-zero range becomes 1; docs/motus.md §4.2): with this floor
a near-constant official joint would de-normalise up to ~1 rad off."""


def safe_range(lo, hi, min_range: float = 0.0) -> np.ndarray:
    """``hi - lo`` (float64, (D,)) with exact zeros (and ranges below ``min_range``) set to 1.

    ``min_range`` 0 is the official rule (docs/motus.md §4.2).
    """
    r = np.asarray(hi, np.float64) - np.asarray(lo, np.float64)
    return np.where((r == 0) | (r < min_range), 1.0, r)


@dataclass(frozen=True)
class NormalizationStats:
    """Per-dimension min-max statistics (official ``stat.json`` entry).

    Attributes:
        min: float64 (D,) per-dimension minimum.
        max: float64 (D,) per-dimension maximum (>= min).
        min_range: ranges below this are replaced by 1 as well as exact zeros; 0 (default) is
            the official rule, :data:`MIN_NORMALIZATION_RANGE` the floor of checkpoints trained
            here.

    Raises:
        ValueError: min/max not (D,) each, not finite, max < min somewhere, or a negative /
            non-finite ``min_range``.
    """

    min: np.ndarray
    max: np.ndarray
    min_range: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.min, np.float64), np.asarray(self.max, np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError(
                f"NormalizationStats: expected (D,) min/max, got {lo.shape}/{hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi >= lo)):
            raise ValueError(f"NormalizationStats: expected finite max >= min, got {lo} / {hi}")
        if not (np.isfinite(self.min_range) and self.min_range >= 0):
            raise ValueError(
                f"NormalizationStats.min_range: expected a finite value >= 0, got {self.min_range}"
            )
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)

    @property
    def range(self) -> np.ndarray:
        """``max - min``; zero ranges (and ranges below ``min_range``) replaced by 1."""
        return safe_range(self.min, self.max, self.min_range)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``(x - min) / range`` for (..., D) arrays; float32."""
        return ((np.asarray(x, np.float64) - self.min) / self.range).astype(np.float32)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """``y * range + min`` for (..., D) arrays; float32."""
        return (np.asarray(y, np.float64) * self.range + self.min).astype(np.float32)

    @classmethod
    def identity(cls, dim: int = schema.STATE_DIM) -> NormalizationStats:
        """Min 0, max 1: no normalisation (RoboTwin, ``action_normalization="none"``)."""
        return cls(np.zeros(dim), np.ones(dim))

    @classmethod
    def from_entry(cls, entry: Mapping[str, Sequence[float]]) -> NormalizationStats:
        """From one stat.json entry ``{"min": [D], "max": [D]}`` (optional ``"min_range"``)."""
        return cls(
            np.asarray(entry["min"]),
            np.asarray(entry["max"]),
            float(entry.get("min_range", 0.0)),  # type: ignore[arg-type]
        )

    def to_json(self, key: str) -> dict:
        """``{key: {"min": [...], "max": [...]}}`` (stat.json style)."""
        return {key: {"min": self.min.tolist(), "max": self.max.tolist()}}

    @classmethod
    def from_json(cls, data: dict, key: str) -> NormalizationStats:
        """Read entry ``key`` of a stat.json-style dict.

        Raises:
            KeyError: ``key`` absent (names the keys present).
        """
        if key not in data:
            raise KeyError(f"stats: no entry {key!r}; entries: {sorted(data)}")
        return cls.from_entry(data[key])
