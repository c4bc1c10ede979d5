"""Tiny random encoders and tokenizers built in code (no model hub; docs/platform.md §6).

Used by the CPU tests, the tiny benchmark and the shipped demo checkpoint. The tokenizers are
byte-level (every UTF-8 byte is one token), so any instruction encodes without an unknown token
and different instructions give different ids:

* T5: ``<pad>`` = 0, ``</s>`` = 1 appended to every sequence (as umt5), ``<unk>`` = 2.
* Qwen3-VL: the Qwen special tokens (``<|im_start|>``, ``<|vision_start|>``, ``<|image_pad|>``
  ...) as added special tokens, plus a small chat template with the same structure as
  Qwen3-VL's (a user turn holding text and ``<|vision_start|><|image_pad|><|vision_end|>``).

Model sizes follow the configurations verified in docs/platform.md §6 (a)-(c).
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    PreTrainedTokenizerFast,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    UMT5Config,
    UMT5EncoderModel,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from motus_policy.model.encoders.text import T5TextEncoder, TextEncoderConfig
from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor

QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Same structure as Qwen3-VL's template for one user turn (role header, content items, end).
TINY_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% else %}{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _byte_level_tokenizer(specials: list[str]) -> Tokenizer:
    vocab = {tok: i for i, tok in enumerate(specials)}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[ch] = len(vocab)
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=specials[-1]))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tk.decoder = decoders.ByteLevel()
    return tk


def tiny_t5_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer with umt5's special-token layout (pad 0, eos 1, unk 2); 259 ids."""
    tk = _byte_level_tokenizer(["<pad>", "</s>", "<unk>"])
    tk.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def tiny_qwen_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level tokenizer with the Qwen3-VL special tokens and a Qwen-style chat template."""
    tk = _byte_level_tokenizer(["<unk>"])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS[1:])})
    tok.add_special_tokens({"pad_token": "<|endoftext|>"})
    tok.chat_template = TINY_QWEN_CHAT_TEMPLATE
    return tok


def tiny_image_processor() -> Qwen2VLImageProcessorPil:
    """Qwen3-VL image preprocessing (patch 16, temporal patch 2, merge 2, mean/std 0.5).

    Pixel budget 32x32 .. 128x128 so that tiny tests stay cheap (the real processor allows up
    to 16M pixels).
    """
    return Qwen2VLImageProcessorPil(
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        size={"shortest_edge": 32 * 32, "longest_edge": 128 * 128},
    )


def tiny_umt5(vocab_size: int, d_model: int = 64) -> UMT5EncoderModel:
    """Random ``UMT5EncoderModel``: 2 layers, 4 heads of 16, FFN 128 (docs/platform.md §6)."""
    cfg = UMT5Config(
        vocab_size=vocab_size, d_model=d_model, d_kv=16, d_ff=128, num_layers=2, num_heads=4
    )
    return UMT5EncoderModel(cfg)


def tiny_qwen3vl(
    tokenizer: PreTrainedTokenizerFast, hidden: int = 64
) -> Qwen3VLForConditionalGeneration:
    """Random ``Qwen3VLForConditionalGeneration`` (text 2 layers x 64, vision 2 blocks x 32)."""
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    cfg = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden,
            "intermediate_size": 2 * hidden,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 5e5,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "patch_size": 16,
            "temporal_patch_size": 2,
            "spatial_merge_size": 2,
            "out_hidden_size": hidden,
            "deepstack_visual_indexes": [0, 1],
            "num_position_embeddings": 64,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    cfg._attn_implementation = "sdpa"
    return Qwen3VLForConditionalGeneration(cfg)


def build_tiny_encoders(
    seed: int = 0,
    text_dim: int = 64,
    vlm_dim: int = 64,
    context_len: int = 32,
    vae_config: VAEConfig | None = None,
) -> tuple[MotusVAE, T5TextEncoder, VLMFeatureExtractor]:
    """Build the three tiny encoders with deterministic random weights.

    Args:
        seed: torch seed used for all three models.
        text_dim: UMT5 ``d_model`` (must equal the video expert's ``text_dim``).
        vlm_dim: Qwen3-VL text hidden size (must equal the und expert's VLM input width).
        context_len: T5 context rows (the tiny analogue of Wan's 512).
        vae_config: defaults to :meth:`VAEConfig.tiny`.

    Returns:
        ``(vae, text_encoder, vlm)``, all fp32 on CPU, frozen.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = MotusVAE(vae_config or VAEConfig.tiny()).eval().requires_grad_(False)
        t5_tok = tiny_t5_tokenizer()
        text = T5TextEncoder(
            tiny_umt5(len(t5_tok), text_dim),
            t5_tok,
            TextEncoderConfig(max_length=context_len, context_len=context_len),
        )
        q_tok = tiny_qwen_tokenizer()
        vlm = VLMFeatureExtractor(
            tiny_qwen3vl(q_tok, vlm_dim), q_tok, tiny_image_processor(), VLMConfig()
        )
    return vae, text, vlm
