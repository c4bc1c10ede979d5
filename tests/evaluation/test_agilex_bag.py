"""An AgileX-style bag replays through a profile only (issue #15 §3).

The bag is recorded the vendor's way: per-arm JointState topics /puppet/joint_left|right whose
joints are named joint0..joint6 on BOTH arms, and JPEG CompressedImage cameras on
/camera_{f,l,r}/color/image_raw/compressed (agilexrobotics/cobot_magic
aloha-devel/act/inference.py). The shipped profile config/robots/aloha_agilex_2_vendor.yaml maps
it; nothing else is configured. Expected numbers as in tests/evaluation/test_replay.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.evaluation.bag_reader import StreamMap, index_bag, open_bag
from tests.evaluation.test_replay import A, N, expected_hold_mse_per_joint, replay_cli
from tests.fakes.bags import HW, q_at, write_bag

PROFILE = "aloha_agilex_2_vendor"


@pytest.fixture
def agilex_bag(tmp_path):
    return write_bag(tmp_path / "agilex", storage="mcap", profile=PROFILE, n=N)


def test_agilex_bag_has_the_vendor_layout(agilex_bag):
    with open_bag(agilex_bag) as r:
        topics = {c.topic: c.msgtype for c in r.connections}
        index = index_bag(r, StreamMap.from_profile(_profile()))
    assert topics["/camera_f/color/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert topics["/puppet/joint_left"] == topics["/puppet/joint_right"]
    # each arm read from its own topic although both name their joints joint0..joint6
    left, right = index.joints["left"], index.joints["right"]
    assert np.allclose(left.positions[5], q_at(5 / 30.0)[:7])
    assert np.allclose(right.positions[5], q_at(5 / 30.0)[7:])


def test_agilex_bag_replays_through_the_profile_only(agilex_bag, tmp_path):
    s = replay_cli(
        agilex_bag, tmp_path / "out", "--profile", PROFILE, "--mode", "joint", "--copy-frames"
    )
    assert s["chunks_compared"] == N - A
    assert s["actions"]["mse_per_joint"] == pytest.approx(expected_hold_mse_per_joint(), rel=1e-4)
    assert s["image_hw"]["cam_high"] == list(HW)
    assert s["frames"]["compared"] == (N - A) * A  # JPEG decoded for every compared frame
    report = (tmp_path / "out" / "replay.md").read_text()
    assert "| left/joint0 |" in report and "| right/joint6 |" in report


def _profile():
    from motus_recorder.profile import load_profile

    return load_profile(PROFILE)
