"""Scripted ALOHA expert: real MuJoCo (gym-aloha joint-space tasks), no mocks."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.robots.aloha_sim.sim import AlohaSim, AlohaSimConfig
from motus_recorder.profile import load_profile
from motus_teleop.expert import ExpertConfig, ScriptedExpert, make_expert, run_episode


@pytest.fixture(scope="module")
def experts() -> dict[str, ScriptedExpert]:
    return {task: make_expert(task) for task in ("transfer_cube", "insertion")}


def _start(task: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    sim = AlohaSim(AlohaSimConfig(task=task), load_profile("aloha_sim"))
    sim.reset(seed)
    start, poses = sim.qpos14(), sim.object_poses()
    sim.close()
    return start, poses


@pytest.mark.parametrize(
    ("task", "seed"),
    [("transfer_cube", 0), ("transfer_cube", 1007), ("insertion", 3), ("insertion", 1021)],
)
def test_plan_succeeds_when_executed(experts, task, seed):
    result = run_episode(task, seed, experts[task])
    assert result.success, f"{task} seed {seed}: max reward {result.max_reward}"
    assert result.rewards.shape == (experts[task].config.episode_steps,)
    # The task ends holding the object: the final reward is still the maximum.
    assert result.rewards[-1] == 4


@pytest.mark.parametrize("task", ["transfer_cube", "insertion"])
def test_plan_within_profile_limits(experts, task):
    profile = load_profile("aloha_sim")
    start, poses = _start(task, 11)
    plan = experts[task].plan(start, poses)
    assert plan.dtype == np.float64
    assert plan.ndim == 2 and plan.shape[1] == 14
    assert 0 < len(plan) <= experts[task].config.episode_steps
    assert np.all(np.isfinite(plan))
    assert np.all(plan >= profile.position_min) and np.all(plan <= profile.position_max)
    steps = np.abs(np.diff(np.vstack([start, plan]), axis=0))
    assert np.all(steps <= profile.velocity_max * 0.02 + 1e-12)


def test_same_seed_gives_identical_plan(experts):
    start, poses = _start("insertion", 5)
    first = experts["insertion"].plan(start, poses)
    again = make_expert("insertion").plan(start.copy(), poses.copy())
    assert np.array_equal(first, again)


def test_plan_depends_on_object_pose(experts):
    start, poses = _start("transfer_cube", 0)
    moved = poses.copy()
    moved[0, 0] += 0.05
    assert not np.array_equal(
        experts["transfer_cube"].plan(start, poses), experts["transfer_cube"].plan(start, moved)
    )


def test_plan_rejects_bad_inputs(experts):
    start, poses = _start("transfer_cube", 0)
    with pytest.raises(ValueError, match="object_poses"):
        experts["transfer_cube"].plan(start, np.zeros((2, 7)))
    with pytest.raises(ValueError, match="start_qpos"):
        experts["transfer_cube"].plan(start[:13], poses)
    bad = start.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="start_qpos"):
        experts["transfer_cube"].plan(bad, poses)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("task", "stack_blocks"),
        ("joint_speed_fraction", 1.5),
        ("control_period_s", 0.0),
        ("gripper_closed", 1.0),
        ("settle_s", -0.1),
    ],
)
def test_config_rejects_bad_values(field, value):
    kwargs = {"task": "transfer_cube", field: value}
    with pytest.raises(ValueError, match=field):
        ExpertConfig(**kwargs)


def test_config_defaults_episode_length_from_task():
    assert ExpertConfig(task="transfer_cube").episode_steps == 400
    assert ExpertConfig(task="insertion").episode_steps == 500
