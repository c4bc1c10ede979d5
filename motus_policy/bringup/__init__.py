"""One node description for both worlds: ROS launch files and the pip-world process runner."""

from motus_policy.bringup.description import (
    BringupArgument,
    BringupDescription,
    BringupError,
    NodeSpec,
    load_bringup,
)

__all__ = ["BringupArgument", "BringupDescription", "BringupError", "NodeSpec", "load_bringup"]
