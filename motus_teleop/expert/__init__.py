"""Scripted experts for the simulated ALOHA (our sim operator for demonstrations and demos).

They plan whole episodes in tool space with IK on a private copy of the gym-aloha physics and
emit smooth 50 Hz joint targets in the 14-D layout (``motus_recorder.schema``).

dm_control picks its OpenGL backend when first imported; without ``MUJOCO_GL`` it tries GLFW,
which needs an X display, so EGL (headless) is the default here (docs/platform.md §9).
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from motus_teleop.expert.config import ExpertConfig
from motus_teleop.expert.episode import EpisodeResult, run_episode
from motus_teleop.expert.expert import ScriptedExpert, make_expert

__all__ = ["EpisodeResult", "ExpertConfig", "ScriptedExpert", "make_expert", "run_episode"]
