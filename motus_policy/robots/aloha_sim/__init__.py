"""Simulated ALOHA (ROS-free core): MuJoCo ALOHA from gym-aloha, its runner and command checks."""
