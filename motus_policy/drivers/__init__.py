"""Robot I/O drivers (ROS-free cores): Piper arms over piper-sdk, RealSense cameras."""
