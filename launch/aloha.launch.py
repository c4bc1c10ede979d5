"""`ros2 launch motus_policy aloha.launch.py checkpoint:=/path/to/ckpt instruction:="..."`.

Reads config/bringup/aloha.yaml through motus_policy.bringup, the same description that
`python -m motus_policy.bringup aloha` runs.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("aloha")
