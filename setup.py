"""ament_python build of the `motus_policy` ROS 2 package (three Python packages inside).

After `colcon build` in ros2_ws/: `ros2 run motus_policy <node>` and
`ros2 launch motus_policy <file>.launch.py`. Python dependencies are pinned in requirements.txt
(installed by scripts/setup_env.sh); this file only wires packages, data files and entry points.
"""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "motus_policy"

# ROS executables (`ros2 run motus_policy <name>`) and CLIs. tests/test_package.py checks that each
# target imports and has `main`, so nothing here can point at code that is not there.
NODES = {
    "aloha_sim_node": "motus_policy.ros.aloha_sim_node:main",
    "expert_node": "motus_teleop.ros.expert_node:main",
    "piper_arm_node": "motus_policy.ros.piper_arm_node:main",
    "ac_one_relay_node": "motus_policy.ros.ac_one_relay_node:main",
    "realsense_camera_node": "motus_policy.ros.realsense_camera_node:main",
    "teleop_node": "motus_teleop.ros.teleop_node:main",
    "policy_node": "motus_policy.ros.policy_node:main",
    "bag_player_node": "motus_policy.ros.bag_player_node:main",
    "recorder_node": "motus_recorder.ros.recorder_node:main",
    "record_keys": "motus_recorder.ros.record_keys:main",
}
CLIS = {
    "motus-bringup": "motus_policy.bringup.runner:main",
    "motus-demo": "motus_policy.cli.demo:main",
    "motus-eval": "motus_policy.cli.eval:main",
    "motus-train": "motus_policy.cli.train:main",
    "motus-train-vae": "motus_policy.cli.train_vae:main",
    "motus-dataset": "motus_recorder.cli:main",
    "motus-expert": "motus_teleop.expert.__main__:main",
    "motus-lifecycle": "motus_policy.cli.ros.lifecycle:main",
}


def _checkpoint_data_files() -> list[tuple[str, list[str]]]:
    """The embedded checkpoints, to share/motus_policy/checkpoints/<name>/ (one entry per folder).

    Installed as data (not package data) so a plain `colcon build` or `pip install .` puts them
    where motus_recorder.share.embedded_checkpoint_dir looks, under their short names.
    """
    out: dict[str, list[str]] = {}
    for path in sorted(Path("motus_policy/checkpoints").rglob("*")):
        if path.is_file():
            rel = path.parent.relative_to("motus_policy")
            out.setdefault(f"share/{PACKAGE}/{rel.as_posix()}", []).append(path.as_posix())
    return list(out.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["motus_policy*", "motus_teleop*", "motus_recorder*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config/robots", glob("config/robots/*.yaml")),
        (f"share/{PACKAGE}/config/nodes", glob("config/nodes/*.yaml")),
        (f"share/{PACKAGE}/config/bringup", glob("config/bringup/*.yaml")),
        (f"share/{PACKAGE}/config/dds", glob("config/dds/*.xml")),
        *_checkpoint_data_files(),
    ],
    zip_safe=False,
    maintainer="Motus ROS 2 maintainers",
    maintainer_email="maintainers@motus-ros.dev",
    description="Motus unified latent-action world model on ROS 2 (policy, sim, teleop, rec.)",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{k} = {v}" for k, v in {**NODES, **CLIS}.items()],
    },
)
