"""Normalisation statistics, action rate and qpos source of the training data.

Stats: ``<root>/stat.json`` = ``{key: {"min": [14], "max": [14]}}`` (docs/motus.md §4.2,
docs/checkpoint-format.md §8), min-max to [0, 1]. With several roots, the union range (element-wise
min of the mins, max of the maxes) is used. Action rate: the recording rate in the first episode's
``meta/<i>.json`` divided by the config's global downsample rate g (docs/motus.md §3.2).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.normalization import NormalizationStats
from motus_policy.training.config import TrainConfig
from motus_recorder.dataset import complete_episodes, find_tasks, stat_file_problems

log = logging.getLogger(__name__)

DEFAULT_RECORD_RATE_HZ = 30.0  # real-robot data (docs/motus.md §3.1)


STAT_SEARCH_DEPTH = 2
"""Parents searched for ``stat.json``: the recorder writes it at the dataset root, two levels
above a ``<root>/<task>/<variant>`` folder, so ``--data <root>/<task>`` still finds it."""


def _stat_file(root: str) -> Path | None:
    p = Path(root).resolve()
    for candidate in [p, *p.parents][: STAT_SEARCH_DEPTH + 1]:
        if (candidate / "stat.json").is_file():
            return candidate / "stat.json"
    return None


def read_stats(roots: list[str]) -> dict[str, NormalizationStats]:
    """Entries of every root's ``stat.json`` merged per key (union range).

    The file is looked up in the root and up to two parent folders (see ``_stat_file``).

    Raises:
        ValueError: a ``stat.json`` that is not valid JSON or has an entry without 14 finite
            values per min / max (or max < min); the message names the file, the entry and
            the dimension.
    """
    merged: dict[str, NormalizationStats] = {}
    for root in roots:
        path = _stat_file(root)
        if path is None:
            continue
        problems = stat_file_problems(path)  # NaN, wrong dimension, max < min, bad JSON
        if problems:
            raise ValueError("; ".join(problems))
        for key, entry in json.loads(path.read_text()).items():
            s = NormalizationStats(np.asarray(entry["min"]), np.asarray(entry["max"]))
            if key in merged:
                s = NormalizationStats(
                    np.minimum(merged[key].min, s.min), np.maximum(merged[key].max, s.max)
                )
            merged[key] = s
    return merged


def resolve_stats(config: TrainConfig) -> tuple[NormalizationStats | None, str]:
    """Stats to normalise the data with (see ``TrainConfig.stats_key``).

    Returns:
        ``(stats or None for raw values, key)``.

    Raises:
        KeyError: the requested / required key is not in the data's stat.json.
    """
    available = read_stats(list(config.data_roots))
    key = config.stats_key
    if key == "none":
        return None, "default"
    if key == "auto":
        preset = MotusConfig.from_preset(config.preset)
        if preset.action_normalization == "min_max":
            key = preset.normalization_key
        elif len(available) == 1:
            key = next(iter(available))
        else:
            if available:
                log.warning(
                    "stat.json has entries %s; pass stats_key to pick one", sorted(available)
                )
            return None, "default"
    if key not in available:
        raise KeyError(
            f"stats_key {key!r}: not in stat.json of {list(config.data_roots)} "
            f"(entries: {sorted(available)})"
        )
    files = sorted({str(f) for f in map(_stat_file, config.data_roots) if f is not None})
    log.info(
        "normalisation: min-max stats %r from %s (a root's stat.json covers every task recorded "
        "under it)", key, ", ".join(files),
    )  # fmt: skip
    return available[key], key


def _read_meta(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def action_rate_hz(roots: list[str], g: int) -> float:
    """Rate of the predicted actions: record rate / g (30 Hz / g when no metadata is found)."""
    for root in roots:
        for task in find_tasks(root):
            for meta in sorted((Path(task) / "meta").glob("*.json")):
                rate = _read_meta(meta).get("record_rate_hz")
                if rate:
                    return float(rate) / g
    return DEFAULT_RECORD_RATE_HZ / g


def qpos_source(roots: list[str]) -> str | None:
    """What the episodes' qpos hold, from their ``meta/<i>.json`` ``qpos_source`` (recorder).

    Reads the metadata of every complete episode under ``roots`` (those training can draw).

    Returns:
        "command" or "state"; None when no episode's metadata says (data from elsewhere).

    Raises:
        ValueError: episodes under ``roots`` disagree (the model's state input would mean
            different things per episode; record or train them separately).
    """
    found: dict[str, Path] = {}
    for task, i in complete_episodes(roots):
        meta = task.path / "meta" / f"{i}.json"
        source = _read_meta(meta).get("qpos_source") if meta.is_file() else None
        if source is not None:
            found.setdefault(str(source), meta)
    if len(found) > 1:
        where = ", ".join(f"{k} ({v})" for k, v in sorted(found.items()))
        raise ValueError(f"episodes disagree on qpos_source: {where}")
    return next(iter(found), None)
