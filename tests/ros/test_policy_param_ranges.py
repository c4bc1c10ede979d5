"""The policy node's ROS parameter ranges and PolicyRuntimeConfig's validation are one set of
bounds (issue #15: RUNTIME_RANGES was a hand copy that could drift): every numeric field has a
range, values at each ROS bound are accepted by the dataclass, values just outside are refused
with a message naming the field. No DDS: rclpy's message types only."""

from __future__ import annotations

import dataclasses
import math

import pytest

from motus_policy.ros.params import POSITIVE
from motus_policy.ros.policy_params import RUNTIME_RANGES
from motus_policy.runtime.config import PolicyRuntimeConfig


def _numeric_fields() -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(PolicyRuntimeConfig)
        if isinstance(f.default, int | float) and not isinstance(f.default, bool)
    ]


def test_every_numeric_field_has_a_ros_range():
    assert sorted(RUNTIME_RANGES) == sorted(_numeric_fields())


@pytest.mark.parametrize("name", sorted(RUNTIME_RANGES))
def test_ros_range_bounds_are_the_dataclass_bounds(name):
    lo, hi = RUNTIME_RANGES[name]
    integer = isinstance(PolicyRuntimeConfig.__dataclass_fields__[name].default, int)
    inside = [lo] + ([hi] if math.isfinite(hi) else [lo + 1000])
    for v in inside:
        assert getattr(PolicyRuntimeConfig(**{name: v}), name) == v
    if integer:
        outside = [lo - 1, lo + 0.5] + ([hi + 1] if math.isfinite(hi) else [])
    else:
        below = 0.0 if lo == POSITIVE else math.nextafter(lo, -math.inf)  # "> 0" fields
        above = math.nextafter(hi, math.inf) if math.isfinite(hi) else math.inf
        outside = [below, above, math.nan]
    for v in outside + [True]:
        with pytest.raises(ValueError, match=f"^{name}: expected .*, got "):
            PolicyRuntimeConfig(**{name: v})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("n_action_steps", -1,
         "n_action_steps: expected an integer >= 0 (0 = the checkpoint's), got -1"),
        ("num_steps", 0, "num_steps: expected an integer >= 1, got 0"),
        ("velocity_scale", 0.0, "velocity_scale: expected a number in (0, 1], got 0.0"),
        ("limit_tolerance", 0.2, "limit_tolerance: expected a number in [0, 0.1], got 0.2"),
        ("watchdog_inference_s", 0.0,
         "watchdog_inference_s: expected a finite number > 0, got 0.0"),
        ("ramp_in_s", -1.0, "ramp_in_s: expected a finite number >= 0, got -1.0"),
    ],
)  # fmt: skip
def test_error_messages_say_the_range(name, value, message):
    with pytest.raises(ValueError) as info:
        PolicyRuntimeConfig(**{name: value})
    assert str(info.value) == message
