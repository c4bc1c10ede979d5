"""TrajectoryFollower: linear interpolation between points, hold after the end, validation."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.robots.aloha_sim.commands import CommandRejected, check_arm_vector
from motus_policy.robots.aloha_sim.trajectory import TrajectoryFollower
from motus_recorder.profile import load_profile

MS = 1_000_000


@pytest.fixture(scope="module")
def profile():
    return load_profile("aloha_sim")


@pytest.fixture
def follower(profile):
    return TrajectoryFollower(profile, "left", np.zeros(7))


def _pts(*rows):
    return np.array(rows, dtype=np.float64)


def test_holds_initial_until_first_trajectory(follower):
    np.testing.assert_array_equal(follower.sample(0), np.zeros(7))
    np.testing.assert_array_equal(follower.sample(10**12), np.zeros(7))


def test_interpolates_from_current_then_between_points_then_holds(follower):
    p1 = np.full(7, 0.2)
    p2 = np.full(7, 0.6)
    now = 1000 * MS
    follower.load(
        np.array([100 * MS, 300 * MS]), _pts(p1, p2), start_ns=now, now_ns=now, current=np.zeros(7)
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
    follower.load(
        np.array([0, 200 * MS]),
        _pts(np.zeros(7), np.full(7, 0.4)),
        start_ns=now - 100 * MS,
        now_ns=now,
        current=np.full(7, 0.9),
    )
    # first point already passed: no segment from "current"; we are half way along
    np.testing.assert_allclose(follower.sample(now), np.full(7, 0.2))


def test_future_stamp_holds_current_until_then(follower):
    now = 1000 * MS
    follower.load(
        np.array([0]),
        _pts(np.full(7, 0.5)),
        start_ns=now + 100 * MS,
        now_ns=now,
        current=np.full(7, 0.1),
    )
    np.testing.assert_allclose(follower.sample(now), np.full(7, 0.1))
    np.testing.assert_allclose(follower.sample(now + 50 * MS), np.full(7, 0.3))
    np.testing.assert_allclose(follower.sample(now + 100 * MS), np.full(7, 0.5))


def test_new_trajectory_replaces_old_and_hold_resets(follower):
    follower.load(np.array([10 * MS]), _pts(np.full(7, 0.5)), 0, 0, np.zeros(7))
    follower.load(np.array([10 * MS]), _pts(np.full(7, 0.3)), 0, 0, np.zeros(7))
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
    follower.load(np.array([0]), _pts(np.full(7, 0.25)), 0, 0, np.zeros(7))
    with pytest.raises(CommandRejected, match=pattern):
        follower.load(np.array(times, dtype=np.int64), points, 0, 0, np.zeros(7))
    np.testing.assert_allclose(follower.sample(MS), np.full(7, 0.25))


def test_check_arm_vector_names_joint_and_limits(profile):
    q = np.zeros(7)
    q[1] = -2.0
    with pytest.raises(
        CommandRejected, match=r"right_shoulder = -2\.0000 outside limits \[-1\.8500"
    ):
        check_arm_vector(profile, "right", q)
    with pytest.raises(CommandRejected, match="expected 7 values"):
        check_arm_vector(profile, "left", np.zeros(6))
