"""Sim tests render MuJoCo off-screen: EGL unless the caller chose another backend."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
