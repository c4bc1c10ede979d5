"""ROS at the edge, torch inside the model (DESIGN.md §2), checked by parsing every module."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("motus_policy", "motus_teleop", "motus_recorder")
ROS_ROOTS = {
    "rclpy",
    "launch",
    "launch_ros",
    "rosbag2_py",
    "message_filters",
    "cv_bridge",
    "rosidl_runtime_py",
    "builtin_interfaces",
}
TORCH_ROOTS = {"torch", "torchvision", "diffusers", "transformers", "accelerate", "safetensors"}
# Where torch may be imported, and why:
TORCH_ALLOWED = (
    "motus_policy/model/",  # the network, encoders, sampler, checkpoint loading
    "motus_policy/training/",  # stage-3 fine-tuning
    "motus_policy/backends/motus.py",  # the in-process Motus PolicyBackend (numpy in, numpy out)
    "motus_recorder/writers/torch_io.py",  # .pt files of the Motus format need torch.save/load
)


def _roots(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def _modules():
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), str(path))


def test_ros_imports_only_under_ros_subpackages():
    bad = []
    for rel, tree in _modules():
        if "/ros/" in rel:
            continue
        for line, root in _roots(tree):
            if root in ROS_ROOTS or root.endswith("_msgs") or root.endswith("_srvs"):
                bad.append(f"{rel}:{line} imports {root}")
    assert not bad, "ROS imports outside */ros/:\n" + "\n".join(bad)


def test_torch_imports_only_in_the_model():
    bad = []
    for rel, tree in _modules():
        if rel.startswith(TORCH_ALLOWED):
            continue
        for line, root in _roots(tree):
            if root in TORCH_ROOTS:
                bad.append(f"{rel}:{line} imports {root}")
    assert not bad, "torch-stack imports outside the model:\n" + "\n".join(bad)


def test_boundary_check_sees_violations(tmp_path):
    """The checker itself flags a message import and a torch import (guards against a no-op)."""
    tree = ast.parse("import rclpy\nfrom sensor_msgs.msg import Image\nimport torch.nn as nn\n")
    roots = [r for _, r in _roots(tree)]
    assert roots == ["rclpy", "sensor_msgs", "torch"]
