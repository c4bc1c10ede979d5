"""TrajectoryInterpolator: JTC-style linear interpolation of time-stamped points."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.robots.trajectory import TrajectoryInterpolator

MS = 1_000_000


def test_starts_from_current_interpolates_and_holds_last():
    tr = TrajectoryInterpolator()
    assert tr.sample(0) is None and tr.finished(0)
    now = 1000 * MS
    tr.set(0, np.array([100 * MS, 300 * MS]), np.array([[1.0, 2.0], [3.0, 2.0]]), now, np.zeros(2))
    np.testing.assert_allclose(tr.sample(now), [0.0, 0.0])
    np.testing.assert_allclose(tr.sample(now + 50 * MS), [0.5, 1.0])
    np.testing.assert_allclose(tr.sample(now + 200 * MS), [2.0, 2.0])
    assert not tr.finished(now + 299 * MS)
    np.testing.assert_allclose(tr.sample(now + 10_000 * MS), [3.0, 2.0])
    assert tr.finished(now + 300 * MS)


def test_header_stamp_sets_start_and_new_trajectory_replaces_old():
    tr = TrajectoryInterpolator()
    tr.set(2000 * MS, np.array([0]), np.array([[1.0]]), 1000 * MS, np.array([0.0]))
    np.testing.assert_allclose(tr.sample(1500 * MS), [0.5])
    tr.set(0, np.array([0]), np.array([[-1.0]]), 1600 * MS, np.array([0.5]))
    np.testing.assert_allclose(tr.sample(1600 * MS), [-1.0])
    tr.clear()
    assert not tr.active


@pytest.mark.parametrize(
    ("times", "pos", "match"),
    [
        ([0, 0], [[0.0], [1.0]], "strictly increasing"),
        ([0], [[np.nan]], "NaN"),
        ([], np.zeros((0, 1)), "K >= 1"),
        ([0, 1], [[0.0]], "K times"),
    ],
)
def test_bad_trajectories_raise(times, pos, match):
    with pytest.raises(ValueError, match=match):
        TrajectoryInterpolator().set(0, np.array(times), np.array(pos), 0, np.zeros(1))
