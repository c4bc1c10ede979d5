"""Parameters over DDS as ``ros2 param`` sees them (issue #15 §7): array parameters have values
(GetParameters returned nothing for arrays declared by type only), and numeric parameters carry
the config's validation bounds as FloatingPointRange / IntegerRange, so DescribeParameters shows
them and rclpy refuses an out-of-range set. Real nodes as subprocesses, real rclpy clients."""

from __future__ import annotations

import math

import pytest

NODES = {
    "teleop": ("motus_teleop.ros.teleop_node", ["-p", "profile:=aloha_agilex_2"]),
    "realsense_camera": (
        "motus_policy.ros.realsense_camera_node",
        ["-p", "fake_cameras:=true", "-p", "profile:=aloha_agilex_2"],
    ),
    "policy": (
        "motus_policy.ros.policy_node",
        ["-p", "image_height:=48", "-p", "image_width:=64"],
    ),
}


def _call(node, srv_type, name, request, timeout_s=20.0):
    from rclpy.executors import SingleThreadedExecutor

    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=timeout_s), f"{name} not available"
    fut = client.call_async(request)
    ex = SingleThreadedExecutor(context=node.context)
    ex.add_node(node)
    ex.spin_until_future_complete(fut, timeout_sec=timeout_s)
    ex.remove_node(node)
    ex.shutdown()
    node.destroy_client(client)
    assert fut.done(), f"{name}: no answer"
    return fut.result()


def _values(node, target, names):
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    res = _call(
        node, GetParameters, f"/{target}/get_parameters", GetParameters.Request(names=names)
    )
    assert len(res.values) == len(names), f"{target}: GetParameters returned {res.values}"
    return {n: parameter_value_to_python(v) for n, v in zip(names, res.values, strict=True)}


def _describe(node, target, names):
    from rcl_interfaces.srv import DescribeParameters

    req = DescribeParameters.Request(names=names)
    res = _call(node, DescribeParameters, f"/{target}/describe_parameters", req)
    return {d.name: d for d in res.descriptors}


def _set(node, target, name, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    return _call(node, SetParameters, f"/{target}/set_parameters", req).results[0]


@pytest.mark.ros
@pytest.mark.timeout(240)
def test_arrays_have_values_and_numbers_have_ranges(spawn_node, ros_context):
    from rclpy.node import Node

    from motus_recorder.profile import load_profile

    procs = {name: spawn_node(module, *args) for name, (module, args) in NODES.items()}
    for p in procs.values():
        p.wait_for("READY", 120)
    probe = Node("param_probe", context=ros_context)
    prof = load_profile("aloha_agilex_2")

    # arrays: values, as the node uses them (profile-derived defaults)
    arrays = ["leader_topics", "leader_joint_names", "scale", "offset", "leader_gripper_min"]
    got = _values(probe, "teleop", arrays)
    assert got["leader_topics"] == [a.driver["leader_topic"] for a in prof.arms]
    assert got["leader_joint_names"] == [n for a in prof.arms for n in a.joint_state_names]
    assert got["scale"] == [1.0] * 14 and got["offset"] == [0.0] * 14
    assert got["leader_gripper_min"] == [float(a.gripper.min) for a in prof.arms]
    assert _values(probe, "realsense_camera", ["cameras"])["cameras"] == list(prof.camera_names)

    # ranges: the dataclasses' bounds; an out-of-range set is refused, an in-range one accepted
    cases = [  # node, parameter, (from, to), out-of-range value, in-range value (None: read-only)
        ("teleop", "stale_timeout_s", (1e-9, math.inf), -1.0, 0.2),
        ("teleop", "rate_hz", (0.0, math.inf), -5.0, 50.0),
        ("realsense_camera", "retry_max_s", (1e-9, math.inf), 0.0, 4.0),
        ("motus_policy", "ensemble_coeff", (0.0, math.inf), -0.5, 0.1),
        ("motus_policy", "num_steps", (1, 2**63 - 1), 0, 5),
        ("motus_policy", "velocity_scale", (1e-9, 1.0), 1.5, None),
        ("motus_policy", "limit_tolerance", (0.0, 0.1), 0.2, None),
    ]
    for target, name, (lo, hi), bad, good in cases:
        d = _describe(probe, target, [name])[name]
        (r,) = d.integer_range if isinstance(bad, int) else d.floating_point_range
        assert (r.from_value, r.to_value) == (lo, hi), (target, name, r)
        before = _values(probe, target, [name])[name]
        res = _set(probe, target, name, bad)
        assert not res.successful, (target, name, bad)
        assert _values(probe, target, [name])[name] == before
        if good is not None:
            assert "range" in res.reason, (target, name, res.reason)
            res = _set(probe, target, name, good)
            assert res.successful, (target, name, good, res.reason)
            assert _values(probe, target, [name])[name] == good
    probe.destroy_node()
