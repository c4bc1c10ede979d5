"""Planner for insertion (placeholder until written)."""

from __future__ import annotations


def plan_insertion(builder, object_poses, cfg) -> None:  # noqa: D103
    raise NotImplementedError
