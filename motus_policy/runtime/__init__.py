"""The ROS-free policy runtime (no rclpy, no torch).

Observation assembly, inference worker, chunk scheduling, interpolation, safety gate, control loop
and their configuration.
"""
