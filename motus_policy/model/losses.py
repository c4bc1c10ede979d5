"""Motus training objective (docs/motus.md §2.1).

``loss = video_loss_weight·MSE_video + action_loss_weight·MSE_action`` (both weights 1.0), plain
means, no timestep weighting. MSE_video is taken over the whole latent tensor with frame 0 zeroed
in prediction and target, so the condition frame contributes zero error but counts in the
denominator, as in the official code (a later upstream extra averages over future frames only;
we keep the released behaviour).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from motus_policy.model.modeling_motus import MotusConditioning, MotusModel
from motus_policy.model.scheduler import add_noise, sample_training_sigmas, velocity_target


@dataclass
class LossOutput:
    """One training-step loss and its parts.

    Attributes:
        loss: scalar, weighted sum (differentiable).
        video_loss: scalar MSE over the latent with frame 0 zeroed (detached).
        action_loss: scalar MSE over (B, A, 14) (detached).
        video_sigma: (B,) video noise levels used.
        action_sigma: (B,) action noise levels used.
    """

    loss: torch.Tensor
    video_loss: torch.Tensor
    action_loss: torch.Tensor
    video_sigma: torch.Tensor
    action_sigma: torch.Tensor


def video_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over (B, C, T', h, w) with latent frame 0 zeroed in both tensors."""
    pred = torch.cat([torch.zeros_like(pred[:, :, :1]), pred[:, :, 1:]], dim=2)
    target = torch.cat([torch.zeros_like(target[:, :, :1]), target[:, :, 1:]], dim=2)
    return F.mse_loss(pred.float(), target.float())


def action_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over (B, A, action_dim)."""
    return F.mse_loss(pred.float(), target.float())


def _fixed(
    x: torch.Tensor, shape: tuple[int, ...], name: str, device: torch.device
) -> torch.Tensor:
    if tuple(x.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(x.shape)}")
    return x.to(device=device, dtype=torch.float32)


def training_loss(
    model: MotusModel,
    video_latents: torch.Tensor,
    actions: torch.Tensor,
    state: torch.Tensor | None,
    conditioning: MotusConditioning,
    *,
    condition_latent: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    sigmas: tuple[torch.Tensor, torch.Tensor] | None = None,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> LossOutput:
    """Noise a clean batch, run the network once and return the Motus loss (docs/motus.md §2.1).

    Args:
        model: the network (train mode).
        video_latents: (B, C, T', h, w) clean normalised latents of the clip (condition frame +
            F future frames).
        actions: (B, A, 14) clean actions (normalised space).
        state: (B, 14) clean state (finetune) or None (pretrain).
        conditioning: from ``model.prepare_conditioning`` (keep it inside the autograd graph so
            the text projection and the VLM adapter train).
        condition_latent: (B, C, 1, h, w) latent of the condition frame encoded alone (official);
            default: ``video_latents[:, :, :1]``.
        generator: CPU generator for σ indices and noise (reproducibility).
        sigmas: optional fixed (σ_video (B,), σ_action (B,)) used instead of drawing them.
        noise: optional fixed (ε_video like ``video_latents``, ε_action like ``actions``) used
            instead of drawing them. With both, ``generator`` is unused: this replays a stored
            training step (the golden regression test, tests/model/test_golden.py).

    Returns:
        :class:`LossOutput`.

    Raises:
        ValueError: ``sigmas`` or ``noise`` of the wrong shape.
    """
    cfg = model.config
    B = video_latents.shape[0]
    device = video_latents.device
    if condition_latent is None:
        condition_latent = video_latents[:, :, :1]

    # 1. Independent σ per sample and modality from the shift-5 table
    if sigmas is None:
        sig_v = sample_training_sigmas(
            B, cfg.num_train_timesteps, cfg.train_shift, generator=generator, device=device
        )
        sig_a = sample_training_sigmas(
            B, cfg.num_train_timesteps, cfg.train_shift, generator=generator, device=device
        )
    else:
        sig_v, sig_a = (_fixed(s, (B,), f"sigmas[{i}]", device) for i, s in enumerate(sigmas))
    if noise is None:
        eps_v = torch.randn(video_latents.shape, generator=generator).to(device)
        eps_a = torch.randn(actions.shape, generator=generator).to(device)
    else:
        eps_v = _fixed(noise[0], tuple(video_latents.shape), "noise[0]", device)
        eps_a = _fixed(noise[1], tuple(actions.shape), "noise[1]", device)

    # 2. Noisy inputs; condition frame re-imposed clean (teacher forcing)
    noisy_v = add_noise(video_latents.float(), eps_v, sig_v)
    noisy_v = torch.cat([condition_latent.float(), noisy_v[:, :, 1:]], dim=2)
    noisy_a = add_noise(actions.float(), eps_a, sig_a)

    # 3. One network call at t = 1000·σ
    out = model(noisy_v, noisy_a, 1000.0 * sig_v, 1000.0 * sig_a, state, conditioning)
    v_loss = video_mse(out.video_velocity, velocity_target(video_latents.float(), eps_v))
    a_loss = action_mse(out.action_velocity, velocity_target(actions.float(), eps_a))
    loss = cfg.video_loss_weight * v_loss + cfg.action_loss_weight * a_loss
    return LossOutput(loss, v_loss.detach(), a_loss.detach(), sig_v, sig_a)
