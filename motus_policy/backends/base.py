"""The seam between the runtime and a model: the :class:`PolicyBackend` protocol.

Every model (the in-process Motus backend, the deterministic fakes in
:mod:`motus_policy.backends.fakes`, a future remote backend) implements this small interface,
numpy in / numpy out (openpi ``BasePolicy`` in
``packages/openpi-client/src/openpi_client/base_policy.py``). The runtime calls it from its
inference worker thread only (:mod:`motus_policy.runtime.worker`), never from a control-rate
callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from motus_policy.types import (  # noqa: F401 - the modes are part of the backend API
    ACTION_MODES,
    FRAME_MODES,
    MODES,
    ActionChunk,
    Observation,
    check_mode,
)


@runtime_checkable
class PolicyBackend(Protocol):
    """A policy model behind the runtime.

    Threads: ``load`` runs on the thread that configures the node; ``infer`` and ``reset`` on the
    inference worker thread only (never concurrently with each other).
    """

    @property
    def action_rate_hz(self) -> float:
        """Rate of the predicted actions (one action per period, e.g. 30 Hz for A = 48)."""
        ...

    @property
    def chunk_size(self) -> int:
        """Number of actions A per chunk (48 for the aloha/ac_one configs, 16 for RoboTwin)."""
        ...

    @property
    def qpos_source(self) -> str | None:
        """What the training data's qpos held ("command" / "state"; None when unknown).

        "command": commanded joint positions (the recorder's default); "state": measured
        joint states. The runtime's ``state_source: auto`` follows it.
        """
        ...

    @property
    def recommended_n_action_steps(self) -> int | None:
        """Actions per chunk to execute before re-planning that the checkpoint recommends.

        1..``chunk_size``, or None when the checkpoint records none. The runtime uses it when
        its ``n_action_steps`` is 0 (and the whole chunk when this is None). Backends written
        before this property existed may lack it; the runtime then treats it as None.
        """
        ...

    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Load weights and warm up; ``progress`` receives human-readable progress lines.

        Raises:
            FileNotFoundError / ValueError: missing or mismatching checkpoint (message names it).
        """
        ...

    def infer(
        self,
        obs: Observation,
        *,
        mode: str,
        num_steps: int,
        action_prefix: np.ndarray | None,
        instruction: str,
        future_frames: np.ndarray | None = None,
    ) -> ActionChunk:
        """Predict a chunk from ``obs``.

        Args:
            obs: the observation (images per camera at the profile's size, state (14,)).
            mode: one of :data:`MODES`.
            num_steps: denoising steps (10 in every shipped Motus config, docs/motus.md §2.2).
            action_prefix: float32 (d, 14) or None. Real-time chunking: the returned chunk's first
                d actions must equal these (inpainted during denoising): they are the actions
                already committed for the slots ``obs.stamp_ns + (k + 1) * period``, k < d.
            instruction: natural-language task instruction.
            future_frames: uint8 (F, H, W, 3) observed future T-layout composites, required in
                ``idm`` mode (inverse dynamics: actions from observed frames), taken at
                ``obs.stamp_ns + video_frame_offsets_ns(backend)[j]``; None otherwise.

        Returns:
            ActionChunk with ``t0_ns = obs.stamp_ns``, ``period_ns = 1e9 / action_rate_hz``,
            ``chunk_size`` actions, and ``frames`` / ``frame_stamps_ns`` in frame modes.
        """
        ...

    def reset(self) -> None:
        """Forget per-episode state (caches keyed by episode, RNG stream position)."""
        ...


def video_frame_offsets_ns(backend: object) -> tuple[int, ...]:
    """Offsets (int ns after the observation) of the frames a backend predicts / takes in idm.

    Backends that support idm expose a ``video_frame_offsets_ns`` attribute (Motus: frame j at
    ``(j + 1) * r * action period``, docs/motus.md §3.2).

    Raises:
        ValueError: the backend does not declare its video frame times (no idm support).
    """
    offsets = getattr(backend, "video_frame_offsets_ns", None)
    if not offsets:
        raise ValueError(
            f"{type(backend).__name__} does not declare video_frame_offsets_ns: no idm"
        )
    return tuple(int(o) for o in offsets)
