"""Where the data shipped with this code lives: robot profiles, bring-ups, DDS profile, checkpoint.

The ROS 2 package is ``motus_policy``; its data files (``config/``, ``launch/``, the embedded
checkpoint) are installed by ``setup.py`` to ``<prefix>/share/motus_policy/`` (the ament package
share directory), while the Python packages go to ``<prefix>/lib/python3.X/site-packages/``. In
the source tree (a checkout, an editable install or ``colcon build --symlink-install``) the same
files sit next to the packages. :func:`share_dir` finds the copy that belongs to the running code:

1. the source tree, when ``config/robots/`` sits next to the Python packages (development);
2. ``<prefix>/share/motus_policy`` of the prefix the code is installed into (a plain
   ``colcon build`` install space, or ``pip install .`` into a venv);
3. the ament index (``ament_index_python.get_package_share_directory``, which reads
   ``AMENT_PREFIX_PATH``; set by sourcing a ROS 2 workspace), for unusual layouts.

``MOTUS_SHARE_DIR`` overrides all three (a folder with the same layout).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "motus_policy"
"""ROS 2 package name (package.xml); its share directory holds the data files."""

ENV_OVERRIDE = "MOTUS_SHARE_DIR"

_MARKER = Path("config") / "robots"
_CODE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding motus_recorder/


def _installed_share(code_root: Path) -> Path | None:
    """``<prefix>/share/motus_policy`` for code in ``<prefix>/lib/pythonX.Y/site-packages``."""
    if code_root.name not in ("site-packages", "dist-packages"):
        return None
    prefix = code_root.parents[2] if code_root.parent.name.startswith("python") else None
    if prefix is None:
        return None
    share = prefix / "share" / PACKAGE
    return share if (share / _MARKER).is_dir() else None


def _ament_share() -> Path | None:
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:
        return None
    try:
        share = Path(get_package_share_directory(PACKAGE))
    except (
        PackageNotFoundError,
        LookupError,
        ValueError,
        OSError,
    ):  # OSError: no AMENT_PREFIX_PATH
        return None
    return share if (share / _MARKER).is_dir() else None


def share_dir() -> Path:
    """The package share directory that belongs to the running code (see the module docstring).

    Returns:
        an absolute folder holding ``config/robots``, ``config/bringup``, ``config/nodes``,
        ``config/dds`` and (when installed) ``checkpoints/``.

    Raises:
        FileNotFoundError: ``MOTUS_SHARE_DIR`` names a folder without ``config/robots``, or no
            candidate holds the data (the message lists every place looked at).
    """
    override = os.environ.get(ENV_OVERRIDE)
    if override:
        p = Path(override).expanduser().resolve()
        if not (p / _MARKER).is_dir():
            raise FileNotFoundError(
                f"{ENV_OVERRIDE}={override}: expected a folder holding {_MARKER}/, found none"
            )
        return p
    if (_CODE_ROOT / _MARKER).is_dir():
        return _CODE_ROOT
    for found in (_installed_share(_CODE_ROOT), _ament_share()):
        if found is not None:
            return found
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} data files ({_MARKER}/): not in the source tree "
        f"({_CODE_ROOT}), not in {_CODE_ROOT}/../../../share/{PACKAGE} (installed prefix "
        f"{sys.prefix}), and the ament index has no {PACKAGE} (source the workspace's "
        f"install/setup.bash, or set {ENV_OVERRIDE})"
    )


def embedded_checkpoint_dir(name: str = "aloha_sim_tiny") -> Path:
    """Folder of a checkpoint shipped with the package, by its short name.

    Source tree: ``motus_policy/checkpoints/<name>``; installed: ``<share>/checkpoints/<name>``.

    Raises:
        FileNotFoundError: no shipped checkpoint of that name (the message lists the shipped ones).
    """
    root = share_dir()
    candidates = (root / PACKAGE / "checkpoints", root / "checkpoints")
    for base in candidates:
        if (base / name / "config.json").is_file():
            return base / name
    shipped = sorted(
        {p.parent.name for base in candidates if base.is_dir() for p in base.glob("*/config.json")}
    )
    raise FileNotFoundError(f"no shipped checkpoint {name!r}; shipped: {shipped}")
