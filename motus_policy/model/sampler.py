"""The five Motus inference modes over one network (UniDiffuser-style), with Euler integration.

Mode table (docs/motus.md §2.3; paper supplementary Algorithms 2-6). ``t`` is the shared
schedule value:

=========  =======================================  ===================================  ==========
mode       video tokens (future latent frames)      action tokens                        outputs
=========  =======================================  ===================================  ==========
joint      denoised from noise, t_v = t             denoised from noise, t_a = t         both
vla        held at their initial noise, t_v = 1000  denoised, t_a = t                    actions
vgm        denoised, t_v = t                        held at their initial noise, 1000    video
wm         denoised, t_v = t                        given clean actions, t_a = 0         video
idm        given clean latents, t_v = 0             denoised, t_a = t                    actions
=========  =======================================  ===================================  ==========

In every mode the condition latent frame (frame 0) is re-imposed clean before each network call
and after each step, and the text and und conditioning are always present. Only the official code
path is ``joint``; the other four are the standard way to obtain them from a model trained with
independent noise levels (t = 0 is a slight extrapolation: training σ ≥ 0.005).

Prefix inpainting (real-time chunking, hard-inpainting variant): with ``action_prefix`` (B, d, 14)
the first d action positions are replaced before every network call by the point of the
straight flow path that ends at the prefix, ``(1−σ_i)·prefix + σ_i·ε[:, :d]`` (ε = the initial
action noise, so step 0 is unchanged), and set to ``prefix`` exactly in the output. The remaining
A−d positions are denoised conditioned on it through the joint attention. This is the "hard
masking" baseline of RTC (Black et al., 2025), not its guided soft-masking variant.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motus_policy.model.modeling_motus import MotusConditioning, MotusModel
from motus_policy.model.scheduler import EulerSchedule
from motus_policy.types import MODES

_DENOISE_VIDEO = {"joint": True, "vla": False, "vgm": True, "wm": True, "idm": False}
_DENOISE_ACTIONS = {"joint": True, "vla": True, "vgm": False, "wm": False, "idm": True}
T_NOISE = 1000.0  # timestep of a modality held at pure noise (σ = 1)
T_CLEAN = 0.0  # timestep of a modality given clean (σ = 0)


@dataclass
class SampleOutput:
    """Result of one sampling call.

    Attributes:
        actions: (B, A, action_dim) float32 in the model's (normalised) action space; for ``wm``
            the given actions; None for ``vgm``.
        video_latents: (B, C, T', h, w) float32 with frame 0 = condition latent; for ``idm``
            the given latents; None for ``vla`` (the held noise is not a prediction).
        mode: the mode that produced it.
    """

    actions: torch.Tensor | None
    video_latents: torch.Tensor | None
    mode: str


class MotusSampler:
    """Samples actions and/or video latents from a :class:`MotusModel`.

    Args:
        model: the network (put it in eval mode and on its device yourself).
        num_steps: Euler steps; default ``model.config.num_inference_steps`` (10).
        bf16_schedule: bf16-rounded grid like the official code. Default: it follows the run
            dtype as upstream, where the grid is a ``linspace`` in the model dtype: bf16-rounded
            when the network runs in bf16 (``model.compute_dtype``) and ``config.bf16_schedule``
            is True; the exact fp32 grid for an fp32 network (docs/motus.md §2.2, §9.11).

    Thread safety: stateless apart from the schedule; one call at a time per model.
    """

    def __init__(
        self, model: MotusModel, num_steps: int | None = None, bf16_schedule: bool | None = None
    ) -> None:
        cfg = model.config
        self.model = model
        if bf16_schedule is None:
            run_dtype = getattr(model, "compute_dtype", torch.float32)
            bf16_schedule = cfg.bf16_schedule and run_dtype == torch.bfloat16
        self.schedule = EulerSchedule(num_steps or cfg.num_inference_steps, bf16_schedule)

    @torch.no_grad()
    def sample(
        self,
        mode: str,
        condition_latent: torch.Tensor,
        conditioning: MotusConditioning,
        state: torch.Tensor | None = None,
        *,
        actions: torch.Tensor | None = None,
        video_latents: torch.Tensor | None = None,
        action_prefix: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        initial_noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> SampleOutput:
        """Run one sampling loop in ``mode``.

        Args:
            mode: one of :data:`MODES`.
            condition_latent: (B, C, 1, h, w) normalised VAE latent of the condition frame.
            conditioning: text context (optionally with its K/V cache) and und tokens, built
                once per observation with ``MotusModel.prepare_conditioning``.
            state: (B, 14) current state (finetune models), None for pretrain models.
            actions: (B, A, 14) clean actions, required for ``wm``.
            video_latents: (B, C, T', h, w) clean clip latents (or (B, C, T'−1, h, w) future
                frames only), required for ``idm``.
            action_prefix: optional (B, d, 14), d ≤ A, actions to inpaint (modes that denoise
                actions only; see module docstring).
            generator: seeds the initial noise (reproducible runs); on the model's device.
            initial_noise: optional (video (B, C, T', h, w), actions (B, A, 14)) initial noise
                used instead of drawing it (``generator`` is then unused); frame 0 of the video
                noise is replaced by the condition latent. Used to replay a stored run (the
                golden regression test, tests/model/test_golden.py).

        Returns:
            :class:`SampleOutput`.

        Raises:
            ValueError: on an unknown mode, a missing mode input or a shape mismatch.
        """
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        cfg = self.model.config
        C, T, h, w = cfg.latent_shape
        A, D = cfg.action_chunk_size, cfg.action_dim
        B = condition_latent.shape[0]
        if tuple(condition_latent.shape) != (B, C, 1, h, w):
            raise ValueError(
                f"condition_latent: expected ({B}, {C}, 1, {h}, {w}), "
                f"got {tuple(condition_latent.shape)}"
            )
        device = condition_latent.device
        cond0 = condition_latent.float()

        # 1. Initial noise (video first, then actions, from one generator)
        if initial_noise is None:
            video_noise = torch.randn((B, C, T, h, w), generator=generator, device=device)
            action_noise = torch.randn((B, A, D), generator=generator, device=device)
        else:
            video_noise = self._check(initial_noise[0], (B, C, T, h, w), "initial_noise[0]")
            action_noise = self._check(initial_noise[1], (B, A, D), "initial_noise[1]")
            video_noise = video_noise.to(device=device, dtype=torch.float32)
            action_noise = action_noise.to(device=device, dtype=torch.float32)
        video = video_noise.clone()
        act = action_noise.clone()
        if mode == "wm":
            act = self._check(actions, (B, A, D), "actions (clean, required for wm)").float()
        if mode == "idm":
            if video_latents is not None and video_latents.shape[2] == T - 1:
                video_latents = torch.cat([cond0, video_latents.float()], dim=2)
            video = self._check(video_latents, (B, C, T, h, w), "video_latents (for idm)").float()
        video[:, :, :1] = cond0

        prefix = None
        if action_prefix is not None:
            if not _DENOISE_ACTIONS[mode]:
                raise ValueError(f"action_prefix: mode {mode!r} does not denoise actions")
            d = action_prefix.shape[1] if action_prefix.ndim == 3 else -1
            if action_prefix.ndim != 3 or not 0 < d <= A:
                raise ValueError(
                    f"action_prefix: expected ({B}, d, {D}) with 0 < d <= {A}, "
                    f"got {tuple(action_prefix.shape)}"
                )
            prefix = self._check(action_prefix, (B, d, D), "action_prefix").float()

        # 2. Euler loop
        sched = self.schedule
        for i in range(len(sched)):
            t = float(sched.timesteps[i])
            sigma = float(sched.sigmas[i])
            t_v = t if _DENOISE_VIDEO[mode] else (T_NOISE if mode == "vla" else T_CLEAN)
            t_a = t if _DENOISE_ACTIONS[mode] else (T_NOISE if mode == "vgm" else T_CLEAN)
            if prefix is not None:
                d = prefix.shape[1]
                act[:, :d] = (1.0 - sigma) * prefix + sigma * action_noise[:, :d]
            out = self.model(video, act, t_v, t_a, state, conditioning)
            if _DENOISE_VIDEO[mode]:
                video = sched.step(out.video_velocity, i, video)
                video[:, :, :1] = cond0
            if _DENOISE_ACTIONS[mode]:
                act = sched.step(out.action_velocity, i, act)

        # 3. Outputs
        if prefix is not None:
            act[:, : prefix.shape[1]] = prefix
        return SampleOutput(
            actions=None if mode == "vgm" else act,
            video_latents=None if mode == "vla" else video,
            mode=mode,
        )

    @staticmethod
    def _check(x: torch.Tensor | None, shape: tuple[int, ...], name: str) -> torch.Tensor:
        if x is None:
            raise ValueError(f"{name}: expected a tensor of shape {shape}, got None")
        if tuple(x.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {tuple(x.shape)}")
        return x
