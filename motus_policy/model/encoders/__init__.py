"""Frozen encoders around the Motus experts: Wan2.2 VAE, UMT5 text encoder, Qwen3-VL features."""

from motus_policy.model.encoders.text import T5TextEncoder, TextEncoderConfig
from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor

__all__ = [
    "MotusVAE",
    "T5TextEncoder",
    "TextEncoderConfig",
    "VAEConfig",
    "VLMConfig",
    "VLMFeatureExtractor",
]
