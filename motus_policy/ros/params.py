"""ROS parameters as a projection of core dataclasses (docs/architecture.md §6).

Each dataclass field becomes one parameter ``<prefix><field>`` with the field's default, and
the description from ``field(metadata={"description": ...})``; the config is rebuilt from the
parameters (validation stays in the dataclass's ``__post_init__``). The command-line options of
the CLIs are the same fields' other projection (``motus_policy/cli/options.py``).

Aliases: each name in a field's ``metadata["aliases"]`` (``n_execute`` for ``n_action_steps``)
is declared as a parameter too (dynamically typed, unset unless given). A value given for the
alias at start-up (``-p n_execute:=4``, a YAML file) becomes the field parameter's value, and a
later set of the alias (``ros2 param set``) sets the field parameter in the same atomic change;
the field parameter is the one read. An alias given as an empty string counts as not given
(bring-up descriptions pass ``""`` for an alias argument left at its default).

Ranges: a numeric field whose ``metadata["range"]`` (or the ``ranges`` argument of
:func:`declare_dataclass`) gives ``(low, high)`` is declared with a ``FloatingPointRange`` /
``IntegerRange`` descriptor (closed bounds, step 0), so ``ros2 param describe`` shows it and
rclpy refuses an out-of-range set before any callback runs. The bounds are the dataclass's
validation bounds; an open bound ("> 0", ``metadata["range_low_open"]``, see
:func:`motus_policy.runtime.config.bounds`) is written as the smallest value that makes sense
(:data:`POSITIVE` above 0, the next integer for an integer), and ``math.inf`` for no upper bound
(:func:`ros_range`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

T = TypeVar("T")

POSITIVE = 1e-9
"""Lower bound written for a float that must be > 0 (ROS ranges are closed)."""
INT_MAX = 2**63 - 1
"""Upper bound written for an integer without one (IntegerRange is int64)."""


def number_descriptor(
    description: str,
    low: float,
    high: float = math.inf,
    *,
    integer: bool = False,
    read_only: bool = False,
) -> ParameterDescriptor:
    """A descriptor with a closed ``[low, high]`` range (``IntegerRange`` if ``integer``).

    ``high`` = ``math.inf`` means no upper bound (``INT_MAX`` for integers).

    Raises:
        ValueError: ``low > high``, or a non-integer bound of an integer parameter.
    """
    if not low <= high:
        raise ValueError(f"range of {description!r}: expected low <= high, got [{low}, {high}]")
    d = ParameterDescriptor(description=description, read_only=read_only)
    if integer:
        hi = INT_MAX if math.isinf(high) else high
        if int(low) != low or int(hi) != hi:
            raise ValueError(f"integer range: expected whole bounds, got [{low}, {high}]")
        d.integer_range = [IntegerRange(from_value=int(low), to_value=int(hi), step=0)]
    else:
        d.floating_point_range = [
            FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
        ]
    return d


def ros_range(f: dataclasses.Field) -> tuple[float, float] | None:
    """The closed ROS range ``(low, high)`` of field ``f``'s ``metadata["range"]``, or None.

    An open low bound (``metadata["range_low_open"]``) becomes ``low + 1`` for an integer
    field, :data:`POSITIVE` for a float field bounded at 0, else the next float above ``low``.
    """
    rng = f.metadata.get("range")
    if rng is None:
        return None
    low, high = rng
    if f.metadata.get("range_low_open", False):
        if isinstance(f.default, int) and not isinstance(f.default, bool):
            low = low + 1
        elif low == 0:
            low = POSITIVE
        else:
            low = math.nextafter(low, math.inf)
    return (low, high)


def field_ranges(cls: type) -> dict[str, tuple[float, float]]:
    """Field name -> closed ROS range (:func:`ros_range`) for every ranged field of ``cls``."""
    return {f.name: r for f in dataclasses.fields(cls) if (r := ros_range(f)) is not None}


def _fields(cls: type, exclude: Iterable[str]) -> list[dataclasses.Field]:
    skip = set(exclude)
    return [f for f in dataclasses.fields(cls) if f.name not in skip]


def _given(value: Any) -> bool:
    return value is not None and value != ""


def declare_dataclass(
    node: Node,
    cls: type,
    prefix: str = "",
    read_only: Iterable[str] = (),
    exclude: Iterable[str] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """Declare one parameter per field of dataclass ``cls`` (defaults and descriptions).

    Fields named in ``read_only`` are declared read-only (settable only at start-up), and so are
    their aliases. Aliases are declared and mapped as the module docstring says; with any alias,
    a pre-set callback is added to ``node`` that copies an alias being set onto its field.
    ``ranges`` (field name -> (low, high)) adds to / overrides the fields' ``metadata["range"]``;
    a range on a non-numeric field raises ValueError.
    """
    ro = set(read_only)
    alias_of: dict[str, str] = {}
    for f in _fields(cls, exclude):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        aliased = None
        for alias in f.metadata.get("aliases", ()):
            alias_of[prefix + alias] = prefix + f.name
            p = node.declare_parameter(
                prefix + alias,
                None,
                ParameterDescriptor(
                    description=f"alias of {prefix + f.name} (same value; empty or unset: "
                    "not given)",
                    read_only=f.name in ro,
                    dynamic_typing=True,
                ),
            )
            if _given(p.value):
                aliased = p.value
        text = str(f.metadata.get("description", ""))
        rng = (ranges or {}).get(f.name) or ros_range(f)
        if rng is None:
            desc = ParameterDescriptor(description=text, read_only=f.name in ro)
        elif isinstance(default, bool) or not isinstance(default, int | float):
            raise ValueError(f"{cls.__name__}.{f.name}: a range needs a numeric field")
        else:
            desc = number_descriptor(
                text, *rng, integer=isinstance(default, int), read_only=f.name in ro
            )
        if aliased is not None:  # the alias was given at start-up: it is the value
            node.declare_parameter(prefix + f.name, aliased, desc, ignore_override=True)
        else:
            node.declare_parameter(prefix + f.name, default, desc)
    if alias_of:
        node.add_pre_set_parameters_callback(lambda params: map_aliases(params, alias_of))


def map_aliases(params: Sequence[Parameter], alias_of: dict[str, str]) -> list[Parameter]:
    """``params`` plus, for each alias being set to a value, its field with that value.

    A field also in ``params`` keeps its own value; an alias set to "" or unset maps to nothing.
    Used as the pre-set callback :func:`declare_dataclass` installs.
    """
    out = list(params)
    names = {p.name for p in params}
    for p in params:
        target = alias_of.get(p.name)
        if target is not None and target not in names and _given(p.value):
            out.append(Parameter(target, value=p.value))
    return out


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
