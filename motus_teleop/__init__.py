"""Teleoperation: leader->follower mapping and the scripted experts that act as sim operators."""
