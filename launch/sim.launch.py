"""Simulated ALOHA + Motus policy: `ros2 launch motus_policy sim.launch.py task:=insertion`.

Reads config/bringup/sim.yaml through motus_policy.bringup, the same description that
`python -m motus_policy.bringup sim` runs, so the two cannot drift.
"""

from motus_policy.ros.launch_support import generate_description_launch


def generate_launch_description():
    return generate_description_launch("sim")
