"""Sim + scripted expert + recorder: `ros2 launch motus_policy record_sim.launch.py`.

Reads config/bringup/record_sim.yaml, like `python -m motus_policy.bringup record_sim`; drive
episodes with `python -m motus_teleop.record_demos`.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("record_sim")
