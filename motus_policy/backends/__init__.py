"""Policy backends: the :class:`PolicyBackend` protocol, its implementations and the factory.

``base`` (protocol, modes), ``fakes`` (deterministic, no torch), ``motus`` (the in-process Motus
model, torch), ``remote`` (any backend in a child process). The factory lives here so that
``base`` imports none of its implementations (they import ``base``).
"""

from __future__ import annotations

from motus_policy.backends.base import PolicyBackend

BACKENDS = ("scripted", "hold", "motus")


def make_backend(kind: str, **kwargs) -> PolicyBackend:
    """Build a backend by name; imports lazily so torch is only loaded for ``motus``.

    Args:
        kind: ``scripted``, ``hold`` or ``motus``.
        **kwargs: ``config`` (a ScriptedConfig) for the fakes; for ``motus`` passed to
            ``motus_policy.backends.motus.MotusBackend(**kwargs)``.

    Raises:
        ValueError: unknown kind.
        ImportError: ``motus`` requested but :mod:`motus_policy.backends.motus` is not available.
    """
    if kind in ("scripted", "hold"):
        from motus_policy.backends import fakes

        cls = fakes.ScriptedBackend if kind == "scripted" else fakes.HoldBackend
        return cls(kwargs.get("config"))
    if kind == "motus":
        try:
            from motus_policy.backends.motus import MotusBackend
        except ImportError as exc:
            raise ImportError(
                "backend 'motus' needs motus_policy.backends.motus.MotusBackend (the Motus model "
                f"package and torch); import failed: {exc}"
            ) from exc
        return MotusBackend(**kwargs)
    raise ValueError(f"backend: expected one of {list(BACKENDS)}, got {kind!r}")
