"""Frozen Qwen3-VL feature extractor for the understanding expert (docs/motus.md §1.4).

Motus reads the **last hidden state of the language model** for every prompt token (template,
text and image tokens); no pooling, no lm_head. The prompt is one user message holding the
T-layout composite and the instruction. The official code differs between training
(image then text, generation prompt) and deployment (text then image, no generation prompt);
both are selectable here (docs/motus.md §9.5). Default: the deployment order.

Prompt inputs come from the model's own ``Qwen3VLProcessor`` (chat template, Qwen2-VL image
processor, ``<|image_pad|>`` expansion, ``mm_token_type_ids``) whenever it can be built
(:func:`make_processor`). In transformers 5.23 that class requires torchvision for its video
processor, which the CPU build of torch here cannot import; without it the same steps run by hand
(:meth:`VLMFeatureExtractor.build_inputs`): chat template -> expand each ``<|image_pad|>`` to
``t*h*w / merge^2`` copies -> tokenize; ``pixel_values``/``image_grid_thw`` from the image
processor; ``mm_token_type_ids`` (0 text, 1 image), which transformers 5.x requires whenever
``image_grid_thw`` is passed (docs/platform.md §6 (c)). tests/model/test_vlm_processor.py checks
that both paths give identical tensors on a tokenizer and image processor saved to disk.

Features are cached per observation (key: image bytes + instruction): the official loop re-runs
the VLM at every denoising step with identical inputs (docs/motus.md §2.2, §8).

Batches of prompts of different lengths are padded as the official code does: the *input ids*
are right-padded with id 0 (attention mask 0) and the understanding expert attends to the LM's
last hidden states at the pad positions too (official data/dataset.py
``_process_vlm_inputs_batch`` and models/motus.py ``_process_vlm_inputs_to_tokens``). With right
padding and the causal, padding-masked attention, every pad position of a row sees the same
thing (the row's real tokens, a pad embedding, the pad position id), so all its pad rows equal
one "pad state": :meth:`VLMFeatureExtractor.pair_features` computes it with one extra pad token
and :func:`pad_features` fills the batch with it, which keeps per-pair caching exact.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase, Qwen3VLForConditionalGeneration

PAD_ID = 0
"""Input id the official code right-pads VLM prompts with (see the module docstring)."""


def make_processor(tokenizer: PreTrainedTokenizerBase, image_processor):
    """The model's own ``Qwen3VLProcessor`` over ``tokenizer`` and ``image_processor``, or None.

    None when torchvision cannot be imported (the processor's video half needs it; the CPU
    build of torch here has none that imports, docs/platform.md): callers then build the same
    inputs by hand (module docstring). The chat template is the tokenizer's.
    """
    try:
        import torchvision  # noqa: F401  (Qwen3VLVideoProcessor needs it)
        from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor
    except Exception:  # noqa: BLE001 - ImportError, or a torchvision built for another torch
        return None
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(),
        chat_template=tokenizer.chat_template,
    )


def pad_features(
    rows: list[torch.Tensor], pads: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch per-pair features the official way (pad states, not zeros).

    Row i's positions past its length hold its pad state ``pads[i]`` (the LM hidden state at a
    pad position; module docstring).

    Args:
        rows: B tensors (L_i, D), the real tokens' last hidden states.
        pads: B tensors (D,), each row's pad state.

    Returns:
        ``features`` (B, max L_i, D) and ``mask`` bool (B, max L_i), True on real tokens.
    """
    L = max(r.shape[0] for r in rows)
    feats = rows[0].new_empty(len(rows), L, rows[0].shape[-1])
    mask = torch.zeros(len(rows), L, dtype=torch.bool, device=feats.device)
    for i, (r, p) in enumerate(zip(rows, pads, strict=True)):
        feats[i, : r.shape[0]] = r
        feats[i, r.shape[0] :] = p.to(feats.dtype)
        mask[i, : r.shape[0]] = True
    return feats, mask


@dataclass(frozen=True)
class VLMConfig:
    """Prompt construction and caching for :class:`VLMFeatureExtractor`.

    Attributes:
        content_order: "text_image" (official deployment) or "image_text" (official training).
        add_generation_prompt: append the assistant turn header (training: True; deploy: False).
        image_token: placeholder token the chat template emits per image.
        cache_size: observations kept in the feature cache (0 disables it).
    """

    content_order: Literal["text_image", "image_text"] = "text_image"
    add_generation_prompt: bool = False
    image_token: str = "<|image_pad|>"
    cache_size: int = 4

    def __post_init__(self) -> None:
        if self.content_order not in ("text_image", "image_text"):
            raise ValueError(
                "VLMConfig.content_order: expected 'text_image' or 'image_text', "
                f"got {self.content_order!r}"
            )
        if self.cache_size < 0:
            raise ValueError(f"VLMConfig.cache_size: expected >= 0, got {self.cache_size}")


def observation_key(image: np.ndarray, instruction: str) -> str:
    """Cache key of one (image, instruction) pair: blake2b of the pixels, shape and text."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    h.update(instruction.encode())
    return h.hexdigest()


class VLMFeatureExtractor:
    """(image, instruction) pairs -> Qwen3-VL last hidden states.

    Thread-safety: none; call from the inference thread only.

    Args:
        model: a ``Qwen3VLForConditionalGeneration`` (frozen here: eval, no grad).
        tokenizer: the Qwen3-VL tokenizer, with a chat template.
        image_processor: a Qwen2-VL-style image processor (``Qwen2VLImageProcessorPil``),
            giving ``pixel_values`` and ``image_grid_thw``.
        config: prompt order and cache size.
        processor: a ``Qwen3VLProcessor`` over the same tokenizer and image processor
            (:func:`make_processor`); when given, it builds the model inputs, else the hand path.
    """

    def __init__(
        self,
        model: Qwen3VLForConditionalGeneration,
        tokenizer: PreTrainedTokenizerBase,
        image_processor,
        config: VLMConfig | None = None,
        processor=None,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.processor = processor
        self.config = config or VLMConfig()
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(self.config.image_token))
        if self.image_token_id != int(model.config.image_token_id):
            raise ValueError(
                f"tokenizer id of {self.config.image_token!r} is {self.image_token_id}, but the "
                f"model expects image_token_id={model.config.image_token_id}"
            )
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        """Width of the features (2048 for Qwen3-VL-2B)."""
        return int(self.model.config.text_config.hidden_size)

    def clear_cache(self) -> None:
        """Forget cached features and reset the counters."""
        self._cache.clear()
        self.hits = self.misses = 0

    def _prompt(self, instruction: str) -> str:
        text = {"type": "text", "text": instruction}
        image = {"type": "image"}
        content = [text, image] if self.config.content_order == "text_image" else [image, text]
        templater = self.processor if self.processor is not None else self.tokenizer
        return templater.apply_chat_template(
            [{"role": "user", "content": content}],
            tokenize=False,
            add_generation_prompt=self.config.add_generation_prompt,
        )

    def build_inputs(self, images: list[np.ndarray], instructions: list[str]) -> dict:
        """Model inputs for a batch (right-padded): the processor's, or the same built by hand.

        Args:
            images: B uint8 (H, W, 3) RGB images (the T-layout composite).
            instructions: B strings.

        Returns:
            dict with ``input_ids``/``attention_mask``/``mm_token_type_ids`` long (B, L),
            ``pixel_values`` float (sum of patches, C*t*p*p) and ``image_grid_thw`` long (B, 3).

        Raises:
            ValueError: mismatched batch sizes or a non-uint8 image.
        """
        if len(images) != len(instructions):
            raise ValueError(f"got {len(images)} images but {len(instructions)} instructions")
        for img in images:
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
                raise ValueError(f"images: expected uint8 (H, W, 3), got {img.dtype} {img.shape}")
        if self.processor is not None:
            enc = self.processor(
                text=[self._prompt(t) for t in instructions],
                images=list(images),
                padding=True,
                padding_side="right",
                return_tensors="pt",
            )
            keys = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values")
            return {k: enc[k] for k in (*keys, "image_grid_thw")}
        vis = self.image_processor(images=list(images), return_tensors="pt")
        merge = int(self.image_processor.merge_size) ** 2
        texts = []
        for instr, thw in zip(instructions, vis["image_grid_thw"], strict=True):
            n = int(thw.prod()) // merge
            prompt = self._prompt(instr)
            if prompt.count(self.config.image_token) != 1:
                raise ValueError(
                    f"chat template produced {prompt.count(self.config.image_token)} "
                    f"{self.config.image_token!r} placeholders, expected 1"
                )
            texts.append(prompt.replace(self.config.image_token, self.config.image_token * n))
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        try:
            enc = self.tokenizer(
                texts, padding=True, add_special_tokens=False, return_tensors="pt"
            )
        finally:
            self.tokenizer.padding_side = side
        ids = enc["input_ids"]
        return {
            "input_ids": ids,
            "attention_mask": enc["attention_mask"],
            "mm_token_type_ids": (ids == self.image_token_id).long(),
            "pixel_values": vis["pixel_values"],
            "image_grid_thw": vis["image_grid_thw"],
        }

    @torch.no_grad()
    def _run(self, inputs: dict) -> torch.Tensor:
        device = next(self.model.parameters()).device
        dtype = next(self.model.parameters()).dtype
        kw = {k: v.to(device) for k, v in inputs.items()}
        kw["pixel_values"] = kw["pixel_values"].to(dtype)
        return self.model.model(**kw).last_hidden_state

    def pair_features(
        self, image: np.ndarray, instruction: str, use_cache: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states of one (image, instruction) pair and its pad state.

        The prompt is run with one extra pad token (id :data:`PAD_ID`, attention mask 0) at
        the end; the causal LM leaves the real rows unchanged, and the extra row is the state
        the official batch padding gives every pad position of this row (module docstring).

        Returns:
            ``rows`` (L, hidden) and ``pad`` (hidden,), in the model dtype (cached entries are
            returned as the same tensors: do not modify them in place).
        """
        key = observation_key(image, instruction)
        if use_cache and self.config.cache_size and key in self._cache:
            self._cache.move_to_end(key)
            self.hits += 1
            return self._cache[key]
        inp = self.build_inputs([image], [instruction])
        for k in ("input_ids", "attention_mask", "mm_token_type_ids"):
            inp[k] = torch.nn.functional.pad(
                inp[k], (0, 1), value=PAD_ID if k == "input_ids" else 0
            )
        hidden = self._run(inp)[0]
        out = (hidden[:-1].clone(), hidden[-1].clone())
        self.misses += 1
        if use_cache and self.config.cache_size:
            self._cache[key] = out
            while len(self._cache) > self.config.cache_size:
                self._cache.popitem(last=False)
        return out

    def features(
        self, images: list[np.ndarray], instructions: list[str], use_cache: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last-hidden-state features of each (image, instruction) pair, batched officially.

        Args:
            images: B uint8 (H, W, 3) RGB composites.
            instructions: B strings (the same text given to T5).
            use_cache: look up / store per-pair features in the LRU cache.

        Returns:
            ``features`` (B, L, hidden) in the model dtype, L the longest prompt; a shorter
            row's positions past its prompt hold its pad state (the LM hidden state at an id-0
            pad position, as the official batch; :func:`pad_features`), and ``mask`` bool
            (B, L), True on real tokens.
        """
        if len(images) != len(instructions):
            raise ValueError(f"got {len(images)} images but {len(instructions)} instructions")
        pairs = [
            self.pair_features(img, t, use_cache)
            for img, t in zip(images, instructions, strict=True)
        ]
        return pad_features([r for r, _ in pairs], [p for _, p in pairs])
