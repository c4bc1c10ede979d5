"""Loading checkpoints into our modules, every shape checked before any copy.

Files read (docs/checkpoint-format.md; docs/motus.md §5):

* Full Motus model: DeepSpeed ``mp_rank_00_model_states.pt`` (a ``torch.save`` dict, weights
  under ``module``): :func:`read_official_checkpoint`, :func:`load_official_checkpoint`;
  written back by :func:`save_official_checkpoint`.
* Stage-1 Wan DiT (``Motus_Wan2_2_5B_pretrain`` / Wan2.2-TI2V-5B) in safetensors (single file or
  sharded folder) or a torch file: :func:`read_state_dict`, :func:`load_wan_stage1`.
* Wan2.2 VAE ``Wan2.2_VAE.pth``: :func:`load_wan22_vae`.

Key renames live in :mod:`motus_policy.model.convert_official`; our own folders (``model.
safetensors`` + configs) in :mod:`motus_policy.model.pretrained`.

Every load checks all shapes first and raises :class:`CheckpointMismatchError` naming each
key with the expected and found shapes; missing and unexpected keys are reported in a
:class:`LoadReport` (and raise when ``strict``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from motus_policy.model.convert_official import (
    ACTION_PREFIX,
    POS_EMBEDDING_KEY,
    UND_PREFIX,
    UNMAPPED,
    VLM_PREFIX,
    WAN_PREFIX,
    convert_wan_original_to_diffusers,
    export_official_state_dict,
    split_official_state_dict,
    wan22_vae_key_to_diffusers,
)
from motus_policy.model.encoders.vae import MotusVAE, VAEConfig


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
    # docs/checkpoint-format.md §3 / §9.3: finetune rows = A + 6 (A + 5 used), pretrain rows = A.
    def describe(rows: int) -> str:
        return f"{rows} rows = A {rows - 6} in finetune mode (A + 6) or A {rows} in pretrain mode"

    return (
        f"{POS_EMBEDDING_KEY} encodes the action chunk size A: the model has "
        f"{describe(expected[1])}, the checkpoint has {describe(found[1])}. Build the config "
        "with the checkpoint's chunk size / training mode (docs/motus.md §3.1, §5.1)."
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


# --- Wan2.2 VAE and stage-1 Wan DiT files ----------------------------------------------------
def load_wan22_vae(
    path: str | Path | Mapping[str, torch.Tensor], config: VAEConfig | None = None
) -> MotusVAE:
    """Build a :class:`MotusVAE` from ``Wan2.2_VAE.pth`` (docs/checkpoint-format.md §6).

    Args:
        path: the ``.pth`` file, or an already-loaded original-layout state dict.
        config: architecture; defaults to the full-size Wan2.2 VAE.

    Raises:
        CheckpointMismatchError / KeyError: as :func:`load_into` (strict); KeyError also for a
            key that fits no rename rule.
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


def read_state_dict(path: str | Path, weights_only: bool = True) -> dict[str, torch.Tensor]:
    """Read a safetensors file, a sharded safetensors folder (``*.index.json``) or a torch file.

    Raises:
        FileNotFoundError: a folder without ``*.safetensors`` files.
    """
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


# --- full Motus checkpoint -------------------------------------------------------------------
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
    split = split_official_state_dict(state, model.config.num_layers)
    parts = split.parts
    report = LoadReport(unexpected=list(split.unknown), ignored=list(split.aliases))
    if vlm_model is None:
        report.ignored += [VLM_PREFIX + k for k in parts.pop(VLM_PREFIX)]
    wan_inv = {v: k for k, v in split.wan_names.items()}  # diffusers -> original Wan name
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
        inv = wan_inv if prefix == WAN_PREFIX else {}
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
            part.missing = [wan_inv.get(k, k) for k in part.missing]
            part.unexpected = [k.replace(UNMAPPED, "") for k in part.unexpected]
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
