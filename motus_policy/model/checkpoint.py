"""Official Motus / Wan2.2 checkpoints: key conversion, shape checks, load and export.

Formats (motus-checkpoint-keys.md; reference §5):

* Full Motus model: DeepSpeed ``mp_rank_00_model_states.pt`` (a ``torch.save`` dict, weights
  under ``module``). Canonical prefixes ``video_model.wan_model.`` (original Wan names),
  ``vlm_model.`` (HF Qwen3-VL names), ``action_expert.``, ``und_expert.``; alias prefixes that
  hold the same tensors are ignored (keys §1, §9).
* Stage-1 Wan DiT (``Motus_Wan2_2_5B_pretrain`` / Wan2.2-TI2V-5B): original Wan key names in
  safetensors (single file or sharded folder) or a torch file; an optional ``dit.`` or
  ``model.diffusion_model.`` prefix is stripped.
* Wan2.2 VAE ``Wan2.2_VAE.pth``: plain state dict of Wan's ``WanVAE_`` (keys §6).
* Wan T5 ``models_t5_umt5-xxl-enc-bf16.pth``: Wan's T5 names (keys §7).

Our model uses diffusers names for the Wan DiT (``MotusModel.video_model.wan_model``); the
original->diffusers rename is diffusers' own ``convert_wan_transformer_to_diffusers``; its
inverse is derived from it by converting the generated list of original names, so the two
directions cannot drift. diffusers 0.42.1 ships only the Wan2.1 VAE converter, so the Wan2.2 VAE
rules (those of diffusers' ``scripts/convert_wan_to_diffusers.py::convert_vae_22``) are written
out here, both ways.

Every load checks all shapes first and raises :class:`CheckpointMismatchError` naming each
key with the expected and found shapes; missing and unexpected keys are reported in a
:class:`LoadReport` (and raise when ``strict``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers
from torch import nn

from motus_policy.model.encoders.vae import MotusVAE, VAEConfig

WAN_PREFIX = "video_model.wan_model."
VLM_PREFIX = "vlm_model."
ACTION_PREFIX = "action_expert."
UND_PREFIX = "und_expert."
CANONICAL_PREFIXES = (WAN_PREFIX, VLM_PREFIX, ACTION_PREFIX, UND_PREFIX)
ALIAS_PREFIXES = (
    "video_module.video_model.wan_model.",
    "und_module.vlm_model.",
    "und_module.und_expert.",
    "action_module.action_expert.",
    "action_module.video_model.wan_model.",
    "action_module.vlm_model.",
)
POS_EMBEDDING_KEY = "action_expert.input_encoder.pos_embedding"


class CheckpointMismatchError(ValueError):
    """Checkpoint tensors do not fit the model; ``mismatches`` lists (key, expected, found)."""

    def __init__(self, where: str, mismatches: list[tuple[str, tuple, tuple]], hint: str = ""):
        self.mismatches = mismatches
        lines = [f"{where}: {len(mismatches)} shape mismatch(es) (key: expected vs found)"]
        lines += [f"  {k}: expected {list(e)}, found {list(f)}" for k, e, f in mismatches[:20]]
        if len(mismatches) > 20:
            lines.append(f"  ... and {len(mismatches) - 20} more")
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


@dataclass
class LoadReport:
    """What a load did. Keys are in the target module's naming.

    Attributes:
        loaded: number of tensors copied.
        missing: model keys the checkpoint did not provide (left as they were).
        unexpected: checkpoint keys the model has no place for (not loaded).
        ignored: checkpoint keys skipped on purpose (alias prefixes, DeepSpeed bookkeeping).
    """

    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def merge(self, other: LoadReport, prefix: str = "") -> None:
        """Add ``other`` to this report, prefixing its key names."""
        self.loaded += other.loaded
        self.missing += [prefix + k for k in other.missing]
        self.unexpected += [prefix + k for k in other.unexpected]
        self.ignored += [prefix + k for k in other.ignored]


def _action_chunk_hint(expected: tuple, found: tuple) -> str:
    # keys §3 / §9.3: finetune rows = A + 6 (A + 5 used), pretrain rows = A.
    def describe(rows: int) -> str:
        return f"{rows} rows = A {rows - 6} in finetune mode (A + 6) or A {rows} in pretrain mode"

    return (
        f"{POS_EMBEDDING_KEY} encodes the action chunk size A: the model has "
        f"{describe(expected[1])}, the checkpoint has {describe(found[1])}. Build the config "
        "with the checkpoint's chunk size / training mode (reference §3.1, §5.1)."
    )


def load_into(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    where: str,
    strict: bool = True,
    prefix_for_messages: str = "",
) -> LoadReport:
    """Shape-check then copy ``state`` into ``module`` (names must already match).

    Args:
        module: target; its ``state_dict()`` (persistent buffers included) defines the keys.
        state: name -> tensor in the module's naming. Dtypes are cast to the module's.
        where: label used in error messages (e.g. the file name).
        strict: raise ``KeyError`` listing missing/unexpected keys instead of only reporting.
        prefix_for_messages: prepended to key names in errors (e.g. ``"action_expert."``).

    Returns:
        :class:`LoadReport`.

    Raises:
        CheckpointMismatchError: any shape differs (nothing is loaded then).
        KeyError: ``strict`` and keys are missing or unexpected (nothing is loaded then).
    """
    target = module.state_dict()
    mismatches = [
        (prefix_for_messages + k, tuple(target[k].shape), tuple(v.shape))
        for k, v in state.items()
        if k in target and tuple(target[k].shape) != tuple(v.shape)
    ]
    if mismatches:
        hint = ""
        for k, e, f in mismatches:
            if k.endswith("input_encoder.pos_embedding"):
                hint = _action_chunk_hint(e, f)
        raise CheckpointMismatchError(where, mismatches, hint)
    report = LoadReport(
        missing=sorted(k for k in target if k not in state),
        unexpected=sorted(k for k in state if k not in target),
    )
    if strict and (report.missing or report.unexpected):
        raise KeyError(
            f"{where}: missing {[prefix_for_messages + k for k in report.missing][:20]} "
            f"({len(report.missing)}), unexpected "
            f"{[prefix_for_messages + k for k in report.unexpected][:20]} "
            f"({len(report.unexpected)})"
        )
    with torch.no_grad():
        for k, v in state.items():
            if k in target:
                target[k].copy_(v.to(dtype=target[k].dtype, device=target[k].device))
                report.loaded += 1
    return report


# --- Wan DiT: original <-> diffusers names (keys §2, §2.1) ------------------------------------
def wan_original_keys(num_layers: int) -> list[str]:
    """All parameter names of the original Wan TI2V DiT (keys §2), in module order."""
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
    """Original Wan name -> diffusers name, computed with diffusers' own converter."""
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


# --- Wan2.2 VAE: original <-> diffusers names (keys §6) ---------------------------------------
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
    """Inverse of :func:`wan22_vae_key_to_diffusers`."""
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


def load_wan22_vae(
    path: str | Path | Mapping[str, torch.Tensor], config: VAEConfig | None = None
) -> MotusVAE:
    """Build a :class:`MotusVAE` from ``Wan2.2_VAE.pth`` (original layout, keys §6).

    Args:
        path: the ``.pth`` file, or an already-loaded original-layout state dict.
        config: architecture; defaults to the full-size Wan2.2 VAE.

    Raises:
        CheckpointMismatchError / KeyError: as :func:`load_into` (strict).
    """
    config = config or VAEConfig()
    sd = (
        path
        if isinstance(path, Mapping)
        else torch.load(path, map_location="cpu", weights_only=True)
    )
    converted = {wan22_vae_key_to_diffusers(k, config.num_res_blocks): v for k, v in sd.items()}
    vae = MotusVAE(config)
    load_into(vae.vae, converted, where=str(path) if not isinstance(path, Mapping) else "VAE")
    return vae


def export_wan22_vae(vae: MotusVAE) -> dict[str, torch.Tensor]:
    """Our VAE weights in the original ``Wan2.2_VAE.pth`` layout."""
    n = vae.config.num_res_blocks
    return {wan22_vae_key_to_original(k, n): v for k, v in vae.vae.state_dict().items()}


# --- Wan T5 -> HF UMT5EncoderModel (keys §7) ---------------------------------------------------
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
    """Wan's umt5 encoder names -> HF ``UMT5EncoderModel`` names (keys §7; unverified numerically).

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


# --- stage-1 Wan DiT file ----------------------------------------------------------------------
def read_state_dict(path: str | Path, weights_only: bool = True) -> dict[str, torch.Tensor]:
    """Read a safetensors file, a sharded safetensors folder (``*.index.json``) or a torch file."""
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        index = sorted(p.glob("*.safetensors.index.json"))
        files = (
            sorted({p / f for f in json.loads(index[0].read_text())["weight_map"].values()})
            if index
            else sorted(p.glob("*.safetensors"))
        )
        if not files:
            raise FileNotFoundError(f"{p}: no *.safetensors files")
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(f)))
        return out
    if p.suffix == ".safetensors":
        return load_file(str(p))
    return torch.load(p, map_location="cpu", weights_only=weights_only, mmap=True)


def load_wan_stage1(model: nn.Module, path: str | Path, strict: bool = True) -> LoadReport:
    """Load an original-layout Wan DiT (stage 1) into ``model.video_model.wan_model``."""
    wan = model.get_submodule(WAN_PREFIX.rstrip("."))
    converted = convert_wan_original_to_diffusers(read_state_dict(path))
    return load_into(
        wan, converted, where=str(path), strict=strict, prefix_for_messages=WAN_PREFIX
    )


# --- full Motus checkpoint ---------------------------------------------------------------------
def read_official_checkpoint(
    path: str | Path, weights_only: bool = True
) -> dict[str, torch.Tensor]:
    """Return the ``module`` dict of a DeepSpeed ``mp_rank_00_model_states.pt``.

    Args:
        path: the file, or a folder containing it directly or under ``pytorch_model/``.
        weights_only: passed to ``torch.load``; DeepSpeed files that pickle extra objects need
            False (only for files you trust).

    Raises:
        FileNotFoundError: no such file. KeyError: no ``module`` entry.
    """
    p = Path(path)
    if p.is_dir():
        cands = [
            p / "mp_rank_00_model_states.pt",
            p / "pytorch_model" / "mp_rank_00_model_states.pt",
        ]
        found = [c for c in cands if c.is_file()]
        if not found:
            raise FileNotFoundError(f"{p}: no mp_rank_00_model_states.pt (looked in {cands})")
        p = found[0]
    ckpt = torch.load(p, map_location="cpu", weights_only=weights_only, mmap=True)
    if "module" not in ckpt:
        raise KeyError(f"{p}: expected the weights under 'module', found keys {sorted(ckpt)[:10]}")
    return ckpt["module"]


def load_official_state_dict(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    vlm_model: nn.Module | None = None,
    strict: bool = True,
    where: str = "official checkpoint",
) -> LoadReport:
    """Load an official-layout Motus state dict into ``MotusModel`` (and optionally the VLM).

    Args:
        model: a ``MotusModel`` (submodules ``video_model.wan_model``, ``action_expert``,
            ``und_expert``) whose config matches the checkpoint (A, mode, widths).
        state: the ``module`` dict (canonical + alias prefixes, any dtype).
        vlm_model: a ``Qwen3VLForConditionalGeneration`` receiving ``vlm_model.*``; when None
            those keys are reported as ignored (load the VLM from its HF folder instead).
        strict: raise ``KeyError`` on missing/unexpected keys.
        where: label for messages.

    Returns:
        :class:`LoadReport` with keys in the official naming.

    Raises:
        CheckpointMismatchError: shape mismatches, checked for every part before any copy.
        KeyError: ``strict`` and missing/unexpected keys.
    """
    parts: dict[str, dict[str, torch.Tensor]] = {p: {} for p in CANONICAL_PREFIXES}
    report = LoadReport()
    for k, v in state.items():
        if k.startswith(ALIAS_PREFIXES):
            report.ignored.append(k)
            continue
        prefix = next((p for p in CANONICAL_PREFIXES if k.startswith(p)), None)
        if prefix is None:
            report.unexpected.append(k)
        else:
            parts[prefix][k[len(prefix) :]] = v
    if vlm_model is None:
        report.ignored += [VLM_PREFIX + k for k in parts.pop(VLM_PREFIX)]
    wan_orig = parts[WAN_PREFIX]
    wan_names = wan_original_to_diffusers_names(model.config.num_layers)
    parts[WAN_PREFIX] = {wan_names.get(k, "<unmapped>." + k): v for k, v in wan_orig.items()}
    targets = {
        WAN_PREFIX: model.get_submodule("video_model.wan_model"),
        ACTION_PREFIX: model.action_expert,
        UND_PREFIX: model.und_expert,
    }
    if vlm_model is not None:
        targets[VLM_PREFIX] = vlm_model
    # Shape check of every part first, so a mismatch never leaves a half-loaded model.
    mismatches = []
    for prefix, module in targets.items():
        tgt = module.state_dict()
        inv = {v: k for k, v in wan_names.items()} if prefix == WAN_PREFIX else {}
        for k, v in parts[prefix].items():
            if k in tgt and tuple(tgt[k].shape) != tuple(v.shape):
                mismatches.append((prefix + inv.get(k, k), tuple(tgt[k].shape), tuple(v.shape)))
    if mismatches:
        hint = next(
            (_action_chunk_hint(e, f) for k, e, f in mismatches if k == POS_EMBEDDING_KEY), ""
        )
        raise CheckpointMismatchError(where, mismatches, hint)
    for prefix, module in targets.items():
        part = load_into(module, parts[prefix], where=where, strict=False)
        if prefix == WAN_PREFIX:
            inv = {v: k for k, v in wan_names.items()}
            part.missing = [inv.get(k, k) for k in part.missing]
            part.unexpected = [k.replace("<unmapped>.", "") for k in part.unexpected]
        report.merge(part, prefix)
    if strict and (report.missing or report.unexpected):
        raise KeyError(
            f"{where}: missing {report.missing[:20]} ({len(report.missing)}), "
            f"unexpected {report.unexpected[:20]} ({len(report.unexpected)})"
        )
    return report


def load_official_checkpoint(
    model: nn.Module,
    path: str | Path,
    vlm_model: nn.Module | None = None,
    strict: bool = True,
    weights_only: bool = True,
) -> LoadReport:
    """Read ``mp_rank_00_model_states.pt`` and load it (see :func:`load_official_state_dict`)."""
    state = read_official_checkpoint(path, weights_only=weights_only)
    return load_official_state_dict(
        model, state, vlm_model=vlm_model, strict=strict, where=str(path)
    )


def export_official_state_dict(
    model: nn.Module, vlm_model: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """Our weights in the official ``module`` layout (canonical prefixes only, no aliases).

    Wan DiT names are converted back to the original Wan names; action/und experts keep their
    (official) names; ``vlm_model.*`` is included when ``vlm_model`` is given. Tensors are
    detached references (clone before modifying); dtypes are kept.
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


def save_official_checkpoint(
    model: nn.Module, path: str | Path, vlm_model: nn.Module | None = None
) -> Path:
    """Write ``{"module": export_official_state_dict(...)}`` with ``torch.save``.

    ``path`` may be a folder (``mp_rank_00_model_states.pt`` is created in it). Written to a
    temporary name first and renamed, so a crash never leaves a partial file under the real name.
    """
    p = Path(path)
    if p.suffix != ".pt":
        p.mkdir(parents=True, exist_ok=True)
        p = p / "mp_rank_00_model_states.pt"
    tmp = p.with_suffix(".pt.tmp")
    torch.save({"module": export_official_state_dict(model, vlm_model)}, tmp)
    tmp.replace(p)
    return p


# --- our own folder format -----------------------------------------------------------------------
FORMAT_VERSION = "motus_policy.pretrained/1"


def _dedupe(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors sharing storage (tied embeddings): clone repeats only.
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in state.items():
        key = (v.untyped_storage().data_ptr(), v.storage_offset())
        out[k] = v.detach().clone().contiguous() if key in seen else v.detach().contiguous()
        seen.add(key)
    return out


def save_pretrained(policy, directory: str | Path) -> Path:
    """Write a :class:`~motus_policy.model.policy.MotusPolicy` as a self-contained folder.

    Layout: ``model.safetensors`` (``model.*`` network, ``vae.*``, ``t5.*``, ``vlm.*``
    encoders), ``config.json`` (``MotusConfig.to_dict`` + encoder/tokenizer/policy configs),
    ``stats.json`` (stat.json style, under ``policy.config.stats_key``), ``tokenizer_t5/``,
    ``tokenizer_vlm/``, ``image_processor/``. Written into ``<dir>.tmp`` and renamed, so a
    crash never leaves a partial folder under the real name.

    Returns:
        The folder path.

    Raises:
        FileExistsError: the folder already exists.
    """
    import dataclasses

    from safetensors.torch import save_file

    out = Path(directory)
    if out.exists():
        raise FileExistsError(f"{out}: already exists; choose a new folder")
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True)
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in (
        ("model.", policy.model),
        ("vae.", policy.vae),
        ("t5.", policy.text_encoder.model),
        ("vlm.", policy.vlm.model),
    ):
        tensors.update({prefix + k: v.cpu() for k, v in module.state_dict().items()})
    save_file(
        _dedupe(tensors), str(tmp / "model.safetensors"), metadata={"format": FORMAT_VERSION}
    )
    config = {
        "format": FORMAT_VERSION,
        "motus": policy.model.config.to_dict(),
        "vae": policy.vae.config.to_dict(),
        "t5": {
            "model": policy.text_encoder.model.config.to_dict(),
            "settings": dataclasses.asdict(policy.text_encoder.config),
        },
        "vlm": {
            "model": policy.vlm.model.config.to_dict(),
            "settings": dataclasses.asdict(policy.vlm.config),
        },
        "policy": dataclasses.asdict(policy.config),
    }
    (tmp / "config.json").write_text(json.dumps(config, indent=2))
    (tmp / "stats.json").write_text(
        json.dumps(policy.stats.to_json(policy.config.stats_key), indent=2)
    )
    policy.text_encoder.tokenizer.save_pretrained(str(tmp / "tokenizer_t5"))
    policy.vlm.tokenizer.save_pretrained(str(tmp / "tokenizer_vlm"))
    policy.vlm.image_processor.save_pretrained(str(tmp / "image_processor"))
    tmp.rename(out)
    return out


def load_pretrained(
    directory: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
):
    """Read a folder written by :func:`save_pretrained` into a ``MotusPolicy``.

    Args:
        directory: the folder.
        device: where to put every model.
        dtype: dtype of the network and encoders (default: as stored); the VAE stays fp32.

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

    from motus_policy.model.configuration_motus import MotusConfig
    from motus_policy.model.encoders.text import T5TextEncoder, TextEncoderConfig
    from motus_policy.model.encoders.vlm import VLMConfig, VLMFeatureExtractor
    from motus_policy.model.modeling_motus import MotusModel
    from motus_policy.model.policy import MotusPolicy, NormalizationStats, PolicyConfig

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
    pcfg = PolicyConfig(**config["policy"])
    stats = NormalizationStats.from_json(
        json.loads((d / "stats.json").read_text()), pcfg.stats_key
    )
    return MotusPolicy(
        model,
        vae,
        T5TextEncoder(
            t5,
            AutoTokenizer.from_pretrained(str(d / "tokenizer_t5")),
            TextEncoderConfig(**config["t5"]["settings"]),
        ),
        VLMFeatureExtractor(
            vlm,
            AutoTokenizer.from_pretrained(str(d / "tokenizer_vlm")),
            Qwen2VLImageProcessorPil.from_pretrained(str(d / "image_processor")),
            VLMConfig(**config["vlm"]["settings"]),
        ),
        stats,
        pcfg,
    )
