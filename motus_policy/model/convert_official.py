"""Official Motus / Wan2.2 key layouts and their conversion to ours (pure renames, no I/O).

Formats (docs/checkpoint-format.md; docs/motus.md §5):

* Full Motus model: the ``module`` dict of DeepSpeed's ``mp_rank_00_model_states.pt``.
  Canonical prefixes ``video_model.wan_model.`` (original Wan names), ``vlm_model.`` (HF
  Qwen3-VL names), ``action_expert.``, ``und_expert.``; alias prefixes that hold the same
  tensors are ignored (docs/checkpoint-format.md §1, §9).
* Stage-1 Wan DiT: original Wan key names; an optional ``dit.`` or ``model.diffusion_model.``
  prefix is stripped.
* Wan2.2 VAE ``Wan2.2_VAE.pth``: Wan's ``WanVAE_`` names (docs/checkpoint-format.md §6).
* Wan T5 ``models_t5_umt5-xxl-enc-bf16.pth``: Wan's T5 names (docs/checkpoint-format.md §7).

Our model uses diffusers names for the Wan DiT (``MotusModel.video_model.wan_model``); the
original->diffusers rename is diffusers' own ``convert_wan_transformer_to_diffusers``; its
inverse is derived from it by converting the generated list of original names, so the two
directions cannot drift. diffusers 0.42.1 ships only the Wan2.1 VAE converter, so the Wan2.2 VAE
rules (those of diffusers' ``scripts/convert_wan_to_diffusers.py::convert_vae_22``) are written
out here, both ways.

Loading with shape checks is :mod:`motus_policy.model.checkpoint`; this module only renames.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from torch import nn

from motus_policy.model.encoders.vae import MotusVAE

WAN_PREFIX = "video_model.wan_model."
VLM_PREFIX = "vlm_model."
ACTION_PREFIX = "action_expert."
UND_PREFIX = "und_expert."
CANONICAL_PREFIXES = (WAN_PREFIX, VLM_PREFIX, ACTION_PREFIX, UND_PREFIX)
ALIAS_TARGETS = {
    "video_module.video_model.wan_model.": WAN_PREFIX,
    "und_module.vlm_model.": VLM_PREFIX,
    "und_module.und_expert.": UND_PREFIX,
    "action_module.action_expert.": ACTION_PREFIX,
    "action_module.video_model.wan_model.": WAN_PREFIX,
    "action_module.vlm_model.": VLM_PREFIX,
}
"""Alias prefix -> the canonical prefix whose tensors it repeats (docs/checkpoint-format.md §1)."""
ALIAS_PREFIXES = tuple(ALIAS_TARGETS)
POS_EMBEDDING_KEY = "action_expert.input_encoder.pos_embedding"
UNMAPPED = "<unmapped>."
"""Prefix given to a Wan key with no diffusers name, so the loader reports it as unexpected."""


# --- Wan DiT: original <-> diffusers names (docs/checkpoint-format.md §2, §2.1) --------------
def wan_original_keys(num_layers: int) -> list[str]:
    """All parameter names of the original Wan TI2V DiT (docs/checkpoint-format.md §2)."""
    keys = ["patch_embedding.weight", "patch_embedding.bias"]
    for mod, idx in (
        ("text_embedding", (0, 2)),
        ("time_embedding", (0, 2)),
        ("time_projection", (1,)),
    ):
        keys += [f"{mod}.{i}.{p}" for i in idx for p in ("weight", "bias")]
    for n in range(num_layers):
        b = f"blocks.{n}."
        keys.append(b + "modulation")
        for attn in ("self_attn", "cross_attn"):
            keys += [f"{b}{attn}.{x}.{p}" for x in "qkvo" for p in ("weight", "bias")]
            keys += [f"{b}{attn}.norm_q.weight", f"{b}{attn}.norm_k.weight"]
        keys += [b + "norm3.weight", b + "norm3.bias"]
        keys += [f"{b}ffn.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")]
    keys += ["head.modulation", "head.head.weight", "head.head.bias"]
    return keys


def wan_original_to_diffusers_names(num_layers: int) -> dict[str, str]:
    """Original Wan name -> diffusers name, computed with diffusers' own converter.

    Raises:
        RuntimeError: the converter is not one-to-one on :func:`wan_original_keys`.
    """
    originals = wan_original_keys(num_layers)
    converted = convert_wan_transformer_to_diffusers({k: k for k in originals})
    mapping = {orig: new for new, orig in converted.items()}
    if len(mapping) != len(originals):
        raise RuntimeError("diffusers' Wan converter is not one-to-one on the Wan key list")
    return mapping


def _strip_wan_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in state.items():
        for p in ("model.diffusion_model.", "dit."):
            if k.startswith(p):
                k = k[len(p) :]
        out[k] = v
    return out


def convert_wan_original_to_diffusers(
    state: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Rename an original-layout Wan DiT state dict to diffusers names (diffusers' converter)."""
    return convert_wan_transformer_to_diffusers(_strip_wan_prefix(state))


def convert_wan_diffusers_to_original(
    state: Mapping[str, torch.Tensor], num_layers: int
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`convert_wan_original_to_diffusers` for a TI2V DiT with ``num_layers``.

    Raises:
        KeyError: a diffusers key with no original counterpart (e.g. an I2V image embedder).
    """
    inverse = {new: orig for orig, new in wan_original_to_diffusers_names(num_layers).items()}
    unknown = [k for k in state if k not in inverse]
    if unknown:
        raise KeyError(f"no original Wan name for diffusers keys {unknown[:10]}")
    return {inverse[k]: v for k, v in state.items()}


# --- Wan2.2 VAE: original <-> diffusers names (docs/checkpoint-format.md §6) -----------------
_RESNET_PARTS = {
    "residual.0.gamma": "norm1.gamma",
    "residual.2.weight": "conv1.weight",
    "residual.2.bias": "conv1.bias",
    "residual.3.gamma": "norm2.gamma",
    "residual.6.weight": "conv2.weight",
    "residual.6.bias": "conv2.bias",
    "shortcut.weight": "conv_shortcut.weight",
    "shortcut.bias": "conv_shortcut.bias",
}
_RESNET_PARTS_INV = {v: k for k, v in _RESNET_PARTS.items()}
_VAE_FIXED = {
    "conv1.weight": "quant_conv.weight",
    "conv1.bias": "quant_conv.bias",
    "conv2.weight": "post_quant_conv.weight",
    "conv2.bias": "post_quant_conv.bias",
}
for _side in ("encoder", "decoder"):
    _VAE_FIXED.update(
        {
            f"{_side}.conv1.weight": f"{_side}.conv_in.weight",
            f"{_side}.conv1.bias": f"{_side}.conv_in.bias",
            f"{_side}.head.0.gamma": f"{_side}.norm_out.gamma",
            f"{_side}.head.2.weight": f"{_side}.conv_out.weight",
            f"{_side}.head.2.bias": f"{_side}.conv_out.bias",
        }
    )
    for _p in ("norm.gamma", "to_qkv.weight", "to_qkv.bias", "proj.weight", "proj.bias"):
        _VAE_FIXED[f"{_side}.middle.1.{_p}"] = f"{_side}.mid_block.attentions.0.{_p}"
    for _orig_i, _new_i in ((0, 0), (2, 1)):
        for _o, _n in _RESNET_PARTS.items():
            if "shortcut" not in _o:
                _VAE_FIXED[f"{_side}.middle.{_orig_i}.{_o}"] = (
                    f"{_side}.mid_block.resnets.{_new_i}.{_n}"
                )
_VAE_FIXED_INV = {v: k for k, v in _VAE_FIXED.items()}
_VAE_ORIG_STAGE = re.compile(
    r"^(encoder|decoder)\.(down|up)samples\.(\d+)\.(?:down|up)samples\.(\d+)\.(.+)$"
)
_VAE_NEW_RESNET = re.compile(r"^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.resnets\.(\d+)\.(.+)$")
_VAE_NEW_SAMPLER = re.compile(
    r"^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(?:down|up)sampler\.(.+)$"
)


def _vae_resample_index(side: str, num_res_blocks: int) -> int:
    # Wan2.2 Down/Up_ResidualBlock: [ResidualBlock x mult, Resample]; the decoder has one more
    # residual block per level than the encoder.
    return num_res_blocks if side == "encoder" else num_res_blocks + 1


def wan22_vae_key_to_diffusers(key: str, num_res_blocks: int) -> str:
    """One original Wan2.2 VAE key -> diffusers ``AutoencoderKLWan`` key.

    Raises:
        KeyError: a key that fits no rule.
    """
    if key in _VAE_FIXED:
        return _VAE_FIXED[key]
    m = _VAE_ORIG_STAGE.match(key)
    if not m:
        raise KeyError(f"unknown Wan2.2 VAE key {key!r}")
    side, kind, stage, idx, rest = m.groups()
    if rest.startswith(("resample.", "time_conv.")):
        if int(idx) != _vae_resample_index(side, num_res_blocks):
            raise KeyError(f"{key!r}: resample at index {idx}, expected after the residual blocks")
        return f"{side}.{kind}_blocks.{stage}.{kind}sampler.{rest}"
    if rest not in _RESNET_PARTS:
        raise KeyError(f"unknown Wan2.2 VAE key {key!r}")
    return f"{side}.{kind}_blocks.{stage}.resnets.{idx}.{_RESNET_PARTS[rest]}"


def wan22_vae_key_to_original(key: str, num_res_blocks: int) -> str:
    """Inverse of :func:`wan22_vae_key_to_diffusers`.

    Raises:
        KeyError: a key that fits no rule.
    """
    if key in _VAE_FIXED_INV:
        return _VAE_FIXED_INV[key]
    m = _VAE_NEW_RESNET.match(key)
    if m:
        side, kind, stage, idx, rest = m.groups()
        return f"{side}.{kind}samples.{stage}.{kind}samples.{idx}.{_RESNET_PARTS_INV[rest]}"
    m = _VAE_NEW_SAMPLER.match(key)
    if m:
        side, kind, stage, rest = m.groups()
        idx = _vae_resample_index(side, num_res_blocks)
        return f"{side}.{kind}samples.{stage}.{kind}samples.{idx}.{rest}"
    raise KeyError(f"unknown diffusers AutoencoderKLWan key {key!r}")


def export_wan22_vae(vae: MotusVAE) -> dict[str, torch.Tensor]:
    """Our VAE weights in the original ``Wan2.2_VAE.pth`` layout."""
    n = vae.config.num_res_blocks
    return {wan22_vae_key_to_original(k, n): v for k, v in vae.vae.state_dict().items()}


# --- Wan T5 -> HF UMT5EncoderModel (docs/checkpoint-format.md §7) ----------------------------
_T5_BLOCK = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}


def convert_wan_t5_to_hf(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wan's umt5 encoder names -> HF ``UMT5EncoderModel`` names (docs/checkpoint-format.md §7).

    Unverified numerically against the released T5 file.

    Raises:
        KeyError: an unknown key.
    """
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k == "token_embedding.weight":
            out["shared.weight"] = v
            out["encoder.embed_tokens.weight"] = v
        elif k == "norm.weight":
            out["encoder.final_layer_norm.weight"] = v
        elif (m := re.match(r"^blocks\.(\d+)\.(.+)$", k)) and m.group(2) in _T5_BLOCK:
            out[f"encoder.block.{m.group(1)}.{_T5_BLOCK[m.group(2)]}"] = v
        else:
            raise KeyError(f"unknown Wan T5 key {k!r}")
    return out


# --- full Motus model: the official ``module`` dict <-> our submodules -----------------------
@dataclass
class OfficialParts:
    """An official ``module`` dict split by canonical prefix, in our submodules' naming.

    Attributes:
        parts: canonical prefix -> {name inside that submodule -> tensor}. The Wan DiT part
            holds diffusers names (a Wan key without one becomes ``UNMAPPED + key``); the
            others keep their official names (the same as ours).
        wan_names: original Wan name -> diffusers name (to report keys in official naming).
        aliases: keys under an alias prefix (duplicates of canonical tensors), in file order.
        unknown: keys under no known prefix, in file order.
    """

    parts: dict[str, dict[str, torch.Tensor]]
    wan_names: dict[str, str]
    aliases: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def split_official_state_dict(state: Mapping[str, torch.Tensor], num_layers: int) -> OfficialParts:
    """Split an official ``module`` dict by canonical prefix (docs/checkpoint-format.md §1).

    Args:
        state: the ``module`` dict (canonical + alias prefixes, any dtype).
        num_layers: Wan DiT depth of the target model (to name the Wan keys).

    Returns:
        :class:`OfficialParts`; tensors are the input's (not copied).
    """
    split = OfficialParts({p: {} for p in CANONICAL_PREFIXES}, {})
    for k, v in state.items():
        if k.startswith(ALIAS_PREFIXES):
            split.aliases.append(k)
            continue
        prefix = next((p for p in CANONICAL_PREFIXES if k.startswith(p)), None)
        if prefix is None:
            split.unknown.append(k)
        else:
            split.parts[prefix][k[len(prefix) :]] = v
    split.wan_names = wan_original_to_diffusers_names(num_layers)
    wan_orig = split.parts[WAN_PREFIX]
    split.parts[WAN_PREFIX] = {
        split.wan_names.get(k, UNMAPPED + k): v for k, v in wan_orig.items()
    }
    return split


def official_alias_keys(canonical_keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """The alias keys an official ``module`` dict holds next to ``canonical_keys``.

    The official top-level model registers its sub-modules twice (the experts directly and
    inside ``video_module`` / ``action_module`` / ``und_module``), so its state dict repeats
    every canonical tensor under the alias prefixes of :data:`ALIAS_TARGETS`
    (docs/checkpoint-format.md §1, §9).

    Args:
        canonical_keys: official keys under the canonical prefixes.

    Returns:
        alias key -> canonical key, in the order of :data:`ALIAS_TARGETS` then of
        ``canonical_keys``.
    """
    return {
        alias + key[len(canonical) :]: key
        for alias, canonical in ALIAS_TARGETS.items()
        for key in canonical_keys
        if key.startswith(canonical)
    }


def export_official_state_dict(
    model: nn.Module, vlm_model: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """Our weights in the official ``module`` layout (canonical prefixes only, no aliases).

    Args:
        model: a ``MotusModel``.
        vlm_model: the ``Qwen3VLForConditionalGeneration`` to include as ``vlm_model.*``.

    Returns:
        Official name -> tensor. Wan DiT names are converted back to the original Wan names;
        action/und experts keep their (official) names. Tensors are detached references (clone
        before modifying); dtypes are kept.
    """
    out: dict[str, torch.Tensor] = {}
    wan = model.get_submodule("video_model.wan_model").state_dict()
    for k, v in convert_wan_diffusers_to_original(wan, model.config.num_layers).items():
        out[WAN_PREFIX + k] = v
    for prefix, module in ((ACTION_PREFIX, model.action_expert), (UND_PREFIX, model.und_expert)):
        out.update({prefix + k: v for k, v in module.state_dict().items()})
    if vlm_model is not None:
        out.update({VLM_PREFIX + k: v for k, v in vlm_model.state_dict().items()})
    return out
