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
import logging
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
        instruction_max_tokens: bound on an instruction for *both* encoders, in tokens of this
            tokenizer with EOS (:meth:`T5TextEncoder.fit`); the official text length, 512.
            Independent of ``max_length`` so the tiny encoders (``max_length`` 32) keep the
            same bound on what reaches the VLM.
    """

    max_length: int = 512
    context_len: int = 512
    cache_size: int = 64
    instruction_max_tokens: int = 512

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
        if self.instruction_max_tokens < 2:
            raise ValueError(
                "TextEncoderConfig.instruction_max_tokens: expected >= 2, got "
                f"{self.instruction_max_tokens}"
            )


log = logging.getLogger(__name__)

MAX_TOKEN_CHARS = 64
"""Characters per token that no tokenizer exceeds in practice: text beyond
``instruction_max_tokens * MAX_TOKEN_CHARS`` characters is cut before tokenising, so a runaway
string costs no more than a long instruction (issue #14 defect 6)."""


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
        self._fitted: OrderedDict[str, str] = OrderedDict()  # fit(): instruction -> bounded
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

    def fit(self, instruction: str) -> str:
        """The instruction bounded to the official text length, for T5 *and* the VLM.

        Policy (issue #14 defect 6; docs/motus.md §5.2): an instruction whose UMT5 tokens
        (EOS included) exceed ``config.instruction_max_tokens`` (512, the official
        ``text_len``) is truncated, not refused: it is whitespace-cleaned
        (:func:`clean_instruction`) and cut after the last token that fits (511 tokens + EOS),
        exactly where the tokenizer's own truncation would cut, and a warning (once per
        distinct instruction) names both token counts and the characters kept. Callers give
        the result to both encoders, so the VLM prompt gets the same bound. Shorter
        instructions are returned unchanged.

        Args:
            instruction: the text (any length; beyond ``instruction_max_tokens *
                MAX_TOKEN_CHARS`` characters it is cut before tokenising).

        Returns:
            ``instruction`` itself, or its cleaned, truncated form.
        """
        if instruction in self._fitted:
            return self._fitted[instruction]
        limit = self.config.instruction_max_tokens
        text = clean_instruction(instruction[: limit * MAX_TOKEN_CHARS])
        enc = self.tokenizer(
            text, add_special_tokens=True, truncation=False, return_offsets_mapping=True
        )
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        if len(ids) <= limit and len(instruction) <= limit * MAX_TOKEN_CHARS:
            return self._remember(instruction, instruction)
        special = len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        keep = limit - special  # real tokens kept (EOS appended by the tokenizer)
        end = max((e for (_, e) in offsets[:keep]), default=0)
        cut = text[:end]
        log.warning(
            "instruction of %d characters is %s UMT5 tokens, above the official text length "
            "%d: truncated to its first %d tokens (%d characters) for both T5 and the VLM",
            len(instruction),
            f"{len(ids)}" if len(instruction) <= limit * MAX_TOKEN_CHARS else f">= {len(ids)}",
            limit,
            keep,
            len(cut),
        )  # once per distinct instruction: the result is remembered
        return self._remember(instruction, cut)

    def _remember(self, instruction: str, fitted: str) -> str:
        self._fitted[instruction] = fitted
        while len(self._fitted) > max(self.config.cache_size, 1):
            self._fitted.popitem(last=False)
        return fitted

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
