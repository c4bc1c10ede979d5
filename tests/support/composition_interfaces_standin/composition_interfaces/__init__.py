"""Test-only stand-in for ROS 2 ``composition_interfaces`` (see ../pyproject.toml)."""
