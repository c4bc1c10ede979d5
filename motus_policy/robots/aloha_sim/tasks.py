"""The simulated tasks, importable without MuJoCo (for configs, CLIs and their ``--help``)."""

TASKS = ("transfer_cube", "insertion")
"""gym-aloha joint-space tasks (``gym_aloha/AlohaTransferCube-v0``, ``AlohaInsertion-v0``)."""
