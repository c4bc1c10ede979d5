"""Motus on ROS 2: the policy runtime, the Motus model, simulation, evaluation and training."""
