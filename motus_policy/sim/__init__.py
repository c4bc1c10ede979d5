"""Simulated robots (ROS-free cores): MuJoCo ALOHA from gym-aloha, trajectory following."""
