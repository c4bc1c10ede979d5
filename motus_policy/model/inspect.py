"""Inspect a Motus configuration without weights: parameter counts and the official key layout.

::

    python -m motus_policy.model.inspect --config robotwin              # = --counts
    python -m motus_policy.model.inspect --config robotwin --official-keys
    python -m motus_policy.model.inspect --config tiny --set head_dim=128 --counts

The network is built on torch's ``meta`` device (shapes only, no memory, about a second for the
5B presets). ``--counts`` prints one line per component, ``name count`` (trainable parameters,
buffers excluded): ``video`` (Wan2.2 DiT), ``action`` (action expert), ``und`` (understanding
expert incl. its VLM adapter; not the frozen Qwen3-VL) and ``total``. For the full-size finetune
presets these are ``video 4999787712``, ``action 641527822``, ``und 253493760``.

``--official-keys`` prints every key of the official checkpoint layout (the ``module`` dict of
``mp_rank_00_model_states.pt``, docs/checkpoint-format.md §1-4) with its shape, one per line: the
key, a space, the dims joined by commas (``video_model.wan_model.patch_embedding.weight
3072,48,1,2,2``). Canonical prefixes ``video_model.wan_model.``, ``action_expert.`` and
``und_expert.``; ``--aliases`` adds the alias keys the official dict repeats them under. The
``vlm_model.*`` keys (the frozen Qwen3-VL, Hugging Face names) are not listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

import torch

from motus_policy.model.configuration_motus import PRESETS, MotusConfig
from motus_policy.model.convert_official import export_official_state_dict, official_alias_keys
from motus_policy.model.modeling_motus import MotusModel

COMPONENTS = {"video": "video_model", "action": "action_expert", "und": "und_expert"}
"""Printed component name -> ``MotusModel`` attribute."""


def build_meta_model(config: MotusConfig) -> MotusModel:
    """``MotusModel(config)`` on the meta device: every shape, no storage."""
    with torch.device("meta"):
        return MotusModel(config)


def component_counts(model: MotusModel) -> dict[str, int]:
    """Trainable parameters per component (``video``, ``action``, ``und``) and ``total``.

    Buffers (RoPE tables, the action ``pos_embedding``) are not counted.
    """
    counts = {
        name: sum(p.numel() for p in getattr(model, attr).parameters())
        for name, attr in COMPONENTS.items()
    }
    counts["total"] = sum(counts.values())
    return counts


def official_key_shapes(model: MotusModel, aliases: bool = False) -> dict[str, tuple[int, ...]]:
    """Official checkpoint key -> shape for ``model`` (docs/checkpoint-format.md §1-4).

    Args:
        model: a ``MotusModel`` (any device, meta included).
        aliases: also list the alias keys (same shapes as their canonical keys).

    Returns:
        Keys under the canonical prefixes (persistent buffers included), sorted, then the
        alias keys, sorted.
    """
    exported = export_official_state_dict(model)
    shapes = {k: tuple(exported[k].shape) for k in sorted(exported)}
    if aliases:
        alias = official_alias_keys(list(shapes))
        shapes.update({a: shapes[alias[a]] for a in sorted(alias)})
    return shapes


def format_shape(shape: Sequence[int]) -> str:
    """Dims joined by commas: ``(3072, 48, 1, 2, 2)`` -> ``"3072,48,1,2,2"``."""
    return ",".join(str(int(d)) for d in shape)


def parse_override(text: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` -> (field, value); VALUE is read as JSON, else kept as a string.

    Raises:
        ValueError: no ``=``, or a field ``MotusConfig`` does not have.
    """
    name, sep, raw = text.partition("=")
    fields = {f.name for f in dataclasses.fields(MotusConfig)}
    if not sep or not name:
        raise ValueError(f"--set: expected FIELD=VALUE, got {text!r}")
    if name not in fields:
        raise ValueError(f"--set: MotusConfig has no field {name!r}; fields: {sorted(fields)}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m motus_policy.model.inspect",
        description=(
            "Build a Motus network on the meta device (no weights, no memory) and print its "
            "parameter counts per component and/or the official checkpoint key layout."
        ),
        epilog=(
            "Output lines: '--counts' prints 'NAME COUNT' for video (Wan2.2 DiT), action "
            "(action expert), und (understanding expert with its VLM adapter; the frozen "
            "Qwen3-VL is not counted) and total, trainable parameters only. '--official-keys' "
            "prints 'KEY D1,D2,...' for every key of the official mp_rank_00_model_states.pt "
            "module dict under video_model.wan_model., action_expert. and und_expert. "
            "(docs/checkpoint-format.md); vlm_model.* is not listed."
        ),
    )
    parser.add_argument(
        "--config",
        required=True,
        choices=sorted(PRESETS),
        metavar="PRESET",
        help=f"configuration preset, one of: {', '.join(sorted(PRESETS))}",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a MotusConfig field (VALUE as JSON, e.g. head_dim=128); repeatable",
    )
    parser.add_argument(
        "--counts",
        action="store_true",
        help="print parameters per component (the default when no output is chosen)",
    )
    parser.add_argument(
        "--official-keys",
        action="store_true",
        help="print every official checkpoint key with its shape (dims joined by commas)",
    )
    parser.add_argument(
        "--aliases",
        action="store_true",
        help="with --official-keys: also print the alias keys the official dict repeats",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status (2 on a bad option, as argparse)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.aliases and not args.official_keys:
        parser.error("--aliases needs --official-keys")
    try:
        overrides = dict(parse_override(s) for s in args.set)
        config = MotusConfig.from_preset(args.config, **overrides)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    model = build_meta_model(config)
    lines = []
    if args.counts or not args.official_keys:
        lines += [f"{name} {n}" for name, n in component_counts(model).items()]
    if args.official_keys:
        shapes = official_key_shapes(model, aliases=args.aliases)
        lines += [f"{key} {format_shape(shape)}" for key, shape in shapes.items()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
