"""Our own checkpoint folders: the network, the frozen encoders and the policy settings.

Layout of a folder (format :data:`FORMAT_VERSION`):

* ``model.safetensors``: ``model.*`` (the ``MotusModel``), ``vae.*``, ``t5.*``, ``vlm.*``
  (encoders); metadata ``{"format": FORMAT_VERSION}``.
* ``config.json``: ``format``, ``motus`` (``MotusConfig.to_dict``), ``vae``, ``t5`` and ``vlm``
  (model config + encoder settings each), ``policy`` (the ``PolicyConfig`` fields).
* ``stats.json``: normalisation statistics, stat.json style (``{key: {"min", "max"}}``).
* ``tokenizer_t5/``, ``tokenizer_vlm/``, ``image_processor/``: HF ``save_pretrained`` folders.

This module reads and writes the parts; ``MotusPolicy.save_pretrained`` /
``MotusPolicy.from_pretrained`` (:mod:`motus_policy.model.policy`) assemble the policy, so the
import runs one way (policy -> pretrained).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from motus_policy.model.checkpoint import load_into
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.encoders.text import T5TextEncoder, TextEncoderConfig
from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor
from motus_policy.model.modeling_motus import MotusModel

FORMAT_VERSION = "motus_policy.pretrained/1"


@dataclass
class PretrainedParts:
    """What a folder holds.

    Attributes:
        model: the network.
        vae: Wan2.2 VAE wrapper (fp32).
        text_encoder: UMT5 encoder with its tokenizer and settings.
        vlm: Qwen3-VL feature extractor with its tokenizer, image processor and settings.
        policy_config: the ``PolicyConfig`` fields (JSON values), written as ``config.json``
            ``policy``; unknown to this module beyond being a dict.
        stats: ``stats.json`` contents, stat.json style (``{key: {"min": [D], "max": [D]}}``).
    """

    model: MotusModel
    vae: MotusVAE
    text_encoder: T5TextEncoder
    vlm: VLMFeatureExtractor
    policy_config: dict[str, Any]
    stats: dict[str, Any]


def _dedupe(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors sharing storage (tied embeddings): clone repeats only.
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset())
        out[k] = v.detach().clone().contiguous() if key in seen else v.detach().contiguous()
        seen.add(key)
    return out


def save_pretrained(parts: PretrainedParts, directory: str | Path) -> Path:
    """Write ``parts`` as a self-contained folder (layout in the module docstring).

    Written into ``<dir>.tmp`` and renamed, so a crash never leaves a partial folder under the
    real name. Tensors are copied to CPU; dtypes are kept.

    Returns:
        The folder path.

    Raises:
        FileExistsError: the folder already exists.
    """
    from safetensors.torch import save_file

    out = Path(directory)
    if out.exists():
        raise FileExistsError(f"{out}: already exists; choose a new folder")
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (
        ("model.", parts.model),
        ("vae.", parts.vae),
        ("t5.", parts.text_encoder.model),
        ("vlm.", parts.vlm.model),
    ):
        tensors.update({prefix + k: v.cpu() for k, v in module.state_dict().items()})
    save_file(
        _dedupe(tensors), str(tmp / "model.safetensors"), metadata={"format": FORMAT_VERSION}
    )
    config = {
        "format": FORMAT_VERSION,
        "motus": parts.model.config.to_dict(),
        "vae": parts.vae.config.to_dict(),
        "t5": {
            "model": parts.text_encoder.model.config.to_dict(),
            "settings": dataclasses.asdict(parts.text_encoder.config),
        },
        "vlm": {
            "model": parts.vlm.model.config.to_dict(),
            "settings": dataclasses.asdict(parts.vlm.config),
        },
        "policy": parts.policy_config,
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    (tmp / "stats.json").write_text(json.dumps(parts.stats, indent=2))
    parts.text_encoder.tokenizer.save_pretrained(str(tmp / "tokenizer_t5"))
    parts.vlm.tokenizer.save_pretrained(str(tmp / "tokenizer_vlm"))
    parts.vlm.image_processor.save_pretrained(str(tmp / "image_processor"))
    tmp.rename(out)
    return out


def load_pretrained(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> PretrainedParts:
    """Read a folder written by :func:`save_pretrained`.

    Args:
        directory: the folder.
        device: where to put every model.
        dtype: dtype of the network and encoders (default: as stored); the VAE stays fp32.

    Returns:
        :class:`PretrainedParts`.

    Raises:
        CheckpointMismatchError / KeyError: weights do not fit the stored configs.
        ValueError: unknown format.
    """
    from safetensors.torch import load_file
    from transformers import (
        AutoTokenizer,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        UMT5Config,
        UMT5EncoderModel,
    )
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    d = Path(directory)
    config = json.loads((d / "config.json").read_text())
    if config.get("format") != FORMAT_VERSION:
        raise ValueError(f"{d}: format {config.get('format')!r}, expected {FORMAT_VERSION!r}")
    tensors = load_file(str(d / "model.safetensors"))

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    model = MotusModel(MotusConfig.from_dict(config["motus"]))
    load_into(model, part("model."), where=f"{d}/model.safetensors", prefix_for_messages="model.")
    vae = MotusVAE(VAEConfig(**config["vae"]))
    load_into(vae, part("vae."), where=f"{d}/model.safetensors", prefix_for_messages="vae.")
    t5 = UMT5EncoderModel(UMT5Config.from_dict(config["t5"]["model"]))
    load_into(t5, part("t5."), where=f"{d}/model.safetensors", prefix_for_messages="t5.")
    vlm_cfg = Qwen3VLConfig.from_dict(config["vlm"]["model"])
    vlm_cfg._attn_implementation = "sdpa"
    vlm = Qwen3VLForConditionalGeneration(vlm_cfg)
    load_into(vlm, part("vlm."), where=f"{d}/model.safetensors", prefix_for_messages="vlm.")
    if dtype is not None:
        for m in (model, t5, vlm):
            m.to(dtype)
    for m in (model, vae, t5, vlm):
        m.to(device)
    return PretrainedParts(
        model=model,
        vae=vae,
        text_encoder=T5TextEncoder(
            t5,
            AutoTokenizer.from_pretrained(str(d / "tokenizer_t5")),
            TextEncoderConfig(**config["t5"]["settings"]),
        ),
        vlm=VLMFeatureExtractor(
            vlm,
            AutoTokenizer.from_pretrained(str(d / "tokenizer_vlm")),
            Qwen2VLImageProcessorPil.from_pretrained(str(d / "image_processor")),
            VLMConfig(**config["vlm"]["settings"]),
        ),
        policy_config=config["policy"],
        stats=json.loads((d / "stats.json").read_text()),
    )
