"""Build a ROS 2 LaunchDescription from a bring-up description (config/bringup/<name>.yaml).

Used by every file in launch/. Needs the ROS `launch` / `launch_ros` packages, which exist in a
ROS installation but not on PyPI (docs/architecture.md §7); the pip-world equivalent is
``python -m motus_policy.bringup <name>``, which reads the same description.
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, OpaqueFunction, SetEnvironmentVariable
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from motus_policy.bringup.description import load_bringup

PACKAGE = "motus_policy"


def _share_dir() -> str:
    from ament_index_python.packages import get_package_share_directory

    return get_package_share_directory(PACKAGE)


def generate_description_launch(name: str) -> LaunchDescription:
    """LaunchDescription starting the nodes of bring-up description ``name``.

    Declares one launch argument per description argument; node parameters are the
    description's parameter files plus its overrides with the arguments substituted.
    """
    share = _share_dir()
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
    actions.append(
        SetEnvironmentVariable(
            "FASTRTPS_DEFAULT_PROFILES_FILE", f"{share}/config/dds/fastdds_shm.xml"
        )
    )
    actions.append(OpaqueFunction(function=_nodes))
    return LaunchDescription(actions)
