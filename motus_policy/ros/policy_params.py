"""Parameters of ``policy_node``: declaration, validation and run-time application.

Every :class:`PolicyRuntimeConfig` field is a parameter of the same name (read-only unless in
:data:`RUNTIME_SETTABLE`), and its aliases too (``n_execute`` = ``n_action_steps``; see
:mod:`motus_policy.ros.params`; ``strategy`` also takes ``prefix`` for ``rtc``); the scripted
fakes' knobs are ``scripted.*`` (``scripted.fault`` and
``scripted.latency_s`` can change at run time, for tests and demos). Node-level parameters:
``profile``, ``backend`` (scripted | hold | motus), ``backend_process`` (``auto`` | true |
false: run the backend in a child process, :class:`~motus_policy.backends.remote.RemoteBackend`;
``auto`` = a child for ``motus``, in-process for the fakes), ``backend_nice`` (niceness added to
that child), ``backend_threads`` (its ``OMP_NUM_THREADS``, default 1; 0: the library default),
``control_loop`` (``timer``: an executor timer, the default; ``thread``: a dedicated thread
woken at absolute deadlines), ``control_priority`` (SCHED_FIFO priority 1..99 of the node's
threads but the inference thread, best effort: needs CAP_SYS_NICE / an rtprio limit; 0: normal
scheduling),
``image_height`` / ``image_width`` (0: the profile's size), ``status_period_s``,
``max_instruction_chars`` (read-only: the longest ``instruction`` accepted, by parameter or on
``~/instruction``; longer ones are rejected with a message saying both lengths),
``motus.checkpoint``, ``motus.device``, ``motus.dtype`` (``auto``: bf16 on CUDA, fp32 on CPU;
``float32``; ``bfloat16``), ``autostart``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter

from motus_policy.backends.fakes import FAULTS, ScriptedConfig
from motus_policy.ros.params import (
    dataclass_from_params,
    declare_dataclass,
    field_ranges,
    replace_from_changes,
)
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.runtime.policy_runtime import RUNTIME_SETTABLE, PolicyRuntime
from motus_recorder.profile import RobotProfile

SCRIPTED_PREFIX = "scripted."
SCRIPTED_EXCLUDE = ("action_rate_hz", "frame_hw")  # from the profile / fixed
CONTROL_LOOPS = ("timer", "thread")
PROCESS_DEFAULT_KINDS = ("motus",)
"""Backends that ``backend_process:=auto`` runs in a child process."""
MAX_INSTRUCTION_CHARS = 2048
"""Default ``max_instruction_chars``. The official text length is 512 T5 tokens (the T5
output is padded to 512 text rows, docs/motus.md §1.2); English prose runs about 4 characters
per SentencePiece token, so 2048 characters cover it, while a runaway string (issue #14: 32k
characters took 60 s, 1 MB stalled the backend) is refused before it reaches the encoders."""


RUNTIME_RANGES = field_ranges(PolicyRuntimeConfig)
"""ROS parameter ranges of the numeric PolicyRuntimeConfig fields, derived from the bounds in
the fields' metadata that its ``__post_init__`` checks
(:func:`motus_policy.runtime.config.bounds`), so ``ros2 param describe`` shows them and an
out-of-range set is refused by rclpy (issue #15 §7); an open bound ("> 0") becomes
:data:`~motus_policy.ros.params.POSITIVE`."""


def declare(node: Node) -> None:
    """Declare every parameter of the policy node."""
    node.declare_parameter("profile", "aloha_sim")
    node.declare_parameter("backend", "scripted")
    node.declare_parameter(
        "backend_process",
        "auto",
        ParameterDescriptor(
            dynamic_typing=True,
            description="run the backend in a child process: true | false | auto (motus only)",
        ),
    )
    node.declare_parameter("backend_nice", 0)
    node.declare_parameter("backend_threads", 1)
    node.declare_parameter("control_loop", "timer")
    node.declare_parameter("control_priority", 0)
    node.declare_parameter("image_height", 0)
    node.declare_parameter("image_width", 0)
    node.declare_parameter("status_period_s", 0.5)
    node.declare_parameter("motus.checkpoint", "")
    node.declare_parameter("motus.device", "auto")
    node.declare_parameter(
        "motus.dtype",
        "auto",
        ParameterDescriptor(
            read_only=True,
            description="Motus run precision: auto (bf16 on CUDA, fp32 on CPU) | float32 | "
            "bfloat16",
        ),
    )
    node.declare_parameter("autostart", False)
    node.declare_parameter(
        "max_instruction_chars",
        MAX_INSTRUCTION_CHARS,
        ParameterDescriptor(
            read_only=True,
            description="longest instruction accepted [characters] (parameter or "
            "~/instruction); longer ones are rejected",
        ),
    )
    fixed = [f for f in PolicyRuntimeConfig.field_names() if f not in RUNTIME_SETTABLE]
    declare_dataclass(node, PolicyRuntimeConfig, read_only=fixed)  # ranges from the fields
    declare_dataclass(node, ScriptedConfig, SCRIPTED_PREFIX, exclude=SCRIPTED_EXCLUDE)


def backend_kwargs(node: Node, kind: str, profile: RobotProfile) -> dict:
    """Keyword arguments for :func:`motus_policy.backends.make_backend` from the parameters.

    ``motus``: ``profile``, ``checkpoint`` (``motus.checkpoint``), ``device`` (``motus.device``).
    Fakes: ``config`` from ``scripted.*`` with the profile's record rate as action rate.
    """
    if kind == "motus":
        return {
            "profile": profile,
            "checkpoint": node.get_parameter("motus.checkpoint").value,
            "device": node.get_parameter("motus.device").value,
            "dtype": node.get_parameter("motus.dtype").value,
        }
    cfg = dataclass_from_params(
        node,
        ScriptedConfig,
        SCRIPTED_PREFIX,
        SCRIPTED_EXCLUDE,
        action_rate_hz=profile.record_rate_hz,
    )
    return {"config": cfg}


def backend_in_process(node: Node, kind: str) -> bool:
    """Whether ``backend_process`` asks for a child process for backend ``kind``.

    Raises:
        ValueError: a value other than true / false / "auto" (strings "true" / "false" work).
    """
    value = node.get_parameter("backend_process").value
    if isinstance(value, str) and value.lower() in ("true", "false", "auto"):
        value = {"true": True, "false": False}.get(value.lower(), "auto")
    if value == "auto":
        return kind in PROCESS_DEFAULT_KINDS
    if isinstance(value, bool):
        return value
    raise ValueError(f"backend_process: expected true, false or 'auto', got {value!r}")


def control_loop(node: Node) -> str:
    """The ``control_loop`` parameter, checked.

    Raises:
        ValueError: not one of :data:`CONTROL_LOOPS`.
    """
    value = node.get_parameter("control_loop").value
    if value not in CONTROL_LOOPS:
        raise ValueError(f"control_loop: expected one of {list(CONTROL_LOOPS)}, got {value!r}")
    return value


def check_instruction(text: str, max_chars: int) -> None:
    """Refuse an instruction longer than ``max_chars`` characters.

    Raises:
        ValueError: naming both lengths (and the parameter that sets the limit).
    """
    if len(text) > max_chars:
        raise ValueError(
            f"instruction: at most {max_chars} characters (max_instruction_chars), got "
            f"{len(text)} (starting {text[:40]!r}); shorten it"
        )


def validate(
    runtime: PolicyRuntime | None,
    config_from_params: Callable[[], PolicyRuntimeConfig],
    params: Sequence[Parameter],
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS,
) -> tuple[bool, str]:
    """Check a parameter change against the config's validation; returns (ok, reason).

    Also refuses an ``instruction`` longer than ``max_instruction_chars`` characters.
    """
    try:
        for p in params:
            if p.name == "instruction" and isinstance(p.value, str):
                check_instruction(p.value, max_instruction_chars)
        base = runtime.config if runtime is not None else config_from_params()
        cfg = replace_from_changes(base, params)
        if runtime is not None:
            runtime.resolve_n_action_steps(cfg)  # raises beyond the chunk size
        for p in params:
            if p.name == SCRIPTED_PREFIX + "fault" and p.value not in FAULTS:
                raise ValueError(
                    f"scripted.fault: expected one of {list(FAULTS)}, got {p.value!r}"
                )
    except (ValueError, TypeError) as exc:
        return False, str(exc)
    return True, ""


def apply(runtime: PolicyRuntime, params: Sequence[Parameter]) -> None:
    """Apply validated changes to the running runtime (and the scripted fakes' live knobs)."""
    runtime.update_config(replace_from_changes(runtime.config, params))
    backend_cfg = getattr(runtime.backend, "config", None)
    set_option = getattr(runtime.backend, "set_option", None)  # a RemoteBackend
    for p in params:
        if not p.name.startswith(SCRIPTED_PREFIX):
            continue
        name = p.name.removeprefix(SCRIPTED_PREFIX)
        if isinstance(backend_cfg, ScriptedConfig):
            setattr(backend_cfg, name, p.value)
        elif set_option is not None and runtime.backend.kind in ("scripted", "hold"):
            set_option(name, p.value)
