"""BagPlayer core on a fake clock: ordering, timing, rate scaling, loop, remapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from motus_policy.evaluation.bag_player import BagPlayer, BagPlayerConfig

MSGS = [("/a", 1_000, b"a0"), ("/b", 1_000, b"b0"), ("/a", 101_000, b"a1"), ("/a", 301_000, b"a2")]


def player(fake_clock, msgs=MSGS, **kw) -> BagPlayer:
    p = BagPlayer(lambda: iter(msgs), BagPlayerConfig(**kw), fake_clock)
    p.start()
    return p


def advance_ns(clock, ns):
    clock.now_ns += ns


def test_recorded_timing_and_order(fake_clock):
    p = player(fake_clock)
    assert [m[1] for m in p.due()] == [b"a0", b"b0"]  # both due at start, bag order kept
    assert p.wait_ns() == 100_000
    advance_ns(fake_clock, 99_999)
    assert p.due() == []
    advance_ns(fake_clock, 1)
    assert p.due() == [("/a", b"a1", 101_000)]
    advance_ns(fake_clock, 200_000)
    assert [m[1] for m in p.due()] == [b"a2"]
    assert p.finished and p.wait_ns() is None and p.published == 4


def test_rate_scaling_and_clock(fake_clock):
    p = player(fake_clock, rate=2.0)
    p.due()
    assert p.wait_ns() == 50_000  # 100 us of bag time at 2x
    advance_ns(fake_clock, 150_000)
    assert [m[1] for m in p.due()] == [b"a1", b"a2"]
    assert p.bag_time_ns() == 1_000 + 300_000


def test_loop_repeats_with_one_gap(fake_clock):
    p = player(fake_clock, loop=True)
    got = []
    for _ in range(12):
        got += [(fake_clock.now_ns - 1_000_000_000, m[1]) for m in p.due()]
        advance_ns(fake_clock, p.wait_ns())
    # pass 2 starts span (300 us) + first non-zero gap (100 us) after pass 1
    assert [g[1] for g in got[:8]] == [b"a0", b"b0", b"a1", b"a2"] * 2
    second = [g[0] for g in got[4:8]]
    assert second == [400_000, 400_000, 500_000, 700_000]


def test_out_of_order_counted_and_remap(fake_clock):
    msgs = [("/a", 1_000, b"x"), ("/b", 500, b"y")]
    p = player(fake_clock, msgs=msgs, remap=(("/b", "/robot/b"),))
    out = p.due()
    assert [m[0] for m in out] == ["/a", "/robot/b"] and p.out_of_order == 1


def test_bad_config():
    with pytest.raises(ValueError, match="rate"):
        BagPlayerConfig(rate=0)
    with pytest.raises(ValueError, match="remap"):
        BagPlayerConfig(remap=(("a", "/b"),))


def test_profile_remap(tmp_path):
    import yaml

    from motus_policy.evaluation.bag_player import profile_remap
    from motus_recorder.profile import load_profile

    REPO_ROOT = Path(__file__).resolve().parents[2]

    data = yaml.safe_load((REPO_ROOT / "config/robots/aloha_agilex_2.yaml").read_text())
    for cam in data["cameras"]:
        cam["topic"] = f"/other/{cam['name']}"
    data["arms"][0]["state_topic"] = "/other/left"
    (tmp_path / "src.yaml").write_text(yaml.safe_dump(data))
    pairs = dict(
        profile_remap(load_profile(tmp_path / "src.yaml"), load_profile("aloha_agilex_2"))
    )
    assert pairs == {
        "/other/cam_high": "/camera_f/color/image_raw",
        "/other/cam_left_wrist": "/camera_l/color/image_raw",
        "/other/cam_right_wrist": "/camera_r/color/image_raw",
        "/other/left": "/puppet/joint_left",
    }
    data["arms"][1]["state_topic"] = "/other/left"
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="combined JointState"):
        profile_remap(load_profile(tmp_path / "both.yaml"), load_profile("aloha_agilex_2"))
