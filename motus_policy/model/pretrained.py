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
from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor, make_processor
from motus_policy.model.modeling_motus import MotusModel, resolve_dtype

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


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path}: missing; a checkpoint folder written by MotusPolicy.save_pretrained holds "
            "config.json, stats.json, model.safetensors and the tokenizer folders"
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}; "
            f"{len(text)} bytes): the file is truncated or corrupt"
        ) from None


def read_config(directory: str | Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder, checked.

    Raises:
        FileNotFoundError: no ``config.json`` (naming the file).
        ValueError: not valid JSON (truncated / corrupt, naming the file), or a format other
            than :data:`FORMAT_VERSION`.
    """
    path = Path(directory) / "config.json"
    config = _read_json(path)
    if not isinstance(config, dict) or config.get("format") != FORMAT_VERSION:
        got = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path}: format {got!r}, expected {FORMAT_VERSION!r}")
    return config


def _folder(d: Path, name: str, what: str) -> str:
    path = d / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"{path}: missing {what} folder (HF save_pretrained layout); the checkpoint folder "
            "is incomplete: copy it again or re-save it with MotusPolicy.save_pretrained"
        )
    return str(path)


def load_pretrained(
    directory: str | Path,
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype | None = None,
) -> PretrainedParts:
    """Read a folder written by :func:`save_pretrained`.

    Args:
        directory: the folder.
        device: where to put every model.
        dtype: run dtype of the network and encoders (``auto``, ``float32``, ``bfloat16`` or a
            torch dtype; default: as stored); the network keeps fp32 time tables and float64
            RoPE (``MotusModel.to_runtime``); the VAE stays fp32.

    Returns:
        :class:`PretrainedParts`.

    Raises:
        CheckpointMismatchError / KeyError: weights do not fit the stored configs.
        FileNotFoundError: a missing file or tokenizer / image-processor folder (named).
        ValueError: unknown format; a truncated or corrupt ``config.json``, ``stats.json`` or
            ``model.safetensors`` (named).
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
    config = read_config(d)
    weights = d / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: missing (the network and encoder weights)")
    try:
        tensors = load_file(str(weights))
    except Exception as e:  # safetensors raises its own SafetensorError (no public class)
        raise ValueError(
            f"{weights}: cannot be read ({e}; {weights.stat().st_size} bytes): the file is "
            "truncated or corrupt"
        ) from None
    tokenizer_t5 = _folder(d, "tokenizer_t5", "T5 tokenizer")
    tokenizer_vlm = _folder(d, "tokenizer_vlm", "Qwen3-VL tokenizer")
    image_processor = _folder(d, "image_processor", "Qwen3-VL image processor")
    stats = _read_json(d / "stats.json")

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
        # the network via to_runtime: a plain .to(bf16) would round RoPE and the time tables
        model.to_runtime(device, resolve_dtype(dtype, device))
        for m in (t5, vlm):
            m.to(resolve_dtype(dtype, device))
    for m in (model, vae, t5, vlm):
        m.to(device)
    vlm_tokenizer = AutoTokenizer.from_pretrained(tokenizer_vlm)
    vlm_images = Qwen2VLImageProcessorPil.from_pretrained(image_processor)
    return PretrainedParts(
        model=model,
        vae=vae,
        text_encoder=T5TextEncoder(
            t5,
            AutoTokenizer.from_pretrained(tokenizer_t5),
            TextEncoderConfig(**config["t5"]["settings"]),
        ),
        vlm=VLMFeatureExtractor(
            vlm,
            vlm_tokenizer,
            vlm_images,
            VLMConfig(**config["vlm"]["settings"]),
            processor=make_processor(vlm_tokenizer, vlm_images),  # None without torchvision
        ),
        policy_config=config["policy"],
        stats=stats,
    )
