"""Build a ROS 2 LaunchDescription from a bring-up description (config/bringup/<name>.yaml).

Used by every file in launch/. Needs the ROS `launch` / `launch_ros` packages, which exist in a
ROS installation but not on PyPI (docs/architecture.md §7); the pip-world equivalent is
``python -m motus_policy.bringup <name>``, which reads the same description.
"""

from __future__ import annotations

import os

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from motus_policy.bringup.description import load_bringup
from motus_recorder.share import share_dir

PACKAGE = "motus_policy"


DDS_PROFILE_VAR = "FASTRTPS_DEFAULT_PROFILES_FILE"


def generate_description_launch(name: str) -> LaunchDescription:
    """LaunchDescription starting the nodes of bring-up description ``name``.

    Declares one launch argument per description argument; node parameters are the
    description's parameter files plus its overrides with the arguments substituted. Data files
    come from :func:`motus_recorder.share.share_dir` (the install space's
    ``share/motus_policy``, or the source tree). The shipped Fast DDS profile is set only when
    the environment names none (a user's ``FASTRTPS_DEFAULT_PROFILES_FILE`` is kept).
    """
    share = str(share_dir())
    desc = load_bringup(name, base_dir=share)

    def _nodes(context):
        values = {a.name: LaunchConfiguration(a.name).perform(context) for a in desc.arguments}
        return [
            Node(
                package=PACKAGE,
                executable=spec.executable,
                name=spec.name,
                parameters=[*(str(f) for f in spec.parameter_files), dict(spec.parameters)],
                remappings=list(spec.remappings.items()),
                output="screen",
            )
            for spec in desc.resolve(values)
        ]

    actions = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
        for a in desc.arguments
    ]
    if not os.environ.get(DDS_PROFILE_VAR):  # a user's own Fast DDS profile wins
        actions.append(
            SetEnvironmentVariable(DDS_PROFILE_VAR, f"{share}/config/dds/fastdds_shm.xml")
        )
    actions.append(OpaqueFunction(function=_nodes))
    return LaunchDescription(actions)
