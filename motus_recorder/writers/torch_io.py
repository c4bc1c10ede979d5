"""``.pt`` files of the Motus format (the only recorder module that imports torch, lazily).

Motus stores ``qpos/<i>.pt`` as a float32 tensor [T, 14] and ``instructions/<i>.pt`` (UMT5
embedding) as a tensor [L, 4096] or a list of them (docs/motus.md §4.1, §4.2). Arrays cross this
boundary as numpy; torch is imported inside the functions so that importing the recorder or the
dataset reader does not load it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def save_tensor(
    path: str | os.PathLike[str],
    array: np.ndarray,
    fsync: bool = True,
    torch_dtype: str | None = None,
) -> None:
    """Write ``array`` as a torch tensor with ``torch.save`` (same shape).

    Args:
        path: destination file (overwritten).
        array: numpy array; a copy is made so the tensor owns its memory.
        fsync: flush the file to the disk before returning.
        torch_dtype: optional torch dtype name to cast to (e.g. ``"bfloat16"`` for UMT5
            embeddings, as upstream stores them); default keeps the numpy dtype.

    Raises:
        OSError: the write failed (e.g. ENOSPC); the partial file is left for the caller's
            temporary-folder cleanup.
    """
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array).copy())
    if torch_dtype is not None:
        tensor = tensor.to(getattr(torch, torch_dtype))
    with open(path, "wb") as f:
        torch.save(tensor, f)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def load_tensor(path: str | os.PathLike[str]) -> np.ndarray | list[np.ndarray]:
    """Read a ``.pt`` tensor (or list of tensors) as numpy; bf16/fp16 become float32.

    Raises:
        ValueError: the file holds neither a tensor nor a list of tensors.
    """
    import torch

    obj = torch.load(Path(path), map_location="cpu", weights_only=True)

    def to_np(t: object) -> np.ndarray:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{path}: expected a tensor, found {type(t).__name__}")
        if t.dtype in (torch.bfloat16, torch.float16):
            t = t.float()
        return t.detach().numpy()

    if isinstance(obj, list | tuple):
        return [to_np(t) for t in obj]
    return to_np(obj)
