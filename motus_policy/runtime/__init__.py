"""The ROS-free policy runtime (no rclpy, no torch).

Observation assembly, inference worker, chunk scheduling (interpolating with the trajectory core
of :mod:`motus_policy.robots.trajectory`), safety gate, control loop and their configuration.
"""
