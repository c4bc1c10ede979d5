"""ROS 2 edge of motus_policy: the only place that imports rclpy and message types."""
