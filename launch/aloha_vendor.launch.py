"""`ros2 launch motus_policy aloha_vendor.launch.py checkpoint:=/path/to/ckpt instruction:="..."`.

The Motus policy on an Agilex-Aloha-2 whose arms and cameras run on the vendor's ROS driver.
Reads config/bringup/aloha_vendor.yaml through motus_policy.bringup, the same description that
`python -m motus_policy.bringup aloha_vendor` runs.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("aloha_vendor")
