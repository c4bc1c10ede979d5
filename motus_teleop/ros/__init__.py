"""ROS 2 edge of motus_teleop: the only place that imports rclpy and message types."""
