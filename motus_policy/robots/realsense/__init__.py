"""RealSense cameras over pyrealsense2: the driver core and a software camera rig."""
