"""Bring-up descriptions: which executables, with which parameters and remappings.

A description lives in ``config/bringup/<name>.yaml``. The launch files in ``launch/`` and the
pip-world runner (:mod:`motus_policy.bringup.runner`) both read it through :func:`load_bringup` and
:meth:`BringupDescription.resolve`, so they cannot drift: the same nodes, parameter files,
parameter overrides and remappings in both.

Format::

    description: text
    arguments:                      # bring-up arguments (launch arguments / runner --arg k=v)
      task: {default: transfer_cube, description: "..."}
    nodes:
      - name: aloha_sim             # node name (-r __node:=name)
        executable: aloha_sim_node  # `ros2 run motus_policy <executable>` (setup.py entry point)
        module: motus_policy.ros.aloha_sim_node   # `python -m <module>` in the pip world
        parameter_files: [config/nodes/aloha_sim.yaml]   # relative to the share dir / repo root
        parameters: {task: "${task}"}                    # overrides; "${arg}" substituted
        remappings: {/from: /to}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from motus_recorder.share import share_dir

_ARG = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class BringupError(ValueError):
    """A bring-up description or argument is invalid; the message names the field."""


@dataclass(frozen=True)
class BringupArgument:
    """A bring-up argument with its default and help text."""

    name: str
    default: str
    description: str = ""


@dataclass(frozen=True)
class NodeSpec:
    """One node to start.

    Attributes:
        name: ROS node name.
        executable: entry point name (``ros2 run motus_policy <executable>``).
        module: Python module with ``main()`` (``python -m <module>``).
        parameter_files: absolute paths of ROS parameter YAML files, in order.
        parameters: parameter overrides applied after the files (arguments substituted once
            :meth:`BringupDescription.resolve` has run).
        remappings: topic remappings ``from -> to``.
    """

    name: str
    executable: str
    module: str
    parameter_files: tuple[Path, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    remappings: Mapping[str, str] = field(default_factory=dict)

    def ros_args(self) -> list[str]:
        """The ``--ros-args`` a process runner passes (node name, files, overrides, remaps)."""
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for f in self.parameter_files:
            args += ["--params-file", str(f)]
        for k, v in self.parameters.items():
            args += ["-p", f"{k}:={_to_ros_value(v)}"]
        for src, dst in self.remappings.items():
            args += ["-r", f"{src}:={dst}"]
        return args


@dataclass(frozen=True)
class BringupDescription:
    """A parsed description: its arguments and node specs (parameters not yet substituted)."""

    name: str
    description: str
    arguments: tuple[BringupArgument, ...]
    nodes: tuple[NodeSpec, ...]

    def resolve(self, values: Mapping[str, str] | None = None) -> tuple[NodeSpec, ...]:
        """Substitute argument values (defaults where not given) into node parameters.

        Raises:
            BringupError: an unknown argument name is given or referenced.
        """
        known = {a.name: a.default for a in self.arguments}
        values = dict(values or {})
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise BringupError(
                f"{self.name}: unknown argument(s) {unknown}; known: {sorted(known)}"
            )
        known.update(values)
        out = []
        for node in self.nodes:
            params = {
                k: _substitute(v, known, f"{node.name}.{k}") for k, v in node.parameters.items()
            }
            out.append(
                NodeSpec(
                    node.name,
                    node.executable,
                    node.module,
                    node.parameter_files,
                    params,
                    node.remappings,
                )
            )
        return tuple(out)


def _substitute(value: Any, args: Mapping[str, str], where: str) -> Any:
    """Replace ``${arg}`` references in a parameter value.

    A value that is exactly one ``${arg}`` takes the argument's YAML type (``"0"`` -> 0,
    ``"1.0"`` -> 1.0, ``"true"`` -> True), as ROS launch arguments do.
    """
    if not isinstance(value, str):
        return value
    whole = _ARG.fullmatch(value)
    if whole:
        text = _ARG.sub(lambda m: _lookup(m, args, where), value)
        typed = yaml.safe_load(text) if text else ""
        return typed if isinstance(typed, bool | int | float | str) else text

    return _ARG.sub(lambda m: _lookup(m, args, where), value)


def _lookup(m: re.Match[str], args: Mapping[str, str], where: str) -> str:
    if m.group(1) not in args:
        raise BringupError(f"{where}: unknown argument ${{{m.group(1)}}}")
    return str(args[m.group(1)])


def _to_ros_value(v: Any) -> str:
    """Value text for ``-p name:=value`` (parsed as YAML by rcl)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str) and (v == "" or yaml.safe_load(v) != v):
        return repr(v)  # keep strings such as "" or "1.0" strings
    return str(v)


def _require(d: Mapping[str, Any], key: str, where: str, kind: type) -> Any:
    if key not in d:
        raise BringupError(f"{where}.{key}: missing required field")
    if not isinstance(d[key], kind):
        raise BringupError(f"{where}.{key}: expected {kind.__name__}, got {d[key]!r}")
    return d[key]


def load_bringup(
    name_or_path: str | Path, base_dir: str | Path | None = None
) -> BringupDescription:
    """Load ``config/bringup/<name>.yaml`` (or a path) and check it.

    Args:
        name_or_path: description name (``sim``) or a YAML path.
        base_dir: the package share directory; default :func:`motus_recorder.share.share_dir`
            (the source tree in development, ``<prefix>/share/motus_policy`` when installed);
            relative ``parameter_files`` resolve against it.

    Raises:
        FileNotFoundError: no such description, or a parameter file it names is missing.
        BringupError: malformed description (the message names the field).
    """
    base = Path(base_dir) if base_dir is not None else share_dir()
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = base / "config" / "bringup" / f"{name_or_path}.yaml"
    if not p.is_file():
        known = sorted(x.stem for x in (base / "config" / "bringup").glob("*.yaml"))
        raise FileNotFoundError(f"no bring-up description {str(name_or_path)!r}; known: {known}")
    data = yaml.safe_load(p.read_text())
    where = p.stem
    if not isinstance(data, dict):
        raise BringupError(f"{where}: expected a mapping")
    args = []
    for arg_name, spec in (data.get("arguments") or {}).items():
        if not isinstance(spec, dict) or "default" not in spec:
            raise BringupError(f"{where}.arguments.{arg_name}: expected {{default: ..., ...}}")
        args.append(
            BringupArgument(arg_name, str(spec["default"]), str(spec.get("description", "")))
        )
    nodes = []
    names: set[str] = set()
    for i, raw in enumerate(_require(data, "nodes", where, list)):
        w = f"{where}.nodes[{i}]"
        if not isinstance(raw, dict):
            raise BringupError(f"{w}: expected a mapping")
        unknown = set(raw) - {
            "name", "executable", "module", "parameter_files", "parameters", "remappings",
        }  # fmt: skip
        if unknown:
            raise BringupError(f"{w}: unknown field(s) {sorted(unknown)}")
        name = _require(raw, "name", w, str)
        if name in names:
            raise BringupError(f"{w}.name: duplicate node name {name!r}")
        names.add(name)
        files = []
        for f in raw.get("parameter_files") or []:
            fp = base / f
            if not fp.is_file():
                raise FileNotFoundError(f"{w}.parameter_files: {fp} does not exist")
            files.append(fp)
        nodes.append(
            NodeSpec(
                name=name,
                executable=_require(raw, "executable", w, str),
                module=_require(raw, "module", w, str),
                parameter_files=tuple(files),
                parameters=dict(raw.get("parameters") or {}),
                remappings=dict(raw.get("remappings") or {}),
            )
        )
    return BringupDescription(where, str(data.get("description", "")), tuple(args), tuple(nodes))
