"""Simulated ALOHA + scripted expert: `ros2 launch motus_policy sim_expert.launch.py`.

Reads config/bringup/sim_expert.yaml, like `python -m motus_policy.bringup sim_expert`.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("sim_expert")
