"""Attention backend: flash-attn on CUDA when importable, PyTorch SDPA otherwise.

The official code calls flash-attn (FA3 if importable, else FA2) on bf16 inputs
(docs/motus.md §1.5, §8); flash-attn has no wheel for this platform (docs/platform.md §7), so it is
an optional import and SDPA is the portable path. Both compute unmasked softmax attention with
scale 1/√head_dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:  # pragma: no cover - depends on the install
    from flash_attn_interface import flash_attn_func as _flash_attn_func  # FA3

    FLASH_ATTN_VERSION = 3
except ImportError:  # pragma: no cover
    try:
        from flash_attn import flash_attn_func as _flash_attn_func  # FA2

        FLASH_ATTN_VERSION = 2
    except ImportError:
        _flash_attn_func = None
        FLASH_ATTN_VERSION = 0

_FLASH_DTYPES = (torch.float16, torch.bfloat16)


def flash_attn_available(device: torch.device | str) -> bool:
    """True when flash-attn is importable and ``device`` is CUDA."""
    return _flash_attn_func is not None and torch.device(device).type == "cuda"


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str = "auto"
) -> torch.Tensor:
    """Full bidirectional attention in (B, L, heads, head_dim) layout.

    Args:
        q: (B, Lq, N, D) queries.
        k: (B, Lk, N, D) keys.
        v: (B, Lk, N, D) values.
        backend: "auto" (flash-attn if available on CUDA with fp16/bf16 inputs, else SDPA),
            "sdpa" or "flash".

    Returns:
        (B, Lq, N, D) in the dtype of ``q``.

    Raises:
        ValueError: on an unknown backend or mismatched shapes.
        RuntimeError: if "flash" is forced where flash-attn cannot run.
    """
    if backend not in ("auto", "sdpa", "flash"):
        raise ValueError(f"backend: expected 'auto', 'sdpa' or 'flash', got {backend!r}")
    if q.ndim != 4 or k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"attention: expected (B, L, N, D) q/k/v, got {q.shape}, {k.shape}, {v.shape}"
        )
    use_flash = flash_attn_available(q.device) and backend != "sdpa"
    if backend == "flash" and not use_flash:
        raise RuntimeError(
            "attention: backend 'flash' requested but flash-attn on CUDA is unavailable"
        )
    if use_flash:
        dtype = q.dtype if q.dtype in _FLASH_DTYPES else torch.bfloat16
        out = _flash_attn_func(q.to(dtype), k.to(dtype), v.to(dtype))
        out = out[0] if isinstance(out, tuple) else out
        return out.to(q.dtype)
    v = v.to(q.dtype)
    k = k.to(q.dtype)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)
