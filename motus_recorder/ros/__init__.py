"""ROS 2 edge of motus_recorder: the only place that imports rclpy and message types."""
