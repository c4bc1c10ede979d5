"""The trajectory core: PiecewiseLinear knots and the JTC-style TrajectoryFollower.

Covers the runtime's chunk interpolation, the Piper driver node's trajectory following and the
simulated arm's follower (per-arm limits, CommandRejected), plus the per-arm command check.
"""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.robots.aloha_sim.commands import CommandRejected, check_arm_vector
from motus_policy.robots.trajectory import PiecewiseLinear, TrajectoryFollower
from motus_recorder.profile import load_profile

MS = 1_000_000


# -- PiecewiseLinear (the runtime's chunk plans) ---------------------------------------------
def test_piecewise_linear_interpolates_and_holds():
    pl = PiecewiseLinear(np.array([0, 10, 20]), np.array([[0.0], [1.0], [3.0]]))
    assert pl.sample(-5)[0] == 0.0 and pl.sample(5)[0] == 0.5 and pl.sample(15)[0] == 2.0
    assert pl.sample(99)[0] == 3.0
    np.testing.assert_allclose(pl.sample_many(np.array([5, 15]))[:, 0], [0.5, 2.0])
    with pytest.raises(ValueError, match="strictly increasing"):
        PiecewiseLinear(np.array([0, 0]), np.zeros((2, 1)))


# -- TrajectoryFollower without limits (the Piper driver node's use) -------------------------
def _free(n):
    return TrajectoryFollower([f"j{i}" for i in range(n)])


def test_starts_from_current_interpolates_and_holds_last():
    tr = _free(2)
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
    tr = _free(1)
    tr.set(2000 * MS, np.array([0]), np.array([[1.0]]), 1000 * MS, np.array([0.0]))
    np.testing.assert_allclose(tr.sample(1500 * MS), [0.5])
    tr.set(0, np.array([0]), np.array([[-1.0]]), 1600 * MS, np.array([0.5]))
    np.testing.assert_allclose(tr.sample(1600 * MS), [-1.0])
    tr.clear()
    assert not tr.active


@pytest.mark.parametrize(
    ("times", "pos", "match"),
    [
        ([0, 0], [[0.0], [1.0]], "increase strictly"),
        ([0], [[np.nan]], "j0 is nan"),
        ([], np.zeros((0, 1)), "K >= 1"),
        ([0, 1], [[0.0]], r"shape \(2, 1\) for 2 times"),
    ],
)
def test_bad_trajectories_raise(times, pos, match):
    with pytest.raises(ValueError, match=match):
        _free(1).set(0, np.array(times), np.array(pos), 0, np.zeros(1))


def test_rejected_trajectory_leaves_the_active_one_running():
    tr = _free(1)
    tr.set(0, np.array([0]), np.array([[0.5]]), 0, np.zeros(1))
    with pytest.raises(ValueError, match="point 1: j0 is inf"):
        tr.set(0, np.array([0, 10]), np.array([[0.0], [np.inf]]), 0, np.zeros(1))
    np.testing.assert_allclose(tr.sample(MS), [0.5])
    assert tr.active


# -- TrajectoryFollower of one simulated arm (limits, CommandRejected) -----------------------
@pytest.fixture(scope="module")
def profile():
    return load_profile("aloha_sim")


@pytest.fixture
def follower(profile):
    return TrajectoryFollower.for_arm(profile, "left", error=CommandRejected, initial=np.zeros(7))


def _pts(*rows):
    return np.array(rows, dtype=np.float64)


def test_holds_initial_until_first_trajectory(follower):
    np.testing.assert_array_equal(follower.sample(0), np.zeros(7))
    np.testing.assert_array_equal(follower.sample(10**12), np.zeros(7))


def test_interpolates_from_current_then_between_points_then_holds(follower):
    p1 = np.full(7, 0.2)
    p2 = np.full(7, 0.6)
    now = 1000 * MS
    follower.set(
        now, np.array([100 * MS, 300 * MS]), _pts(p1, p2), now_ns=now, current=np.zeros(7)
    )
    np.testing.assert_allclose(follower.sample(now), np.zeros(7))
    np.testing.assert_allclose(follower.sample(now + 50 * MS), np.full(7, 0.1))
    np.testing.assert_allclose(follower.sample(now + 100 * MS), p1)
    np.testing.assert_allclose(follower.sample(now + 200 * MS), np.full(7, 0.4))
    np.testing.assert_allclose(follower.sample(now + 300 * MS), p2)
    np.testing.assert_allclose(follower.sample(now + 10_000 * MS), p2)  # hold the last point
    assert follower.end_ns == now + 300 * MS


def test_start_in_the_past_skips_elapsed_part(follower):
    now = 1000 * MS
    follower.set(
        now - 100 * MS,
        np.array([0, 200 * MS]),
        _pts(np.zeros(7), np.full(7, 0.4)),
        now_ns=now,
        current=np.full(7, 0.9),
    )
    # first point already passed: no segment from "current"; we are half way along
    np.testing.assert_allclose(follower.sample(now), np.full(7, 0.2))


def test_future_stamp_holds_current_until_then(follower):
    now = 1000 * MS
    follower.set(
        now + 100 * MS,
        np.array([0]),
        _pts(np.full(7, 0.5)),
        now_ns=now,
        current=np.full(7, 0.1),
    )
    np.testing.assert_allclose(follower.sample(now), np.full(7, 0.1))
    np.testing.assert_allclose(follower.sample(now + 50 * MS), np.full(7, 0.3))
    np.testing.assert_allclose(follower.sample(now + 100 * MS), np.full(7, 0.5))


def test_new_trajectory_replaces_old_and_hold_resets(follower):
    follower.set(0, np.array([10 * MS]), _pts(np.full(7, 0.5)), 0, np.zeros(7))
    follower.set(0, np.array([10 * MS]), _pts(np.full(7, 0.3)), 0, np.zeros(7))
    np.testing.assert_allclose(follower.sample(20 * MS), np.full(7, 0.3))
    follower.hold(np.full(7, 0.7))
    np.testing.assert_allclose(follower.sample(20 * MS), np.full(7, 0.7))


@pytest.mark.parametrize(
    ("times", "points", "pattern"),
    [
        ([], np.zeros((0, 7)), "at least one point"),
        ([0, 10], np.zeros((2, 6)), r"shape \(2, 7\)"),
        ([10, 10], np.zeros((2, 7)), "increase strictly; point 1"),
        ([-5], np.zeros((1, 7)), "negative"),
        ([0, 10], _pts(np.zeros(7), [0, 0, np.nan, 0, 0, 0, 0]), "point 1: left_elbow is nan"),
        ([0], _pts([0, 0, 0, 0, 0, 0, 1.2]), r"left_gripper = 1\.2000 outside"),
    ],
)
def test_invalid_trajectory_is_rejected_and_old_one_kept(follower, times, points, pattern):
    follower.set(0, np.array([0]), _pts(np.full(7, 0.25)), 0, np.zeros(7))
    with pytest.raises(CommandRejected, match=pattern):
        follower.set(0, np.array(times, dtype=np.int64), points, 0, np.zeros(7))
    np.testing.assert_allclose(follower.sample(MS), np.full(7, 0.25))


def test_current_position_is_checked_when_the_trajectory_starts_from_it(follower):
    follower.set(0, np.array([0]), _pts(np.full(7, 0.25)), 0, np.zeros(7))
    cur = np.zeros(7)
    cur[6] = -0.1  # gripper below its limit
    with pytest.raises(CommandRejected, match=r"left current position: left_gripper = -0\.1000"):
        follower.set(0, np.array([10 * MS]), _pts(np.full(7, 0.5)), 0, cur)
    np.testing.assert_allclose(follower.sample(MS), np.full(7, 0.25))
    follower.set(0, np.array([0]), _pts(np.full(7, 0.5)), 0, cur)  # not used: accepted


def test_check_arm_vector_names_joint_and_limits(profile):
    q = np.zeros(7)
    q[1] = -2.0
    with pytest.raises(CommandRejected, match=r"right_shoulder = -2\.0000 outside \[-1\.8500"):
        check_arm_vector(profile, "right", q)
    with pytest.raises(CommandRejected, match="expected 7 values"):
        check_arm_vector(profile, "left", np.zeros(6))
