"""UMT5 text encoder with an instruction -> embedding LRU cache.

Sources: docs/motus.md §5.2, docs/checkpoint-format.md §7.

Motus conditions the video expert on the umt5-xxl encoder output, computed the Wan way: the
instruction is whitespace-cleaned, tokenised with special tokens, padded to 512 positions, the
encoder runs on all positions with the attention mask, only the first L (real-token) rows are
kept and the result is zero-padded back to 512 rows (no mask downstream; docs/motus.md §9.3). The
HF ``UMT5EncoderModel`` is the same architecture as Wan's own T5 code (keys: convert_official.py).

Instructions rarely change within an episode, so the per-instruction embedding is cached: the
official deployment re-encodes every call (docs/motus.md §6.2, §8).
"""

from __future__ import annotations

import html
from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase, UMT5EncoderModel


@dataclass(frozen=True)
class TextEncoderConfig:
    """Settings of :class:`T5TextEncoder`.

    Attributes:
        max_length: tokens kept per instruction (Wan: 512; longer text is truncated).
        context_len: rows of the returned context (Wan/Motus ``text_len``: 512, zero-padded).
        cache_size: instructions kept in the LRU cache (0 disables caching).
    """

    max_length: int = 512
    context_len: int = 512
    cache_size: int = 64

    def __post_init__(self) -> None:
        if self.max_length <= 0:
            raise ValueError(f"TextEncoderConfig.max_length: expected > 0, got {self.max_length}")
        if self.context_len < self.max_length:
            raise ValueError(
                f"TextEncoderConfig.context_len: expected >= max_length={self.max_length}, "
                f"got {self.context_len}"
            )
        if self.cache_size < 0:
            raise ValueError(f"TextEncoderConfig.cache_size: expected >= 0, got {self.cache_size}")


def clean_instruction(text: str) -> str:
    """Wan's prompt cleaning without ftfy: HTML-unescape twice, collapse whitespace, strip."""
    return " ".join(html.unescape(html.unescape(text)).split())


class T5TextEncoder:
    """Instruction strings -> zero-padded UMT5 context ``(B, context_len, d_model)``.

    Thread-safety: none (the cache is a plain dict); use from the inference thread only.

    Args:
        model: a ``UMT5EncoderModel`` (frozen; put in eval mode here).
        tokenizer: its tokenizer (umt5-xxl, or the tiny byte-level one from ``tiny.py``).
        config: lengths and cache size.
    """

    def __init__(
        self,
        model: UMT5EncoderModel,
        tokenizer: PreTrainedTokenizerBase,
        config: TextEncoderConfig | None = None,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.config = config or TextEncoderConfig()
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        """Width of the context rows (4096 for umt5-xxl)."""
        return int(self.model.config.d_model)

    def clear_cache(self) -> None:
        """Forget all cached embeddings and reset the hit/miss counters."""
        self._cache.clear()
        self.hits = self.misses = 0

    @torch.no_grad()
    def _encode_uncached(self, texts: list[str]) -> list[torch.Tensor]:
        enc = self.tokenizer(
            texts,
            padding="max_length",
            max_length=self.config.max_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        )
        device = next(self.model.parameters()).device
        ids = enc["input_ids"].to(device)
        mask = enc["attention_mask"].to(device)
        hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        lengths = mask.sum(dim=1).tolist()
        return [hidden[i, : int(n)].clone() for i, n in enumerate(lengths)]

    def encode_unpadded(
        self, instructions: list[str], use_cache: bool = True
    ) -> list[torch.Tensor]:
        """Encode instructions, returning the real-token rows only.

        Args:
            instructions: B strings.
            use_cache: look up / store results in the LRU cache.

        Returns:
            B tensors ``(L_i, d_model)`` in the model dtype, L_i = token count incl. EOS. Cached
            entries are returned as the same tensor object (do not modify in place).
        """
        texts = [clean_instruction(t) for t in instructions]
        out: dict[int, torch.Tensor] = {}
        todo = []
        for i, t in enumerate(texts):
            if use_cache and self.config.cache_size and t in self._cache:
                self._cache.move_to_end(t)
                out[i] = self._cache[t]
                self.hits += 1
            else:
                todo.append(i)
        if todo:
            unique = list(dict.fromkeys(texts[i] for i in todo))
            encoded = dict(zip(unique, self._encode_uncached(unique), strict=True))
            for i in todo:
                out[i] = encoded[texts[i]]
                self.misses += 1
            if use_cache and self.config.cache_size:
                for t, e in encoded.items():
                    self._cache[t] = e
                    self._cache.move_to_end(t)
                while len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
        return [out[i] for i in range(len(texts))]

    def encode(self, instructions: list[str], use_cache: bool = True) -> torch.Tensor:
        """Encode instructions to the Motus text context.

        Args:
            instructions: B strings.
            use_cache: look up / store results in the LRU cache.

        Returns:
            ``(B, context_len, d_model)`` in the model dtype; rows past each instruction's token
            count are exactly zero (docs/motus.md §1.2, §9.3).
        """
        rows = self.encode_unpadded(instructions, use_cache=use_cache)
        ref = rows[0]
        ctx = ref.new_zeros(len(rows), self.config.context_len, ref.shape[-1])
        for i, r in enumerate(rows):
            ctx[i, : r.shape[0]] = r
        return ctx
