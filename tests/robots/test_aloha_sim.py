"""AlohaSim on real MuJoCo: gym-aloha seeding parity, command checks, stepping, rendering."""

from __future__ import annotations

import gym_aloha  # noqa: F401 - registers the gym_aloha/* envs
import gymnasium as gym
import mujoco
import numpy as np
import pytest

from motus_policy.robots.aloha_sim.sim import (
    CONTROL_PERIOD_NS,
    AlohaSim,
    AlohaSimConfig,
    CommandRejected,
)
from motus_recorder.profile import load_profile

GYM_IDS = {
    "transfer_cube": "gym_aloha/AlohaTransferCube-v0",
    "insertion": "gym_aloha/AlohaInsertion-v0",
}


@pytest.fixture(scope="module")
def profile():
    return load_profile("aloha_sim")


@pytest.fixture
def sim(profile):
    s = AlohaSim(AlohaSimConfig(), profile)
    s.reset(0)
    return s


def _hold(sim: AlohaSim) -> np.ndarray:
    a = sim.qpos14()
    a[[6, 13]] = np.clip(a[[6, 13]], 0.0, 1.0)
    return a


# -- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [("task", "stack"), ("image_height", -1), ("image_width", 1.5), ("start_time_s", 0.0)],
)
def test_config_rejects_bad_fields(field, value):
    with pytest.raises(ValueError, match=field):
        AlohaSimConfig(**{field: value})


def test_unknown_camera_is_rejected(profile):
    with pytest.raises(KeyError, match="cam_nope"):
        AlohaSim(AlohaSimConfig(cameras=("cam_nope",)), profile)


# -- reset / seeding ------------------------------------------------------------------------
def test_reset_same_seed_gives_identical_state(sim):
    sim.reset(3)
    q1, o1 = sim.qpos14(), sim.object_poses()
    sim.step(_hold(sim))
    sim.reset(5)
    assert not np.array_equal(sim.object_poses(), o1)
    sim.reset(3)
    np.testing.assert_array_equal(sim.qpos14(), q1)
    np.testing.assert_array_equal(sim.object_poses(), o1)
    assert sim.seed == 3 and sim.episode_steps == 0 and sim.reward() == 0.0 and not sim.success


@pytest.mark.parametrize("task", ["transfer_cube", "insertion"])
def test_reset_matches_gym_aloha_env(profile, task):
    env = gym.make(GYM_IDS[task], obs_type="pixels_agent_pos")
    sim = AlohaSim(AlohaSimConfig(task=task), profile)
    for seed in (0, 42):
        obs, _ = env.reset(seed=seed)
        sim.reset(seed)
        gym_qpos = env.unwrapped._env.physics.data.qpos
        np.testing.assert_array_equal(sim.physics.data.qpos, gym_qpos)
        np.testing.assert_array_equal(sim.qpos14(), obs["agent_pos"])
        assert sim.object_poses().shape == ((1 if task == "transfer_cube" else 2), 7)
        np.testing.assert_array_equal(sim.object_poses().ravel(), gym_qpos[16:])
    # and the same dynamics: a few identical steps give identical states and rewards
    action = sim.qpos14()
    action[1] += 0.2
    action[[6, 13]] = 1.0
    for _ in range(3):
        _, r_gym, *_ = env.step(action)
        r = sim.step(action)
        assert r == r_gym
    np.testing.assert_array_equal(sim.physics.data.qpos, env.unwrapped._env.physics.data.qpos)
    env.close()


def test_sim_time_starts_at_offset_and_is_monotonic_across_resets(sim):
    t0 = sim.sim_time_ns
    assert t0 == 1_000_000_000
    sim.step(_hold(sim))
    assert sim.sim_time_ns == t0 + CONTROL_PERIOD_NS == t0 + 20_000_000
    sim.reset(1)
    assert sim.sim_time_ns == t0 + 2 * CONTROL_PERIOD_NS


# -- stepping -------------------------------------------------------------------------------
def test_step_moves_arm_toward_target(sim):
    target = _hold(sim)
    target[0] += 0.3  # left waist
    target[7] -= 0.3  # right waist
    start = sim.qpos14()
    for _ in range(50):
        sim.step(target)
    q = sim.qpos14()
    assert abs(q[0] - target[0]) < 0.25 * abs(start[0] - target[0])
    assert abs(q[7] - target[7]) < 0.25 * abs(start[7] - target[7])
    np.testing.assert_array_equal(sim.last_target, target)


@pytest.mark.parametrize(
    ("index", "value", "pattern"),
    [
        (2, float("nan"), "left_elbow.*nan"),
        (8, 5.0, r"right_shoulder.*5\.0000 outside \[-1\.8500, 1\.2566\]"),
        (13, 1.5, r"right_gripper.*outside \[0\.0000, 1\.0000\]"),
    ],
)
def test_bad_command_is_rejected_and_not_applied(sim, index, value, pattern):
    qpos, t = sim.physics.data.qpos.copy(), sim.sim_time_ns
    a = _hold(sim)
    a[index] = value
    with pytest.raises(CommandRejected, match=pattern):
        sim.step(a)
    np.testing.assert_array_equal(sim.physics.data.qpos, qpos)
    assert sim.sim_time_ns == t and sim.episode_steps == 0


def test_command_rejected_is_a_value_error():
    assert issubclass(CommandRejected, ValueError)


# -- rendering ------------------------------------------------------------------------------
@pytest.fixture
def render_calls(monkeypatch):
    calls = []
    real = mujoco.mjr_render

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mujoco, "mjr_render", counting)
    return calls


def test_step_and_reset_never_render(sim, render_calls):
    a = _hold(sim)
    for _ in range(5):
        sim.step(a)
    sim.reset(2)
    assert render_calls == []


def test_render_returns_listed_cameras_at_configured_size(profile, render_calls):
    sim = AlohaSim(AlohaSimConfig(image_height=120, image_width=160), profile)
    sim.reset(0)
    images = sim.render()
    assert list(images) == list(profile.camera_names)
    for img in images.values():
        assert img.shape == (120, 160, 3) and img.dtype == np.uint8
        assert img.std() > 5  # a scene, not a blank frame
    assert len(render_calls) == 3
    one = sim.render(["cam_left_wrist"])
    assert list(one) == ["cam_left_wrist"]
    with pytest.raises(KeyError, match="cam_nope"):
        sim.render(["cam_nope"])


def test_render_defaults_to_profile_size_and_shadows_off(profile):
    sim = AlohaSim(AlohaSimConfig(cameras=("cam_high",)), profile)
    sim.reset(0)
    assert (sim.physics.model.light_castshadow == 0).all()
    img = sim.render()["cam_high"]
    cam = profile.camera("cam_high")
    assert img.shape == (cam.height, cam.width, 3)
