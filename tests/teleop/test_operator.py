import numpy as np
import pytest

from motus_teleop.operator import Episode, ScriptedOperator


class LinePlanner:
    """Plans T steps moving joint 0 linearly: enough to check time indexing."""

    def __init__(self, steps=5):
        self.steps = steps

    def plan(self, start_qpos, object_poses):
        plan = np.repeat(start_qpos[None], self.steps, axis=0)
        plan[:, 0] += 0.1 * np.arange(1, self.steps + 1)
        return plan


def test_plan_steps_follow_sim_time_and_hold_at_the_end():
    op = ScriptedOperator(LinePlanner(), period_ns=20_000_000)
    assert op.command(0) is None
    op.start(Episode(seed=3, start_ns=1_000_000_000), np.zeros(14), np.zeros((1, 7)))
    assert op.command(1_000_000_000)[0] == pytest.approx(0.1)
    assert op.command(1_019_999_999)[0] == pytest.approx(0.1)
    assert op.command(1_020_000_000)[0] == pytest.approx(0.2)
    assert op.command(5_000_000_000)[0] == pytest.approx(0.5)  # held after the end


def test_bad_inputs_are_rejected():
    op = ScriptedOperator(LinePlanner(), period_ns=20_000_000)
    ep = Episode(seed=0, start_ns=0)
    with pytest.raises(ValueError, match="start_qpos"):
        op.start(ep, np.full(14, np.nan), np.zeros((1, 7)))
    with pytest.raises(ValueError, match="object_poses"):
        op.start(ep, np.zeros(14), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="period_ns"):
        ScriptedOperator(LinePlanner(), 0)
