"""Runtime configuration of the policy (one validated dataclass; ROS params are its projection)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from motus_policy.backends.base import MODES

STRATEGIES = ("sync", "temporal_ensemble", "rtc")
"""Chunk execution strategies (:mod:`motus_policy.runtime.chunking`): ``sync`` (the official
Motus behaviour), ``temporal_ensemble`` (ACT) and ``rtc`` (real-time chunking). The one home of
this list: the scheduler, the CLIs and the benchmarks import it."""
STRATEGY_ALIASES = {"prefix": "rtc"}
"""Older strategy names, accepted everywhere a strategy is given (ROS parameters, YAML, CLIs) and
mapped to the current name: ``prefix`` is ``rtc``."""
STATE_SOURCES = ("auto", "command", "measured")
"""The model's state input must match what the training data's qpos held (recorder
``qpos_source``): ``command`` = the last command this node published (the recorder default,
docs/motus.md §4.1 ``joint_action``; before the first command, the measured pose), ``measured`` =
the joint states, ``auto`` = what the checkpoint says its training qpos held (the backend's
``qpos_source``; ``command`` when the checkpoint does not say, e.g. official ones). On a gripper
holding an object the two differ by the object's width (about 0.6 of the normalised range on
the simulated cube)."""
QPOS_TO_STATE_SOURCE = {"command": "command", "state": "measured"}
"""Recorder ``qpos_source`` -> the state source that reproduces it at run time."""
OUTPUT_INTERFACES = ("profile", "joint_state", "joint_trajectory")


@dataclass(frozen=True)
class PolicyRuntimeConfig:
    """How the runtime turns chunks into commands. Validated on construction.

    Defaults: ``sync`` with ``joint`` mode and 10 steps is the official Motus deployment
    behaviour (docs/motus.md §2.2: N = 10 in every shipped config); ``rtc`` (real-time chunking) is
    the recommended strategy for smooth motion when the backend supports inpainting.

    Each field's ``metadata["description"]`` is its help text (ROS parameter descriptions, CLI
    ``--help``); ``metadata["aliases"]`` lists older names accepted for it: ``n_execute`` is
    ``n_action_steps`` (LeRobot's name for actions executed per chunk). ``strategy`` accepts the
    values of :data:`STRATEGY_ALIASES` (``prefix`` = ``rtc``) and stores the current name. No
    deprecation warning is given for either: they are plain aliases.

    Raises:
        ValueError: a field is out of range or not one of its allowed values (the message names
            the field).
    """

    strategy: str = field(
        default="sync",
        metadata={
            "description": f"chunk execution strategy, one of {list(STRATEGIES)} "
            "(rtc = real-time chunking; 'prefix' is accepted for rtc)",
            "choices": STRATEGIES,
            "value_aliases": STRATEGY_ALIASES,
        },
    )
    n_action_steps: int = field(
        default=8,
        metadata={
            "description": "actions of a chunk executed before re-planning (sync, rtc), "
            "<= the backend's chunk size; 0 = the checkpoint's recommended number (the whole "
            "chunk when it records none). Alias: n_execute",
            "aliases": ("n_execute",),
        },
    )
    ensemble_coeff: float = field(
        default=0.01,
        metadata={
            "description": "temporal ensemble m in w_i = exp(-m i), w_0 the oldest (ACT Alg. 2)"
        },
    )
    mode: str = field(
        default="joint",
        metadata={
            "description": "inference mode: joint | vla | idm predict actions; wm | vgm "
            "predict video only (the arm holds)",
            "choices": MODES,
        },
    )
    num_steps: int = field(default=10, metadata={"description": "denoising steps per chunk"})
    instruction: str = field(default="", metadata={"description": "task instruction"})
    ramp_in_s: float = field(
        default=1.0,
        metadata={"description": "blend from the current pose to the plan over this time [s]"},
    )
    velocity_scale: float = field(
        default=1.0,
        metadata={"description": "fraction (0, 1] of the profile's velocity limits allowed"},
    )
    limit_tolerance: float = field(
        default=0.02,
        metadata={
            "description": "targets past a limit by up to this fraction of the joint's range "
            "are clamped to it; further out they are rejected (hold); a measured joint further "
            "out is a fault (hold, nothing published before the gate is armed)"
        },
    )
    gripper_limit_tolerance: float = field(
        default=0.25,
        metadata={
            "description": "the same for the grippers, which are driven against their stops "
            "by design (fraction of the gripper range, [0, 1])"
        },
    )
    state_source: str = field(
        default="auto",
        metadata={
            "description": "state given to the model: 'command' = the last published command "
            "(what the recorder's default qpos holds), 'measured' = the joint states, 'auto' = "
            "what the checkpoint's training data held (command when it does not say)",
            "choices": STATE_SOURCES,
        },
    )
    watchdog_inference_s: float = field(
        default=2.0,
        metadata={
            "description": "hold when the next chunk is this much later than due, i.e. than "
            "the end of the current chunk's executed actions (not its age: a 16-action chunk at "
            "8.33 Hz lasts 1.92 s) [s]"
        },
    )
    first_chunk_timeout_s: float = field(
        default=30.0,
        metadata={
            "description": "hold and report a fault if no chunk comes this long after the "
            "activation, the last stream fault, an e-stop reset or a config change that dropped "
            "the plan, whichever is latest [s]"
        },
    )
    latency_window: int = field(
        default=5,
        metadata={
            "description": "rtc: committed steps d = ceil(max of the last N latencies / action "
            "period)"
        },
    )
    prefix_margin_steps: int = field(
        default=0,
        metadata={"description": "rtc: extra committed steps added to the measured d"},
    )
    control_rate_hz: float = field(
        default=0.0, metadata={"description": "command rate [Hz]; 0 = the profile's"}
    )
    output_interface: str = field(
        default="profile",
        metadata={
            "description": f"command output, one of {list(OUTPUT_INTERFACES)}",
            "choices": OUTPUT_INTERFACES,
        },
    )
    publish_imagined_frames: bool = field(
        default=True, metadata={"description": "publish predicted frames in joint/wm/vgm modes"}
    )

    def __post_init__(self) -> None:
        def bad(name: str, expected: str) -> ValueError:
            return ValueError(f"{name}: expected {expected}, got {getattr(self, name)!r}")

        if self.strategy in STRATEGY_ALIASES:
            object.__setattr__(self, "strategy", STRATEGY_ALIASES[self.strategy])
        if self.strategy not in STRATEGIES:
            raise bad("strategy", f"one of {list(STRATEGIES)}")
        if self.mode not in MODES:
            raise bad("mode", f"one of {list(MODES)}")
        if self.output_interface not in OUTPUT_INTERFACES:
            raise bad("output_interface", f"one of {list(OUTPUT_INTERFACES)}")
        for name in ("num_steps", "latency_window"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "an integer >= 1")
        n = self.n_action_steps
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise bad("n_action_steps", "an integer >= 0 (0 = the checkpoint's)")
        if not isinstance(self.prefix_margin_steps, int) or self.prefix_margin_steps < 0:
            raise bad("prefix_margin_steps", "an integer >= 0")
        for name, lo_ok in (
            ("ensemble_coeff", True),
            ("ramp_in_s", True),
            ("control_rate_hz", True),
            ("watchdog_inference_s", False),
            ("first_chunk_timeout_s", False),
            ("velocity_scale", False),
        ):
            v = getattr(self, name)
            if (
                not isinstance(v, int | float)
                or not math.isfinite(v)
                or v < 0
                or (v == 0 and not lo_ok)
            ):
                raise bad(name, "a finite number " + (">= 0" if lo_ok else "> 0"))
        if self.velocity_scale > 1:
            raise bad("velocity_scale", "a number in (0, 1]")
        lt = self.limit_tolerance
        if not isinstance(lt, int | float) or not 0 <= lt <= 0.1:
            raise bad("limit_tolerance", "a number in [0, 0.1]")
        gt = self.gripper_limit_tolerance
        if isinstance(gt, bool) or not isinstance(gt, int | float) or not 0 <= gt <= 1:
            raise bad("gripper_limit_tolerance", "a number in [0, 1]")
        if self.state_source not in STATE_SOURCES:
            raise bad("state_source", f"one of {list(STATE_SOURCES)}")
        if not isinstance(self.instruction, str):
            raise bad("instruction", "a string")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in declaration order."""
        return tuple(f.name for f in fields(cls))
