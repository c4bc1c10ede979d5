"""Command-line options generated from config dataclasses (the CLI twin of ``ros/params.py``).

Every config the CLIs take (:class:`~motus_policy.training.config.TrainConfig`,
:class:`~motus_policy.training.vae_trainer.VAETrainConfig`,
:class:`~motus_policy.evaluation.replay.ReplayConfig`,
:class:`~motus_policy.evaluation.lockstep.LockstepConfig`,
:class:`~motus_policy.runtime.config.PolicyRuntimeConfig`) describes each field once, in
``field(metadata=...)``:

* ``"description"``: the help text, units in brackets (``[s]``, ``[Hz]``, ``[px]``);
* ``"choices"`` (optional): the allowed values;
* ``"aliases"`` (optional): older field names still accepted (``n_execute`` for
  ``n_action_steps``); each becomes another option string of the same option;
* ``"value_aliases"`` (optional): older values mapped to current ones (``prefix`` -> ``rtc``).

:func:`add_options` turns fields into ``--field-name`` options (type, default and help from the
field; ``dest`` is the field name) and :func:`config_kwargs` reads them back, so a CLI builds its
config as ``Config(**config_kwargs(ns, Config))``. The ROS parameters of the policy node are the
same fields' other projection (:mod:`motus_policy.ros.params`). ROS-free, torch-free: ``--help``
stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

_UNSET = object()


class FlagAction(argparse.Action):
    """A boolean option: ``--name`` sets True, ``--no-name`` sets False.

    Like :class:`argparse.BooleanOptionalAction`, without the help suffix it adds on some Python
    versions (the default is written by :func:`add_options` on every version alike).
    """

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str,
        default: Any = None,
        required: bool = False,
        help: str | None = None,  # noqa: A002 - argparse's keyword
    ):
        strings = []
        for s in option_strings:
            strings.append(s)
            if s.startswith("--"):
                strings.append("--no-" + s[2:])
        super().__init__(strings, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: D102
        setattr(namespace, self.dest, not (option_string or "").startswith("--no-"))

    def format_usage(self) -> str:  # noqa: D102
        return " | ".join(self.option_strings)


def option_name(name: str) -> str:
    """``n_action_steps`` -> ``--n-action-steps``."""
    return "--" + name.replace("_", "-")


def _unwrap_optional(tp: Any) -> Any:
    """``X | None`` -> ``X``; other types unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _with_value_aliases(convert: Callable[[str], Any], aliases: Mapping[str, str]):
    def parse(text: str) -> Any:
        return convert(aliases.get(text, text))

    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names it in errors
    return parse


def _field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _UNSET


def _argparse_kwargs(f: dataclasses.Field, tp: Any) -> dict[str, Any]:
    """Type-dependent argparse keywords of field ``f`` with (resolved) type ``tp``.

    Raises:
        TypeError: a type with no command-line form (nested dataclasses, tuples of tuples).
    """
    base = _unwrap_optional(tp)
    origin = typing.get_origin(base)
    if base is bool:
        return {"action": FlagAction}
    if base in (int, float, str):
        return {"type": base}
    if origin is tuple:
        args = typing.get_args(base)
        if len(args) == 2 and args[1] is Ellipsis and args[0] in (int, float, str):
            return {"type": args[0], "nargs": "+"}
        if args and all(a is args[0] for a in args) and args[0] in (int, float, str):
            return {"type": args[0], "nargs": len(args)}
    raise TypeError(f"{f.name}: no command-line form for type {tp!r}; exclude it")


def _help(description: str, default: Any, required: bool) -> str:
    text = description.replace("%", "%%")
    if required or default is None:
        return text
    if isinstance(default, bool):
        return f"{text} (default: {'on' if default else 'off'})"
    if default == "":
        return f"{text} (default: '')"
    return f"{text} (default: %(default)s)"


def add_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    names: Iterable[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    flags: Mapping[str, str | Sequence[str]] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """Add one option per field of dataclass ``cls`` to ``parser`` (or an argument group).

    The option is ``--field-name`` (plus ``--alias-name`` for each of the field's
    ``metadata["aliases"]``), ``dest`` the field name, ``type`` from the annotation (``int``,
    ``float``, ``str``; ``X | None`` as ``X``; ``tuple[T, ...]`` as ``nargs="+"``; ``tuple[T,
    T]`` as ``nargs=2``; ``bool`` as ``--name`` / ``--no-name``), ``choices`` from
    ``metadata["choices"]`` (with ``metadata["value_aliases"]`` mapped to current values before
    the check), ``default`` the field's (a field without one is required) and ``help`` its
    ``metadata["description"]`` followed by the default.

    Args:
        parser: where the options go.
        cls: a dataclass.
        names: the fields to add, in this order (default: every field in declaration order).
        exclude: fields to leave out (set from elsewhere, e.g. from a preset or a profile).
        flags: per field, option strings that replace ``--field-name`` (``{"preset":
            "--config"}``); the aliases' option strings are still added.
        overrides: per field, argparse keywords that replace the generated ones (``default``,
            ``help``, ``choices``, ``metavar``, ``required``, ``type``), plus ``help_extra``:
            text appended to the description (what this CLI does with the value).

    Returns:
        The names of the fields added.

    Raises:
        TypeError: ``cls`` is not a dataclass, or an included field has a type with no
            command-line form (exclude it).
        KeyError: ``names``, ``exclude``, ``flags`` or ``overrides`` name an unknown field.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    by_name = {f.name: f for f in dataclasses.fields(cls)}
    flags, overrides, skip = dict(flags or {}), dict(overrides or {}), set(exclude)
    unknown = (set(names or ()) | skip | set(flags) | set(overrides)) - set(by_name)
    if unknown:
        raise KeyError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    added = []
    for name in list(names) if names is not None else list(by_name):
        if name in skip:
            continue
        f = by_name[name]
        meta = f.metadata
        kwargs = _argparse_kwargs(f, hints[name])
        if "choices" in meta:
            kwargs["choices"] = tuple(meta["choices"])
        if "value_aliases" in meta and "type" in kwargs:
            kwargs["type"] = _with_value_aliases(kwargs["type"], meta["value_aliases"])
        default = _field_default(f)
        kwargs.update(overrides.get(name, {}))
        default = kwargs.pop("default", default)
        required = kwargs.pop("required", default is _UNSET)
        extra = kwargs.pop("help_extra", "")
        if "help" not in kwargs:
            shown = None if default is _UNSET else default
            text = str(meta.get("description", "")) + (f"; {extra}" if extra else "")
            kwargs["help"] = _help(text, shown, required)
        if not required:
            kwargs["default"] = default
        primary = flags.get(name, option_name(name))
        strings = [primary] if isinstance(primary, str) else list(primary)
        strings += [option_name(a) for a in meta.get("aliases", ())]
        if kwargs.get("action") is None and "choices" not in kwargs:
            kwargs.setdefault("metavar", strings[0].lstrip("-").replace("-", "_").upper())
        parser.add_argument(*strings, dest=name, required=required, **kwargs)
        added.append(name)
    return added


def config_kwargs(
    ns: argparse.Namespace, cls: type, names: Iterable[str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from parsed options (the fields present in ``ns``).

    Lists from ``nargs`` options become tuples, as the dataclasses annotate them.

    Args:
        ns: parsed arguments (options added by :func:`add_options`, ``dest`` = field name).
        cls: the dataclass.
        names: restrict to these fields (default: every field of ``cls`` found in ``ns``).
    """
    wanted = set(names) if names is not None else None
    out = {}
    for f in dataclasses.fields(cls):
        if (wanted is not None and f.name not in wanted) or not hasattr(ns, f.name):
            continue
        value = getattr(ns, f.name)
        out[f.name] = tuple(value) if isinstance(value, list) else value
    return out
