"""``.pt`` files of the Motus format and the UMT5 encoder of the instruction embeddings.

The only recorder module that imports torch and transformers, lazily.

Motus stores ``qpos/<i>.pt`` as a float32 tensor [T, 14] and ``instructions/<i>.pt`` (UMT5
embedding) as a tensor [L, 4096] or a list of them (docs/motus.md §4.1, §4.2). Arrays cross this
boundary as numpy; torch is imported inside the functions so that importing the recorder or the
dataset reader does not load it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

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
    with open(path, "wb") as f:
        write_tensor(f, array, torch_dtype)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def write_tensor(f: IO[bytes], array: np.ndarray, torch_dtype: str | None = None) -> None:
    """``torch.save`` of ``array`` (copied, optionally cast to ``torch_dtype``) into ``f``."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array).copy())
    if torch_dtype is not None:
        tensor = tensor.to(getattr(torch, torch_dtype))
    torch.save(tensor, f)


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


UMT5_WIDTH = 4096
"""Hidden size of umt5-xxl, the width Motus's ``text_embedding`` (Linear 4096 -> 3072) and the
official loaders expect of ``instructions/<i>.pt`` (docs/motus.md §1.2, §4.2)."""

UMT5_MAX_TOKENS = 512
"""Tokens kept per instruction: Wan's ``text_len`` (``T5EncoderModel(text_len=512)`` in the
official ``inference/real_world/Motus/encode_t5_instruction.py``)."""


def clean_instruction(text: str) -> str:
    """Wan's prompt cleaning without ftfy: HTML-unescape twice, collapse whitespace, strip.

    Upstream: ``HuggingfaceTokenizer(clean='whitespace')`` in ``bak/wan/modules/tokenizers.py``.
    The same rule as the policy's text encoder, so training and inference agree.
    """
    import html

    return " ".join(html.unescape(html.unescape(text)).split())


class UMT5Embedder:
    """Instruction text -> UMT5 encoder output, as the official Motus pre-encoding computes it.

    Upstream (``encode_t5_instruction.py`` with Wan's ``T5EncoderModel``): the text is
    whitespace-cleaned, tokenised with special tokens, padded / truncated to 512 positions, run
    through the umt5-xxl encoder in bf16 with the attention mask, and the rows of the real tokens
    (EOS included) are kept: a tensor [L, 4096], L <= 512. Here the Hugging Face
    ``UMT5EncoderModel`` (the same network, docs/motus.md §5.2) is read from a local folder.

    Args:
        path: a local ``save_pretrained`` folder of a ``UMT5EncoderModel`` (``config.json`` and
            the weights), e.g. a converted ``google/umt5-xxl`` encoder.
        tokenizer_path: the tokenizer's folder; default ``path`` (the files next to the
            weights), else ``path/tokenizer``.
        device: torch device string (``cpu``, ``cuda``, ``cuda:1``; ``auto``: cuda when
            available, else cpu).
        dtype: torch dtype name the encoder runs in (upstream: ``bfloat16``).
        max_tokens: tokens kept per instruction (:data:`UMT5_MAX_TOKENS`).

    Raises:
        FileNotFoundError: ``path`` or the tokenizer folder is missing or incomplete (the
            message names the folder and the file expected; nothing is downloaded).
        ValueError: unknown ``dtype``, or ``max_tokens`` < 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        tokenizer_path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str = "bfloat16",
        max_tokens: int = UMT5_MAX_TOKENS,
    ):
        import torch
        from transformers import AutoTokenizer, UMT5EncoderModel

        model_dir = Path(path)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"{model_dir}: expected a UMT5 encoder folder (save_pretrained: config.json and "
                "model weights); no config.json there"
            )
        if tokenizer_path is None:
            tokenizer_path = model_dir if _has_tokenizer(model_dir) else model_dir / "tokenizer"
        tok_dir = Path(tokenizer_path)
        if not _has_tokenizer(tok_dir):
            raise FileNotFoundError(
                f"{tok_dir}: expected the UMT5 tokenizer files (tokenizer.json, or spiece.model, "
                "with tokenizer_config.json); not found"
            )
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype: expected a torch dtype name such as bfloat16, got {dtype!r}")
        if max_tokens < 1:
            raise ValueError(f"max_tokens: expected >= 1, got {max_tokens}")
        self.torch_dtype = getattr(torch, dtype)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.max_tokens = max_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        self.model = UMT5EncoderModel.from_pretrained(
            str(model_dir), torch_dtype=self.torch_dtype, local_files_only=True
        )
        self.model.to(self.device).eval().requires_grad_(False)
        self.width = int(self.model.config.d_model)
        self.path = model_dir

    def __call__(self, text: str) -> np.ndarray:
        """Encode one instruction.

        Returns:
            float32 [L, width] (values of the ``dtype`` computation; writing them as bf16 is
            exact when ``dtype`` is bfloat16), L = real tokens including EOS.

        Raises:
            ValueError: the text is empty after cleaning.
        """
        import torch

        cleaned = clean_instruction(text)
        if not cleaned:
            raise ValueError(f"instruction: expected a non-empty text, got {text!r}")
        enc = self.tokenizer(
            [cleaned],
            padding="max_length",
            max_length=self.max_tokens,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        with torch.no_grad():
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        n = int(mask[0].sum())
        return hidden[0, :n].float().cpu().numpy()


def _has_tokenizer(folder: Path) -> bool:
    return (folder / "tokenizer.json").is_file() or (folder / "spiece.model").is_file()
