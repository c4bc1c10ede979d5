"""`ros2 launch motus_policy ac_one.launch.py checkpoint:=/path/to/ckpt instruction:="..."`.

Reads config/bringup/ac_one.yaml through motus_policy.bringup, the same description that
`python -m motus_policy.bringup ac_one` runs.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("ac_one")
