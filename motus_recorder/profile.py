"""Robot profiles: every topic, joint, camera, rate and limit of one robot, loaded from YAML.

A profile lives in ``config/robots/<name>.yaml``. No topic name, joint order or limit is a
literal in code: nodes, the recorder, the policy and the evaluators all read them from a
:class:`RobotProfile`.
Loading validates every field and raises :class:`ProfileError` naming the offending field path
(e.g. ``arms[1].position_max_rad[3]``) with what was expected and what was found.

Units are in the field names: ``_hz`` (Hz), ``_s`` (seconds), ``_rad`` (radians), ``_rad_s``
(rad/s).
Gripper values are in the profile's ``gripper.unit`` (``normalized`` 0 closed .. 1 open, ``m`` for
finger opening in metres, ``rad`` for vendor joint angles).

Joint names are scoped per arm: both arms may publish the same names (AgileX's ``joint0..joint6``,
piper_ros's ``joint1..joint6`` + ``gripper``), since every consumer looks an arm's names up in
that arm's own JointState topic. Names must be unique within an arm, and across arms only where
two arms share a topic. :attr:`RobotProfile.joint_names` (labels of the 14-D layout) prefixes
``<arm>/`` when the arms share names, so labels in logs and datasets stay unambiguous.

Topic names may be absolute (``/puppet/joint_left``) or relative (``left_arm/joint_states``). A
relative name resolves in the node's namespace, so ``--ros-args -r __ns:=/robot1`` moves the
robot's topics with the node (two robots on one graph); :func:`load_profile` resolves them against
``namespace`` (``/`` unless a node passes its own, see :meth:`RobotProfile.in_namespace`).

Cameras carry ``transport``: ``raw`` (sensor_msgs/Image) or ``compressed``
(sensor_msgs/CompressedImage, JPEG / PNG, as AgileX's ``/camera_f/color/image_raw/compressed``);
when the field is left out it is ``compressed`` for a topic ending in ``/compressed`` (the
image_transport naming) and ``raw`` otherwise.

``command_interface`` selects how commands leave the policy (:data:`COMMAND_INTERFACES`):
``joint_state`` (a JointState stream per arm on ``command_topic``, 6 joints + gripper),
``joint_trajectory`` (a JointTrajectory per arm on ``trajectory_topic`` naming the 7 joints, as
the sim takes it) or ``joint_trajectory_controller`` (the ros2_control layout: the 6 arm joints
on ``trajectory_topic``, as a ``joint_trajectory_controller`` configured for the arm joints
accepts it, and the gripper as std_msgs/Float64MultiArray on ``gripper_command_topic``, a
``forward_command_controller`` / ``JointGroupPositionController``'s ``~/commands``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from motus_recorder import schema
from motus_recorder.share import share_dir


def profile_dir() -> Path:
    """Folder of the shipped profiles: ``<share>/config/robots`` (see motus_recorder.share)."""
    return share_dir() / "config" / "robots"


GRIPPER_UNITS = ("normalized", "m", "rad")
COMMAND_INTERFACES = ("joint_state", "joint_trajectory", "joint_trajectory_controller")
ENCODINGS = ("rgb8", "bgr8")
TRANSPORTS = ("raw", "compressed")
_TOPIC = re.compile(r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*")
"""A ROS 2 topic name without substitutions (design.ros2.org "Topic and Service name mapping"):
tokens of letters, digits and underscores, not starting with a digit, separated by ``/``;
absolute with a leading ``/``, relative without."""


def resolve_topic(topic: str, namespace: str) -> str:
    """Absolute name of ``topic`` in ``namespace`` (``/`` or ``/robot1``); absolute stays as is.

    Raises:
        ValueError: ``namespace`` is not absolute.
    """
    if not namespace.startswith("/"):
        raise ValueError(f"namespace: expected an absolute namespace (/robot1), got {namespace!r}")
    if topic.startswith("/"):
        return topic
    return f"{namespace.rstrip('/')}/{topic}"


class ProfileError(ValueError):
    """A robot profile is malformed; the message names the field, expected and found values."""


@dataclass(frozen=True)
class GripperProfile:
    """One gripper: its joint name in JointState messages, unit, range and speed limit."""

    joint_name: str
    unit: str
    min: float
    max: float
    velocity_max_per_s: float
    """Largest commanded change per second, in ``unit`` per second."""


@dataclass(frozen=True)
class ArmProfile:
    """One arm: topics, 6 joint names in 14-D order, limits and its gripper."""

    name: str
    joint_names: tuple[str, ...]
    state_topic: str
    """sensor_msgs/JointState feedback from the driver (joints + gripper)."""
    command_topic: str
    """sensor_msgs/JointState position command stream (AgileX/piper style)."""
    trajectory_topic: str
    """trajectory_msgs/JointTrajectory command (JTC style); empty for a robot without one
    (allowed only with ``command_interface: joint_state``)."""
    position_min_rad: tuple[float, ...]
    position_max_rad: tuple[float, ...]
    velocity_max_rad_s: tuple[float, ...]
    gripper: GripperProfile
    driver: Mapping[str, Any] = field(default_factory=dict)
    """Driver-specific settings (CAN interface for Piper, vendor topic names, ...)."""
    gripper_command_topic: str = ""
    """std_msgs/Float64MultiArray gripper position command (``command_interface:
    joint_trajectory_controller``: a forward_command_controller's ``~/commands``); empty when
    unused."""

    @property
    def joint_state_names(self) -> tuple[str, ...]:
        """The arm's 7 names as in its JointState messages: 6 joints, then the gripper joint."""
        return (*self.joint_names, self.gripper.joint_name)


@dataclass(frozen=True)
class CameraProfile:
    """One camera stream."""

    name: str
    topic: str
    height: int
    width: int
    encoding: str
    rate_hz: float
    staleness_s: float
    """A frame older than this is stale: the policy holds and says why."""
    source: str
    """Where frames come from: a MuJoCo camera name (sim), a RealSense serial number, or a vendor
    topic description."""
    transport: str = "raw"
    """``raw``: sensor_msgs/Image (``encoding``); ``compressed``: sensor_msgs/CompressedImage
    (JPEG / PNG; ``encoding`` does not apply). See the module docstring for the default."""

    @property
    def compressed(self) -> bool:
        """True when the topic carries sensor_msgs/CompressedImage."""
        return self.transport == "compressed"


@dataclass(frozen=True)
class RobotProfile:
    """A whole robot. ``arms`` are in 14-D order (left first), ``cameras`` in T-layout order."""

    name: str
    description: str
    control_rate_hz: float
    """Rate of the command stream the policy / teleop publish."""
    record_rate_hz: float
    """Rate the recorder samples at; also the policy's action rate (one action per period)."""
    joint_state_rate_hz: float
    joint_state_staleness_s: float
    command_interface: str
    arms: tuple[ArmProfile, ...]
    cameras: tuple[CameraProfile, ...]
    normalization_key: str
    """Key in the Motus ``stat.json`` whose min/max normalise this robot's joint vectors."""
    clock_topic: str = "/clock"
    extras: Mapping[str, Any] = field(default_factory=dict)
    """Robot-specific settings that have no field of their own (e.g. the sim's tasks)."""

    # -- derived 14-D views -------------------------------------------------------------------
    @property
    def joint_names(self) -> tuple[str, ...]:
        """The 14 joint labels in the 14-D layout (arm joints then gripper, left then right).

        Each arm's JointState names; when the two arms share names (AgileX's ``joint1`` on both)
        every label is prefixed with its arm (``left/joint1``) so the labels stay unique. For
        looking names up in messages use each arm's :attr:`ArmProfile.joint_state_names`.
        """
        names = [name for arm in self.arms for name in arm.joint_state_names]
        if len(set(names)) == len(names):
            return tuple(names)
        return tuple(f"{arm.name}/{n}" for arm in self.arms for n in arm.joint_state_names)

    def in_namespace(self, namespace: str) -> RobotProfile:
        """The profile with every relative topic resolved in ``namespace`` (e.g. ``/robot1``).

        A node passes its own namespace (``Node.get_namespace()``), so ``-r __ns:=/robot1``
        moves the robot's topics with it; absolute topics stay as written. String ``extras``
        whose key ends in ``_topic`` or ``_service`` (the sim's ``reset_service`` ...) are
        resolved the same way.

        Raises:
            ValueError: ``namespace`` is not absolute.
        """

        def res(t: str) -> str:
            return resolve_topic(t, namespace) if t else t

        arms = tuple(
            dataclasses.replace(
                a,
                state_topic=res(a.state_topic),
                command_topic=res(a.command_topic),
                trajectory_topic=res(a.trajectory_topic),
                gripper_command_topic=res(a.gripper_command_topic),
            )
            for a in self.arms
        )
        cams = tuple(dataclasses.replace(c, topic=res(c.topic)) for c in self.cameras)
        extras = {
            k: res(v) if k.endswith(("_topic", "_service")) and isinstance(v, str) else v
            for k, v in self.extras.items()
        }
        return dataclasses.replace(
            self, arms=arms, cameras=cams, clock_topic=res(self.clock_topic), extras=extras
        )

    def _stack(self, arm_attr: str, gripper_attr: str) -> np.ndarray:
        out: list[float] = []
        for arm in self.arms:
            out.extend(getattr(arm, arm_attr))
            out.append(getattr(arm.gripper, gripper_attr))
        return np.asarray(out, dtype=np.float64)

    @property
    def position_min(self) -> np.ndarray:
        """Lower position limits, float64 (14,), rad for joints and gripper unit for grippers."""
        return self._stack("position_min_rad", "min")

    @property
    def position_max(self) -> np.ndarray:
        """Upper position limits, float64 (14,)."""
        return self._stack("position_max_rad", "max")

    @property
    def velocity_max(self) -> np.ndarray:
        """Speed limits, float64 (14,), rad/s for joints and gripper unit/s for grippers."""
        return self._stack("velocity_max_rad_s", "velocity_max_per_s")

    def camera(self, name: str) -> CameraProfile:
        """Return the camera called ``name``; raises KeyError listing the known names."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"profile {self.name!r} has no camera {name!r}; has {self.camera_names}")

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Camera names in T-layout order."""
        return tuple(c.name for c in self.cameras)

    def arm(self, name: str) -> ArmProfile:
        """Return the arm called ``name`` (``left``/``right``); raises KeyError."""
        for arm in self.arms:
            if arm.name == name:
                return arm
        raise KeyError(f"profile {self.name!r} has no arm {name!r}")

    def check_joint_vector(
        self, q: np.ndarray, what: str = "joint vector", *, error: type[ValueError] = ValueError
    ) -> np.ndarray:
        """Check a 14-D joint vector against the position limits (see :func:`check_positions`).

        Args:
            q: float (14,) in the 14-D layout (rad; grippers in the profile's unit).
            what: prefix of the error message (e.g. ``"joint command"``).
            error: the ValueError subclass to raise (a caller's own rejection type).

        Returns:
            ``q`` as float64 (14,).

        Raises:
            ValueError: (or ``error``) wrong shape, a NaN/inf value or a value outside
                ``[position_min, position_max]``; the message names the first offending joint
                with its 14-D index, the value and the limits.
        """
        return check_positions(
            q,
            self.joint_names,
            self.position_min,
            self.position_max,
            what,
            error=error,
            show_index=True,
        )

    def check_arm_vector(
        self,
        arm: str,
        q: np.ndarray,
        what: str = "arm vector",
        *,
        error: type[ValueError] = ValueError,
    ) -> np.ndarray:
        """Check one arm's 7 values against its position limits (see :func:`check_positions`).

        Args:
            arm: ``left`` or ``right``.
            q: float (7,): 6 joint positions (rad), then the gripper (profile unit), as in the
                arm's JointState messages (:attr:`ArmProfile.joint_state_names`).
            what: prefix of the error message.
            error: the ValueError subclass to raise.

        Returns:
            ``q`` as float64 (7,).

        Raises:
            KeyError: unknown arm.
            ValueError: (or ``error``) wrong shape, a NaN/inf value or a value outside the
                limits; the message names the first offending joint, the value and the limits.
        """
        sl = schema.ARM_SLICES[arm]
        return check_positions(
            q,
            self.arm(arm).joint_state_names,
            self.position_min[sl],
            self.position_max[sl],
            what,
            error=error,
        )


def check_positions(
    q: np.ndarray,
    names: Sequence[str],
    lower: np.ndarray,
    upper: np.ndarray,
    what: str = "joint vector",
    *,
    error: type[ValueError] = ValueError,
    show_index: bool = False,
    limits_name: str = "",
) -> np.ndarray:
    """Check a joint-position vector: shape, finiteness, position limits (the one such check).

    Used for 14-D vectors (:meth:`RobotProfile.check_joint_vector`), one arm's 7 values
    (:meth:`RobotProfile.check_arm_vector`), trajectory points and driver commands.

    Args:
        q: float (n,) positions (rad for joints; grippers in their unit).
        names: the n joint names, in the order of ``q``.
        lower: float (n,) lower limits (same units; ``-inf`` for none).
        upper: float (n,) upper limits.
        what: prefix of the error message (what was checked, e.g. ``"left hold target"``).
        error: the ValueError subclass to raise.
        show_index: name the offending entry as ``name (index i)`` instead of ``name``.
        limits_name: words naming the limits in the message (``"the profile limits"``).

    Returns:
        ``q`` as float64 (n,).

    Raises:
        ValueError: (or ``error``) ``q`` is not of shape (n,), holds a NaN/inf, or a value
            lies outside ``[lower, upper]``; the message names the first offending joint, its
            value and (for limits) the limits.
    """
    q = np.asarray(q, dtype=np.float64)
    n = len(names)
    if q.shape != (n,):
        raise error(f"{what}: expected {n} values (shape ({n},)), got shape {q.shape}")

    def label(i: int) -> str:
        return f"{names[i]} (index {i})" if show_index else names[i]

    bad = ~np.isfinite(q)
    if bad.any():
        i = int(np.argmax(bad))
        raise error(f"{what}: {label(i)} is {q[i]} (not finite)")
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    out = (q < lo) | (q > hi)
    if out.any():
        i = int(np.argmax(out))
        where = f"{limits_name} " if limits_name else ""
        raise error(f"{what}: {label(i)} = {q[i]:.4f} outside {where}[{lo[i]:.4f}, {hi[i]:.4f}]")
    return q


def with_image_size(profile: RobotProfile, height: int, width: int) -> RobotProfile:
    """The same profile with every camera at ``height`` x ``width`` (0, 0 = unchanged).

    For runs that render or capture at another size than the profile's (e.g. a low-resolution
    simulation); the sim node, the recorder and the policy node all take this override.

    Raises:
        ValueError: only one of height / width given, or a negative size.
    """
    if (height == 0) != (width == 0) or height < 0 or width < 0:
        raise ValueError(f"image size: expected both > 0 or both 0, got {height}x{width}")
    if height == 0:
        return profile
    cams = tuple(
        dataclasses.replace(c, height=int(height), width=int(width)) for c in profile.cameras
    )
    return dataclasses.replace(profile, cameras=cams)


# ---------------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------------


class _Reader:
    """Reads typed fields from a mapping, raising ProfileError with the full field path."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, Mapping):
            raise ProfileError(
                f"{path or 'profile'}: expected a mapping, got {type(data).__name__}"
            )
        self.data = data
        self.path = path
        self.used: set[str] = set()

    def _p(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, default: Any = ...) -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise ProfileError(f"{self._p(key)}: missing required field")
            return default
        return self.data[key]

    def str(self, key: str, default: Any = ..., choices: Sequence[str] | None = None) -> str:
        v = self.raw(key, default)
        if not isinstance(v, str) or not v:
            raise ProfileError(f"{self._p(key)}: expected a non-empty string, got {v!r}")
        if choices is not None and v not in choices:
            raise ProfileError(f"{self._p(key)}: expected one of {list(choices)}, got {v!r}")
        return v

    def topic(self, key: str, default: Any = ...) -> str:
        v = self.raw(key, default)
        if key not in self.data:
            return v
        if not isinstance(v, str) or not _TOPIC.fullmatch(v):
            raise ProfileError(
                f"{self._p(key)}: expected a topic name (absolute /a/b or relative a/b: letters, "
                f"digits, _ and /), got {v!r}"
            )
        return v

    def num(self, key: str, default: Any = ..., positive: bool = False) -> float:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ProfileError(f"{self._p(key)}: expected a finite number, got {v!r}")
        if positive and v <= 0:
            raise ProfileError(f"{self._p(key)}: expected a positive number, got {v!r}")
        return float(v)

    def int(self, key: str, default: Any = ...) -> int:
        v = self.raw(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ProfileError(f"{self._p(key)}: expected a positive integer, got {v!r}")
        return v

    def vec(self, key: str, length: int, positive: bool = False) -> tuple[float, ...]:
        v = self.raw(key)
        if not isinstance(v, list | tuple) or len(v) != length:
            n = len(v) if isinstance(v, list | tuple) else type(v).__name__
            raise ProfileError(f"{self._p(key)}: expected a list of {length} numbers, got {n}")
        out = []
        for i, x in enumerate(v):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise ProfileError(f"{self._p(key)}[{i}]: expected a finite number, got {x!r}")
            if positive and x <= 0:
                raise ProfileError(f"{self._p(key)}[{i}]: expected a positive number, got {x!r}")
            out.append(float(x))
        return tuple(out)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise ProfileError(f"{self.path or 'profile'}: unknown field(s) {unknown}")


def _gripper(data: Any, path: str) -> GripperProfile:
    r = _Reader(data, path)
    g = GripperProfile(
        joint_name=r.str("joint_name"),
        unit=r.str("unit", choices=GRIPPER_UNITS),
        min=r.num("min"),
        max=r.num("max"),
        velocity_max_per_s=r.num("velocity_max_per_s", positive=True),
    )
    r.done()
    if g.min >= g.max:
        raise ProfileError(f"{path}: expected min < max, got min={g.min} max={g.max}")
    return g


def _arm(data: Any, path: str) -> ArmProfile:
    r = _Reader(data, path)
    n = schema.ARM_JOINTS
    names = r.raw("joint_names")
    if (
        not isinstance(names, list)
        or len(names) != n
        or not all(isinstance(x, str) and x for x in names)
    ):
        raise ProfileError(f"{path}.joint_names: expected {n} non-empty strings, got {names!r}")
    arm = ArmProfile(
        name=r.str("name", choices=schema.ARM_NAMES),
        joint_names=tuple(names),
        state_topic=r.topic("state_topic"),
        command_topic=r.topic("command_topic"),
        trajectory_topic=r.topic("trajectory_topic", ""),
        gripper_command_topic=r.topic("gripper_command_topic", ""),
        position_min_rad=r.vec("position_min_rad", n),
        position_max_rad=r.vec("position_max_rad", n),
        velocity_max_rad_s=r.vec("velocity_max_rad_s", n, positive=True),
        gripper=_gripper(r.raw("gripper"), f"{path}.gripper"),
        driver=dict(r.raw("driver", {}) or {}),
    )
    r.done()
    seen = arm.joint_state_names
    dup = sorted({x for x in seen if seen.count(x) > 1})
    if dup:
        raise ProfileError(
            f"{path}: joint names must be unique within an arm (6 joints + gripper), "
            f"{dup} repeated in {list(seen)}"
        )
    for i, (lo, hi) in enumerate(zip(arm.position_min_rad, arm.position_max_rad, strict=True)):
        if lo >= hi:
            raise ProfileError(
                f"{path}.position_min_rad[{i}]: expected < position_max_rad[{i}], got {lo} >= {hi}"
            )
    return arm


def _camera(data: Any, path: str) -> CameraProfile:
    r = _Reader(data, path)
    cam = CameraProfile(
        name=r.str("name", choices=schema.CAMERA_NAMES),
        topic=r.topic("topic"),
        height=r.int("height"),
        width=r.int("width"),
        encoding=r.str("encoding", "rgb8", choices=ENCODINGS),
        rate_hz=r.num("rate_hz", positive=True),
        staleness_s=r.num("staleness_s", positive=True),
        source=r.str("source"),
        transport=r.str(
            "transport",
            "compressed" if str(r.data.get("topic", "")).endswith("/compressed") else "raw",
            choices=TRANSPORTS,
        ),
    )
    r.done()
    return cam


def profile_from_dict(data: Mapping[str, Any], origin: str = "profile") -> RobotProfile:
    """Build and validate a :class:`RobotProfile` from parsed YAML.

    Raises:
        ProfileError: a field is missing, unknown, of the wrong type, out of range, or the arms /
            cameras are not exactly the 14-D layout's (left, right) and T-layout's three cameras.
    """
    try:
        r = _Reader(data, "")
        arms_raw = r.raw("arms")
        cams_raw = r.raw("cameras")
        if not isinstance(arms_raw, list):
            raise ProfileError(f"arms: expected a list of 2 arms, got {type(arms_raw).__name__}")
        if not isinstance(cams_raw, list):
            raise ProfileError(f"cameras: expected a list, got {type(cams_raw).__name__}")
        arms = tuple(_arm(a, f"arms[{i}]") for i, a in enumerate(arms_raw))
        cams = tuple(_camera(c, f"cameras[{i}]") for i, c in enumerate(cams_raw))
        prof = RobotProfile(
            name=r.str("name"),
            description=r.str("description"),
            control_rate_hz=r.num("control_rate_hz", positive=True),
            record_rate_hz=r.num("record_rate_hz", positive=True),
            joint_state_rate_hz=r.num("joint_state_rate_hz", positive=True),
            joint_state_staleness_s=r.num("joint_state_staleness_s", positive=True),
            command_interface=r.str("command_interface", choices=COMMAND_INTERFACES),
            arms=arms,
            cameras=cams,
            normalization_key=r.str("normalization_key"),
            clock_topic=r.topic("clock_topic", "/clock"),
            extras=dict(r.raw("extras", {}) or {}),
        )
        r.done()
    except ProfileError as exc:
        raise ProfileError(f"{origin}: {exc}") from None
    if tuple(a.name for a in prof.arms) != schema.ARM_NAMES:
        got = [a.name for a in prof.arms]
        raise ProfileError(f"{origin}: arms: expected names {list(schema.ARM_NAMES)}, got {got}")
    if prof.camera_names != schema.CAMERA_NAMES:
        raise ProfileError(
            f"{origin}: cameras: expected {list(schema.CAMERA_NAMES)} in this order, "
            f"got {list(prof.camera_names)}"
        )
    _check_shared_topics(prof, origin)
    return prof


def _check_shared_topics(prof: RobotProfile, origin: str) -> None:
    """Arms that share a state / command / trajectory topic must not share joint names."""
    for attr in ("state_topic", "command_topic", "trajectory_topic"):
        by_topic: dict[str, list[ArmProfile]] = {}
        for arm in prof.arms:
            if getattr(arm, attr):  # an unused (empty) topic is shared by nobody
                by_topic.setdefault(getattr(arm, attr), []).append(arm)
        for topic, arms in by_topic.items():
            names = [n for a in arms for n in a.joint_state_names]
            if len(arms) > 1 and len(set(names)) != len(names):
                both = sorted({n for n in names if names.count(n) > 1})
                raise ProfileError(
                    f"{origin}: arms {[a.name for a in arms]} share the {attr} {topic} but also "
                    f"joint names {both}: names must be unique per topic (give each arm its own "
                    "topic, or distinct names)"
                )
    if prof.command_interface != "joint_state":
        missing = [a.name for a in prof.arms if not a.trajectory_topic]
        if missing:
            raise ProfileError(
                f"{origin}: command_interface {prof.command_interface} needs "
                f"arms[].trajectory_topic, missing for {missing}"
            )
    if prof.command_interface == "joint_trajectory_controller":
        missing = [a.name for a in prof.arms if not a.gripper_command_topic]
        if missing:
            raise ProfileError(
                f"{origin}: command_interface joint_trajectory_controller needs "
                f"arms[].gripper_command_topic (the gripper's position command), missing for "
                f"{missing}"
            )


def load_profile(
    name_or_path: str | os.PathLike[str], namespace: str | None = "/"
) -> RobotProfile:
    """Load a profile by name (``aloha_sim``) from ``config/robots/`` or from a YAML path.

    Args:
        name_or_path: shipped profile name or a ``.yaml`` path.
        namespace: resolve relative topic names in this namespace (a node passes its
            ``get_namespace()``); ``/`` (default) gives the names as in the root namespace, as
            offline tools (bag replay) see them; None keeps them as written.

    Raises:
        FileNotFoundError: no such profile; the message lists the shipped ones.
        ProfileError: the YAML is not a valid profile (see :func:`profile_from_dict`).
    """
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = profile_dir() / f"{name_or_path}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in profile_dir().glob("*.yaml"))
        raise FileNotFoundError(f"no robot profile {str(name_or_path)!r}; shipped: {known}")
    with open(p, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise ProfileError(f"{p}: not valid YAML: {exc}") from None
    prof = profile_from_dict(data, origin=str(p))
    if namespace is None:
        return prof
    try:
        return prof.in_namespace(namespace)
    except ValueError as exc:
        raise ProfileError(f"{p}: {exc}") from None
