"""Deterministic backends at the model boundary, for tests, benchmarks and demos.

* :class:`HoldBackend` — every action is the observed state (the arm stays where it is).
* :class:`ScriptedBackend` — a sinusoid around the state seen at the first call after
  :meth:`~ScriptedBackend.reset`, as a function of *absolute* due time, so chunks predicted from
  different observations agree where they overlap. Configurable artificial latency, imagined
  frames in frame modes, and injectable faults (NaN, out-of-limit targets) to exercise the gate.

Both honour ``action_prefix`` exactly (the first d actions are the prefix), as a real-time
chunking backend must.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from motus_policy.backends.base import FRAME_MODES, check_mode
from motus_policy.types import ActionChunk, Observation

FAULTS = ("", "nan", "out_of_limit")


def _busy(seconds: float) -> None:
    """Compute in pure Python for ``seconds`` (holds the GIL between switch intervals)."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


@dataclass
class ScriptedConfig:
    """Settings of :class:`ScriptedBackend` (mutable at run time: tests flip ``fault``).

    Each field's ``metadata["description"]`` is its help text (the policy node's ``scripted.*``
    parameters).

    Raises:
        ValueError: a rate, size or latency out of range, or an unknown fault / qpos source.
    """

    action_rate_hz: float = field(default=25.0, metadata={"description": "action rate [Hz]"})
    chunk_size: int = field(default=16, metadata={"description": "actions per chunk A"})
    amplitude_rad: float = field(
        default=0.2,
        metadata={
            "description": "sinusoid amplitude on the arm joints [rad] (grippers move by a "
            "quarter of it)"
        },
    )
    frequency_hz: float = field(default=0.25, metadata={"description": "sinusoid frequency [Hz]"})
    latency_s: float = field(
        default=0.0,
        metadata={"description": "artificial inference time [s] (slept through ``sleep``)"},
    )
    load_s: float = field(
        default=0.0,
        metadata={
            "description": "artificial model-load time [s] (slept through ``sleep`` in load): "
            "a configure as slow as loading real weights"
        },
    )
    busy: bool = field(
        default=False,
        metadata={
            "description": "spend latency_s computing in pure Python instead (holds the GIL, "
            "like a model whose Python code launches many small kernels): the worst case for a "
            "control thread in the same process"
        },
    )
    num_frames: int = field(
        default=4, metadata={"description": "imagined frames per chunk in frame modes"}
    )
    frame_hw: tuple[int, int] = field(
        default=(48, 64), metadata={"description": "imagined frame (height, width) [px]"}
    )
    fault: str = field(
        default="",
        metadata={
            "description": "injected fault: '' | 'nan' (joint 0 of every action is NaN) | "
            "'out_of_limit' (joint 1 at 10 rad)",
            "choices": FAULTS,
        },
    )
    qpos_source: str = field(
        default="",
        metadata={
            "description": "the training qpos this fake claims: 'command' | 'state' | '' (unknown)"
        },
    )
    recommended_n_action_steps: int = field(
        default=0,
        metadata={
            "description": "actions per chunk this fake's 'checkpoint' recommends, used by "
            "n_action_steps 0 (0 = none: the whole chunk)"
        },
    )

    def __post_init__(self) -> None:
        if self.action_rate_hz <= 0 or self.chunk_size < 1 or min(self.latency_s, self.load_s) < 0:
            raise ValueError(f"bad ScriptedConfig {self}")
        if self.fault not in FAULTS:
            raise ValueError(f"fault: expected one of {list(FAULTS)}, got {self.fault!r}")
        if not 0 <= self.recommended_n_action_steps <= self.chunk_size:
            raise ValueError(
                f"recommended_n_action_steps: expected 0..{self.chunk_size}, "
                f"got {self.recommended_n_action_steps}"
            )
        if self.qpos_source not in ("", "command", "state"):
            raise ValueError(
                f"qpos_source: expected '', 'command' or 'state', got {self.qpos_source!r}"
            )


class ScriptedBackend:
    """Sinusoidal fake policy (see module docstring). Threads: ``infer`` on the worker only.

    Args:
        config: settings.
        sleep: called with the latency in seconds (``time.sleep``; a fake clock's ``advance``).
    """

    def __init__(
        self, config: ScriptedConfig | None = None, sleep: Callable[[float], object] = time.sleep
    ):
        self.config = config or ScriptedConfig()
        self._sleep = sleep
        self._center: np.ndarray | None = None
        self.calls: list[dict] = []
        self.loaded = False
        self._lock = threading.Lock()

    @property
    def action_rate_hz(self) -> float:
        """Action rate (Hz) from the config."""
        return self.config.action_rate_hz

    @property
    def chunk_size(self) -> int:
        """Actions per chunk from the config."""
        return self.config.chunk_size

    @property
    def qpos_source(self) -> str | None:
        """The config's claimed training qpos (None when "")."""
        return self.config.qpos_source or None

    @property
    def recommended_n_action_steps(self) -> int | None:
        """The config's recommended actions per chunk (None when 0)."""
        return self.config.recommended_n_action_steps or None

    def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Nothing to load but ``load_s`` of waiting; reports two progress lines."""
        for i, line in enumerate(("scripted backend: building", "scripted backend: ready")):
            if i == 1 and self.config.load_s > 0:
                self._sleep(self.config.load_s)
            if progress:
                progress(line)
        self.loaded = True

    def reset(self) -> None:
        """Re-centre the sinusoid on the next observation."""
        with self._lock:
            self._center = None

    def _wave(self, stamps_ns: np.ndarray) -> np.ndarray:
        c = self.config
        phase = 2 * np.pi * c.frequency_hz * (stamps_ns.astype(np.float64) / 1e9)
        s = np.sin(phase)[:, None]
        amp = np.full(14, c.amplitude_rad)
        amp[[6, 13]] = c.amplitude_rad / 4
        return self._center[None] + s * amp[None]

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
        """Sinusoid chunk for ``obs``; see the protocol in :mod:`motus_policy.backends.base`.

        ``future_frames`` (idm) is accepted and ignored.
        """
        check_mode(mode)
        c = self.config
        with self._lock:
            if self._center is None:
                self._center = np.asarray(obs.state, dtype=np.float64).copy()
            self.calls.append(
                {
                    "mode": mode,
                    "num_steps": num_steps,
                    "instruction": instruction,
                    "prefix_len": 0 if action_prefix is None else len(action_prefix),
                    "stamp_ns": obs.stamp_ns,
                    "state": np.asarray(obs.state).copy(),
                }
            )
        if c.latency_s > 0 and c.busy:
            _busy(c.latency_s)
        elif c.latency_s > 0:
            self._sleep(c.latency_s)
        period_ns = int(round(1e9 / c.action_rate_hz))
        stamps = obs.stamp_ns + np.arange(1, c.chunk_size + 1, dtype=np.int64) * period_ns
        actions = self._wave(stamps)
        if action_prefix is not None:
            d = len(action_prefix)
            actions[:d] = action_prefix  # exact inpainting of the committed actions
        if c.fault == "nan":
            actions[:, 0] = np.nan
        elif c.fault == "out_of_limit":
            actions[:, 1] = 10.0
        frames = frame_stamps = None
        if mode in FRAME_MODES and c.num_frames > 0:
            frames = np.zeros((c.num_frames, *c.frame_hw, 3), dtype=np.uint8)
            for j in range(c.num_frames):
                frames[j, :, :, j % 3] = 40 * (j + 1)
            every = max(1, c.chunk_size // c.num_frames)
            frame_stamps = tuple(
                int(stamps[min(c.chunk_size, (j + 1) * every) - 1]) for j in range(c.num_frames)
            )
        return ActionChunk(
            actions.astype(np.float32), obs.stamp_ns, period_ns, frames, frame_stamps
        )


class HoldBackend(ScriptedBackend):
    """Every action equals the observed state (the prefix, if any, is kept)."""

    def __init__(
        self, config: ScriptedConfig | None = None, sleep: Callable[[float], object] = time.sleep
    ):
        super().__init__(config or ScriptedConfig(amplitude_rad=0.0, num_frames=0), sleep)

    def _wave(self, stamps_ns: np.ndarray) -> np.ndarray:
        return np.repeat(self._center[None], len(stamps_ns), axis=0)

    def infer(self, obs: Observation, **kw) -> ActionChunk:  # noqa: D102 - see ScriptedBackend
        self.reset()
        return super().infer(obs, **kw)
