"""ROS parameters as a projection of core dataclasses (house-style synthesis 4).

Each dataclass field becomes one parameter ``<prefix><field>`` with the field's default, and
the description from ``field(metadata={"description": ...})``; the config is rebuilt from the
parameters (validation stays in the dataclass's ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

T = TypeVar("T")


def _fields(cls: type, exclude: Iterable[str]) -> list[dataclasses.Field]:
    skip = set(exclude)
    return [f for f in dataclasses.fields(cls) if f.name not in skip]


def declare_dataclass(
    node: Node,
    cls: type,
    prefix: str = "",
    read_only: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> None:
    """Declare one parameter per field of dataclass ``cls`` (defaults and descriptions).

    Fields named in ``read_only`` are declared read-only (settable only at start-up).
    """
    ro = set(read_only)
    for f in _fields(cls, exclude):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        desc = ParameterDescriptor(
            description=str(f.metadata.get("description", "")), read_only=f.name in ro
        )
        node.declare_parameter(prefix + f.name, default, desc)


def dataclass_from_params(
    node: Node, cls: type[T], prefix: str = "", exclude: Iterable[str] = (), **extra: Any
) -> T:
    """Build ``cls`` from the node's current parameters (plus ``extra`` keyword values).

    Raises:
        ValueError: the dataclass rejects a value (the message names the field).
    """
    kwargs = {f.name: node.get_parameter(prefix + f.name).value for f in _fields(cls, exclude)}
    kwargs.update(extra)
    return cls(**kwargs)


def replace_from_changes(config: T, params: Sequence[Parameter], prefix: str = "") -> T:
    """A copy of dataclass ``config`` with the changed parameters under ``prefix`` applied.

    Raises:
        ValueError / TypeError: the new combination is invalid (message names the field).
    """
    names = {f.name for f in dataclasses.fields(config)}
    changes = {}
    for p in params:
        if p.name.startswith(prefix) and p.name[len(prefix) :] in names:
            changes[p.name[len(prefix) :]] = p.value
    return dataclasses.replace(config, **changes) if changes else config
