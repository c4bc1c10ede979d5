"""Where fine-tuning starts: fresh weights, an official checkpoint or one of our folders.

* fresh: ``MotusModel(preset)`` seeded with ``seed``; encoders are the tiny ones for ``tiny``,
  else those of an ``encoders`` folder (``save_pretrained`` layout).
* official DeepSpeed checkpoint (docs/motus.md §5.1): network from the file, encoders as above.
  Stage transition: stage-3 fine-tuning of a stage-2 checkpoint drops every key containing
  ``action_expert.input_encoder`` or ``action_expert.decoder`` (so those modules and the
  registers start fresh) and inherits the rest (Wan DiT, action blocks and time MLPs, und
  expert). ``init_transition="auto"`` applies that rule when those keys do not fit the model
  (another chunk size, pretrain-mode checkpoint without a state encoder) and loads everything
  otherwise (continuing from a stage-3 checkpoint of the same shape). The checkpoint's
  ``vlm_model.*`` keys are ignored: the frozen VLM comes with the encoders.
* our folder: :func:`MotusPolicy.from_pretrained` (network, encoders, stats, config). A folder
  of a stage-2 run (pretrain mode) given with a finetune-mode preset starts stage 3 as the
  official checkpoints do (:func:`load_stage2_folder`): the preset's network with the folder's
  weights except the action input encoder / decoder (fresh, as are the state encoder and the
  registers), and the folder's encoders.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch

from motus_policy.model.checkpoint import (
    CheckpointMismatchError,
    load_official_state_dict,
    read_official_checkpoint,
)
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.modeling_motus import MotusModel
from motus_policy.model.normalization import NormalizationStats
from motus_policy.model.policy import MotusPolicy, PolicyConfig
from motus_policy.model.pretrained import read_config

log = logging.getLogger(__name__)

RESET_MARKERS = ("action_expert.input_encoder", "action_expert.decoder")
FRESH_OK = ("action_expert.registers",)


def is_pretrained_folder(path: str | Path) -> bool:
    """True for a folder written by ``save_pretrained`` (has config.json + model.safetensors)."""
    p = Path(path)
    return (p / "config.json").is_file() and (p / "model.safetensors").is_file()


def _fresh_model(config: MotusConfig, seed: int) -> MotusModel:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MotusModel(config)


def _encoders(config: MotusConfig, encoders: str | None, seed: int):
    if encoders:
        donor = MotusPolicy.from_pretrained(encoders)
        return donor.vae, donor.text_encoder, donor.vlm
    if not (config.preset.startswith("tiny") or config.preset.endswith("_tiny")):
        raise ValueError(
            f"encoders: preset {config.preset!r} needs the full VAE / T5 / Qwen3-VL; pass a "
            "save_pretrained folder that holds them (--encoders DIR)"
        )
    from motus_policy.model.encoders.tiny import build_tiny_encoders
    from motus_policy.model.encoders.vae import VAEConfig

    return build_tiny_encoders(
        seed=seed,
        text_dim=config.text_dim,
        vlm_dim=config.vlm_hidden_size,
        context_len=config.text_len,
        vae_config=VAEConfig.tiny(config.vae_spatial_factor),
    )


def load_official_with_transition(
    model: MotusModel, path: str | Path, transition: str
) -> tuple[list[str], list[str]]:
    """Load an official checkpoint into ``model`` under a stage-transition rule.

    Args:
        model: freshly initialised network of the target config.
        path: ``mp_rank_00_model_states.pt`` or its folder.
        transition: "keep_all", "reset_action_io" or "auto" (see module docstring).

    Returns:
        ``(reset_keys, fresh_keys)``: checkpoint keys dropped by the rule, and model keys left
        at their fresh initialisation.

    Raises:
        CheckpointMismatchError: shapes do not fit (after the rule).
        KeyError: keys missing beyond the reset modules, or unexpected keys.
    """
    state = read_official_checkpoint(path)
    target = model.state_dict()
    io_keys = [k for k in state if any(m in k for m in RESET_MARKERS) and "_module." not in k]
    if transition == "auto":
        model_io = [k for k in target if any(m in k for m in RESET_MARKERS)]
        fits = all(
            k in state and tuple(state[k].shape) == tuple(target[k].shape) for k in model_io
        ) and all(k in target for k in io_keys)
        transition = "keep_all" if fits else "reset_action_io"
    reset = io_keys if transition == "reset_action_io" else []
    kept = {k: v for k, v in state.items() if k not in set(reset)}
    report = load_official_state_dict(model, kept, strict=False, where=str(path))
    allowed = RESET_MARKERS if reset else ()
    bad_missing = [
        k for k in report.missing if not any(m in k for m in allowed) and k not in FRESH_OK
    ]
    if bad_missing or report.unexpected:
        raise KeyError(
            f"{path}: missing {bad_missing[:20]} ({len(bad_missing)}), unexpected "
            f"{report.unexpected[:20]} ({len(report.unexpected)}) for rule {transition!r}"
        )
    log.info(
        "official init %s: rule %s, %d tensors loaded, %d reset, %d fresh",
        path, transition, report.loaded, len(reset), len(report.missing),
    )  # fmt: skip
    return reset, report.missing


def load_stage2_folder(
    model: MotusModel, folder: str | Path
) -> tuple[MotusPolicy, list[str], list[str]]:
    """Initialise a finetune-mode ``model`` from our stage-2 (pretrain-mode) folder.

    The folder's network keys containing :data:`RESET_MARKERS` are dropped (their shapes and
    meaning change from latent actions to robot actions), every other key is copied, and the
    model keys left out (action input encoder with the state encoder, decoder, registers) keep
    their fresh initialisation; the stage-2 rule of :func:`load_official_with_transition`.

    Returns:
        ``(the stage-2 policy, i.e. its encoders; dropped keys; fresh model keys)``.

    Raises:
        KeyError: a model key outside the reset modules is missing from the folder, or the
            folder has keys the model lacks.
        CheckpointMismatchError: a carried key's shape differs (another width or depth).
    """
    src = MotusPolicy.from_pretrained(folder)
    state = src.model.state_dict()
    dropped = [k for k in state if any(m in k for m in RESET_MARKERS)]
    kept = {k: v for k, v in state.items() if k not in set(dropped)}
    target = model.state_dict()
    bad = [
        f"{k}: {tuple(v.shape)} in {folder}, {tuple(target[k].shape)} in the model"
        for k, v in kept.items()
        if k in target and tuple(v.shape) != tuple(target[k].shape)
    ]
    if bad:
        raise CheckpointMismatchError(f"{folder}: " + "; ".join(bad[:10]))
    report = model.load_state_dict(kept, strict=False)
    fresh = list(report.missing_keys)
    off = [k for k in fresh if not any(m in k for m in RESET_MARKERS) and k not in FRESH_OK]
    if off or report.unexpected_keys:
        raise KeyError(
            f"{folder}: stage-2 -> stage-3 left {off[:20]} missing and "
            f"{list(report.unexpected_keys)[:20]} unexpected"
        )
    log.info(
        "stage-2 folder %s: %d tensors carried, %d dropped, %d fresh",
        folder, len(kept), len(dropped), len(fresh),
    )  # fmt: skip
    return src, dropped, fresh


def _is_stage2_folder(path: str | Path) -> bool:
    return read_config(path)["motus"].get("training_mode") == "pretrain"


def build_policy(
    preset: str,
    init: str | None,
    encoders: str | None,
    transition: str,
    seed: int,
    stats: NormalizationStats | None,
    stats_key: str,
    policy_config: PolicyConfig,
) -> tuple[MotusPolicy, str]:
    """Build the policy to fine-tune.

    Args:
        preset: ``MotusConfig`` preset for a fresh / official start.
        init: None, an official checkpoint, or our folder.
        encoders: our folder providing VAE / T5 / VLM (non-tiny presets).
        transition: official stage-transition rule.
        seed: initialisation seed.
        stats: min-max stats of the training data (None: raw values), ignored for our folder
            when it already carries non-identity stats.
        stats_key: name of the stats entry.
        policy_config: runtime settings saved with the result.

    Returns:
        ``(policy, description)`` with the network in fp32 and train mode.
    """
    stage2_init = init and is_pretrained_folder(init) and _is_stage2_folder(init)
    if stage2_init and MotusConfig.from_preset(preset).training_mode == "finetune":
        config = MotusConfig.from_preset(preset)
        if stats is not None:
            config = dataclasses.replace(
                config, action_normalization="min_max", normalization_key=stats_key
            )
        model = _fresh_model(config, seed)
        src, dropped, _ = load_stage2_folder(model, init)
        vae, text, vlm = (
            _encoders(config, encoders, seed) if encoders else (src.vae, src.text_encoder, src.vlm)
        )
        policy = MotusPolicy(model, vae, text, vlm, stats, policy_config)
        policy.model.float().train()
        return policy, f"stage-2 folder {init} ({len(dropped)} action I/O keys reset)"
    if init and is_pretrained_folder(init):
        policy = MotusPolicy.from_pretrained(init)
        ident = NormalizationStats.identity(policy.stats.min.shape[0])
        has_stats = not (
            (policy.stats.min == ident.min).all() and (policy.stats.max == ident.max).all()
        )
        if has_stats:
            stats, stats_key = policy.stats, policy.config.stats_key
        policy.stats = stats or ident
        policy.config = dataclasses.replace(policy_config, stats_key=stats_key)
        if stats is not None:
            policy.model.config = dataclasses.replace(
                policy.model.config, action_normalization="min_max", normalization_key=stats_key
            )
        policy.model.float().train()
        return policy, f"our folder {init}"
    config = MotusConfig.from_preset(preset)
    if stats is not None:
        config = dataclasses.replace(
            config, action_normalization="min_max", normalization_key=stats_key
        )
    model = _fresh_model(config, seed)
    desc = f"fresh {preset} (seed {seed})"
    if init:
        reset, _ = load_official_with_transition(model, init, transition)
        desc = f"official {init} ({len(reset)} action I/O keys reset)"
    vae, text, vlm = _encoders(config, encoders, seed)
    policy = MotusPolicy(model, vae, text, vlm, stats, policy_config)
    policy.model.float().train()
    return policy, desc
