"""The robot side (ROS-free cores).

Piper arms over piper-sdk (``piper/``), RealSense cameras (``realsense/``), the MuJoCo ALOHA
simulation (``aloha_sim/``) and the joint-trajectory core they share (``trajectory``).
"""
