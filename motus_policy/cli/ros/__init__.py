"""ROS clients that the command-line programs drive a graph with (episodes, video, lifecycle)."""
