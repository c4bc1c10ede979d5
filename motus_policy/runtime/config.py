"""Runtime configuration of the policy (one validated dataclass; ROS params are its projection)."""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields

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


def bounds(low: float, high: float = math.inf, *, low_open: bool = False, note: str = "") -> dict:
    """Field metadata for a numeric field's valid range, the one home of its bounds.

    ``metadata["range"]`` = ``(low, high)`` (``math.inf``: no upper bound),
    ``metadata["range_low_open"]`` = the low bound itself is excluded ("> low"),
    ``metadata["range_note"]`` = text added to the error message (e.g. what 0 means).
    :meth:`PolicyRuntimeConfig.__post_init__` checks every field against it
    (:func:`check_range`), and the ROS parameter ranges are derived from it
    (:func:`motus_policy.ros.params.field_ranges`), so the two cannot drift apart.
    """
    return {"range": (low, high), "range_low_open": low_open, "range_note": note}


def range_text(f: Field, integer: bool) -> str:
    """What field ``f``'s :func:`bounds` metadata accepts, in words.

    E.g. "an integer >= 1", "a finite number > 0", "a number in (0, 1]", followed by the
    field's ``range_note`` in parentheses.
    """
    low, high = f.metadata["range"]
    low_open = f.metadata.get("range_low_open", False)
    kind = "an integer" if integer else ("a finite number" if math.isinf(high) else "a number")
    if math.isinf(high):
        text = f"{kind} {'>' if low_open else '>='} {low:g}"
    else:
        text = f"{kind} in {'(' if low_open else '['}{low:g}, {high:g}]"
    note = f.metadata.get("range_note", "")
    return f"{text} ({note})" if note else text


def check_range(obj: object, f: Field) -> None:
    """Check ``getattr(obj, f.name)`` against field ``f``'s ``bounds`` metadata.

    The field's type is its default's: an ``int`` default takes integers only, a ``float``
    default takes ints and floats; bools are refused for both; floats must be finite.

    Raises:
        ValueError: ``"<field>: expected <range_text>, got <value>"``.
    """
    v = getattr(obj, f.name)
    integer = isinstance(f.default, int) and not isinstance(f.default, bool)
    low, high = f.metadata["range"]
    low_open = f.metadata.get("range_low_open", False)
    ok = (
        not isinstance(v, bool)
        and isinstance(v, int if integer else int | float)
        and math.isfinite(v)
        and (v > low if low_open else v >= low)
        and v <= high
    )
    if not ok:
        raise ValueError(f"{f.name}: expected {range_text(f, integer)}, got {v!r}")


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
    Numeric fields carry their valid range in their metadata (:func:`bounds`): ``__post_init__``
    checks it and the policy node's ROS parameter ranges are derived from it.

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
            **bounds(0, note="0 = the checkpoint's"),
        },
    )
    ensemble_coeff: float = field(
        default=0.01,
        metadata={
            "description": "temporal ensemble m in w_i = exp(-m i), w_0 the oldest (ACT Alg. 2)",
            **bounds(0.0),
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
    num_steps: int = field(
        default=10, metadata={"description": "denoising steps per chunk", **bounds(1)}
    )
    instruction: str = field(default="", metadata={"description": "task instruction"})
    ramp_in_s: float = field(
        default=1.0,
        metadata={
            "description": "blend from the current pose to the plan over this time [s]",
            **bounds(0.0),
        },
    )
    velocity_scale: float = field(
        default=1.0,
        metadata={
            "description": "fraction (0, 1] of the profile's velocity limits allowed",
            **bounds(0.0, 1.0, low_open=True),
        },
    )
    limit_tolerance: float = field(
        default=0.02,
        metadata={
            "description": "targets past a limit by up to this fraction of the joint's range "
            "are clamped to it; further out they are rejected (hold); a measured joint further "
            "out is a fault (hold, nothing published before the gate is armed)",
            **bounds(0.0, 0.1),
        },
    )
    gripper_limit_tolerance: float = field(
        default=0.25,
        metadata={
            "description": "the same for the grippers, which are driven against their stops "
            "by design (fraction of the gripper range, [0, 1])",
            **bounds(0.0, 1.0),
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
            "8.33 Hz lasts 1.92 s) [s]",
            **bounds(0.0, low_open=True),
        },
    )
    first_chunk_timeout_s: float = field(
        default=30.0,
        metadata={
            "description": "hold and report a fault if no chunk comes this long after the "
            "activation, the last stream fault, an e-stop reset or a config change that dropped "
            "the plan, whichever is latest [s]",
            **bounds(0.0, low_open=True),
        },
    )
    latency_window: int = field(
        default=5,
        metadata={
            "description": "rtc: committed steps d = ceil(max of the last N latencies / action "
            "period)",
            **bounds(1),
        },
    )
    prefix_margin_steps: int = field(
        default=0,
        metadata={
            "description": "rtc: extra committed steps added to the measured d",
            **bounds(0),
        },
    )
    control_rate_hz: float = field(
        default=0.0,
        metadata={"description": "command rate [Hz]; 0 = the profile's", **bounds(0.0)},
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
        for f in fields(self):
            if "range" in f.metadata:
                check_range(self, f)
        if self.state_source not in STATE_SOURCES:
            raise bad("state_source", f"one of {list(STATE_SOURCES)}")
        if not isinstance(self.instruction, str):
            raise bad("instruction", "a string")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all fields, in declaration order."""
        return tuple(f.name for f in fields(cls))
