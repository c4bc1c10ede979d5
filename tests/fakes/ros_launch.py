"""`ros2 launch <package> <file> [name:=value ...]` without ros2cli (not on PyPI), for tests.

Run as a script (``python tests/fakes/ros_launch.py motus_policy sim.launch.py task:=insertion``)
so that the code under test comes from PYTHONPATH / the install space, not from this checkout.
The launch file is found in the package's share directory through the ament index, and run by
the real ``launch`` / ``launch_ros`` LaunchService, as ros2launch does; SIGINT shuts it down.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    """Run one launch file until it ends or SIGINT arrives; returns LaunchService's exit code."""
    from ament_index_python.packages import get_package_share_directory
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    from launch import LaunchDescription, LaunchService

    package, file_name, *args = argv
    path = os.path.join(get_package_share_directory(package), "launch", file_name)
    launch_args = [tuple(a.split(":=", 1)) for a in args]
    service = LaunchService(argv=args)
    service.include_launch_description(
        LaunchDescription(
            [
                IncludeLaunchDescription(
                    PythonLaunchDescriptionSource(path), launch_arguments=launch_args
                )
            ]
        )
    )
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
