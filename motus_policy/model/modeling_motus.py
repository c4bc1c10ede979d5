"""`MotusModel`: the Motus network (video DiT + action expert + understanding expert).

One call = one velocity evaluation for both modalities (docs/motus.md §1.5): the three experts run
layer-synchronously through :func:`~motus_policy.model.joint_attention.mot_layer`. The integration
loop and the five modes live in :mod:`motus_policy.model.sampler`; the network never owns them.

State-dict layout (a prefix change from the official ``mp_rank_00_model_states.pt``,
docs/checkpoint-format.md §1):

* ``video_model.wan_model.*``: diffusers ``WanTransformer3DModel`` names (official: original Wan
  names under the same prefix; map with docs/checkpoint-format.md §2.1);
* ``action_expert.*`` and ``und_expert.*``: identical to the official keys
  (docs/checkpoint-format.md §3-4).

The frozen VLM, the VAE and T5 are not part of this module (``encoders/``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from motus_policy.model.action_expert import ActionExpert
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.joint_attention import LayerConditioning, mot_layer
from motus_policy.model.und_expert import UndExpert
from motus_policy.model.video_expert import TextKV, WanVideoExpert


@dataclass
class MotusConditioning:
    """Per-observation inputs that stay constant across denoising steps.

    Attributes:
        text_context: (B, text_len, Dv) projected T5 context (``MotusModel.encode_text``).
        und_tokens: (B, Lu, Du) adapted VLM features (``MotusModel.encode_und``), the und
            stream's layer-0 input.
        text_kv: optional per-layer cross-attention (k, v) cache
            (``MotusModel.precompute_text_kv``); when given, ``text_context`` is not re-projected.
    """

    text_context: torch.Tensor
    und_tokens: torch.Tensor
    text_kv: TextKV | None = None

    @property
    def batch_size(self) -> int:
        """Batch size B."""
        return self.und_tokens.shape[0]


@dataclass
class MotusOutput:
    """Velocities predicted by one network evaluation.

    Attributes:
        video_velocity: (B, C, T', h, w) float32, ``ε − x₀`` for every latent frame.
        action_velocity: (B, A, action_dim) float32.
    """

    video_velocity: torch.Tensor
    action_velocity: torch.Tensor


DTYPES = ("auto", "float32", "bfloat16")
"""Accepted run-dtype names (``motus.dtype`` on the policy node)."""


def runtime_dtype(device: torch.device | str) -> torch.dtype:
    """bf16 on CUDA (the official run dtype), fp32 elsewhere (CPU tests)."""
    return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32


def resolve_dtype(name: str | torch.dtype, device: torch.device | str) -> torch.dtype:
    """Run dtype from its name.

    ``auto`` = bf16 on CUDA, fp32 elsewhere; or ``float32`` / ``bfloat16`` (a ``torch.dtype`` of
    those two is passed through).

    The official deployment runs the network in bf16 with fp32 time embeddings, AdaLN tables and
    float64 RoPE (docs/motus.md §1.1; :meth:`MotusModel.to_runtime`).

    Raises:
        ValueError: another name or dtype (naming the accepted ones).
    """
    if isinstance(name, torch.dtype):
        if name in (torch.float32, torch.bfloat16):
            return name
        raise ValueError(f"dtype: expected torch.float32 or torch.bfloat16, got {name}")
    if name == "auto":
        return runtime_dtype(device)
    if name in ("float32", "bfloat16"):
        return getattr(torch, name)
    raise ValueError(f"motus.dtype: expected one of {DTYPES}, got {name!r}")


def _timestep(t: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float32, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"timestep: expected a scalar or shape ({batch},), got {tuple(t.shape)}")
    return t


class MotusModel(nn.Module):
    """The Motus Mixture-of-Transformers network.

    Args:
        config: a validated :class:`MotusConfig`.

    Attributes:
        video_model: :class:`WanVideoExpert` (``video_model.wan_model`` is the diffusers DiT).
        action_expert: :class:`ActionExpert`.
        und_expert: :class:`UndExpert` (includes ``vlm_adapter``).
    """

    _no_split_modules = ("WanTransformerBlock", "ActionExpertBlock", "UndExpertBlock")
    # action expert (docs/motus.md §1.1)
    _keep_in_fp32_modules = ("time_embedding", "time_projection")

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        self.config = config
        self.video_model = WanVideoExpert(config)
        self.action_expert = ActionExpert(config)
        self.und_expert = UndExpert(config)

    # --- constant per observation ------------------------------------------------------------
    def encode_text(self, text_embeds: torch.Tensor) -> torch.Tensor:
        """T5 states (B, L<=text_len, text_dim) -> projected context (B, text_len, Dv)."""
        return self.video_model.text_context(text_embeds)

    def encode_und(self, vlm_hidden: torch.Tensor) -> torch.Tensor:
        """VLM last hidden state (B, Lu, vlm_hidden_size) -> und tokens (B, Lu, Du)."""
        return self.und_expert.adapt(vlm_hidden)

    def precompute_text_kv(self, text_context: torch.Tensor) -> TextKV:
        """Per-layer cross-attention K/V of a projected text context (the text K/V cache).

        Args:
            text_context: (B, text_len, Dv) from :meth:`encode_text`.

        Returns:
            ``num_layers`` pairs (k, v), each (B, text_len, num_heads, head_dim).
        """
        return self.video_model.text_kv(text_context)

    def prepare_conditioning(
        self, text_embeds: torch.Tensor, vlm_hidden: torch.Tensor, cache_text_kv: bool = False
    ) -> MotusConditioning:
        """Build :class:`MotusConditioning` from raw T5 and VLM features.

        Args:
            text_embeds: (B, L, text_dim) T5 last hidden states of the real tokens.
            vlm_hidden: (B, Lu, vlm_hidden_size) VLM last hidden states.
            cache_text_kv: also precompute the per-layer text K/V (inference; saves the
                cross-attention K/V projections at every step).

        Raises:
            ValueError: on shape or batch mismatch.
        """
        if text_embeds.shape[0] != vlm_hidden.shape[0]:
            raise ValueError(
                f"batch: text_embeds has {text_embeds.shape[0]} rows, "
                f"vlm_hidden {vlm_hidden.shape[0]}"
            )
        context = self.encode_text(text_embeds)
        kv = self.precompute_text_kv(context) if cache_text_kv else None
        return MotusConditioning(context, self.encode_und(vlm_hidden), kv)

    # --- one velocity evaluation -------------------------------------------------------------
    def forward(
        self,
        video_latents: torch.Tensor,
        action_latents: torch.Tensor,
        video_timestep: torch.Tensor | float,
        action_timestep: torch.Tensor | float,
        state: torch.Tensor | None,
        conditioning: MotusConditioning,
        *,
        run_layer: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None,
    ) -> MotusOutput:
        """Predict flow-matching velocities for video and actions.

        Args:
            video_latents: (B, C, T', h, w) noisy video latents (frame 0 = clean condition).
            action_latents: (B, A, action_dim) noisy actions (normalised space).
            video_timestep: t_v = 1000·σ_v, scalar or (B,); every video token gets it, including
                the condition frame (docs/motus.md §9.1).
            action_timestep: t_a = 1000·σ_a, scalar or (B,).
            state: (B, state_dim) clean state (finetune) or None (pretrain).
            conditioning: text context / K/V cache and und tokens.
            run_layer: ``run_layer(i, xv, xa, xu, layer_cond) -> (xv, xa, xu)`` replaces the
                call of MoT layer ``i`` (default :func:`mot_layer` on this model's experts);
                sharded training routes it through one FSDP unit per layer
                (motus_policy/training/fsdp.py). It must compute what ``mot_layer`` does.

        Returns:
            :class:`MotusOutput` with float32 velocities.

        Raises:
            ValueError: on shape mismatches (naming expected vs got).
        """
        cfg = self.config
        B = video_latents.shape[0]
        if video_latents.ndim != 5 or tuple(video_latents.shape[1:]) != cfg.latent_shape:
            raise ValueError(
                f"video_latents: expected (B, {', '.join(map(str, cfg.latent_shape))}), "
                f"got {tuple(video_latents.shape)}"
            )
        if action_latents.shape[0] != B or conditioning.batch_size != B:
            raise ValueError(
                f"batch: video {B}, actions {action_latents.shape[0]}, "
                f"conditioning {conditioning.batch_size}"
            )
        device = video_latents.device
        t_v = _timestep(video_timestep, B, device)
        t_a = _timestep(action_timestep, B, device)

        # 1. Tokens and time embeddings
        xv, rope, grid = self.video_model.embed(video_latents)
        xa = self.action_expert.embed(state, action_latents)
        xu = conditioning.und_tokens
        temb, video_proj = self.video_model.time_embedding(t_v)
        a_e, action_proj = self.action_expert.time_embed(t_a)
        layer_cond = LayerConditioning(
            video_mod_proj=video_proj,
            action_mod_proj=action_proj,
            rope=rope,
            text_context=conditioning.text_context,
            text_kv=conditioning.text_kv,
        )

        # 2. Layer-synchronous MoT blocks
        for i in range(cfg.num_layers):
            if run_layer is not None:
                xv, xa, xu = run_layer(i, xv, xa, xu, layer_cond)
                continue
            xv, xa, xu = mot_layer(
                i, self.video_model, self.action_expert, self.und_expert, xv, xa, xu, layer_cond
            )

        # 3. Heads
        return MotusOutput(
            video_velocity=self.video_model.head(xv, temb, grid),
            action_velocity=self.action_expert.decode(xa, a_e),
        )

    def to_runtime(
        self, device: torch.device | str, dtype: torch.dtype | None = None
    ) -> MotusModel:
        """Move to ``device`` in the run dtype (bf16 on CUDA, fp32 elsewhere), in place.

        Unlike a plain ``.to(dtype)``, this keeps the RoPE tables in their original float64
        (float32 on MPS) precision, and the small time-embedding MLPs and AdaLN tables in fp32
        (docs/motus.md §1.1: the official action time MLPs are fp32; modulation arithmetic is
        fp32).

        Returns:
            ``self``.
        """
        dtype = dtype or runtime_dtype(device)
        rope = self.video_model.wan_model.rope
        ce = self.video_model.wan_model.condition_embedder
        keep_fp32 = {
            id(p)
            for module in (
                ce.time_embedder,
                ce.time_proj,
                self.action_expert.time_embedding,
                self.action_expert.time_projection,
            )
            for p in module.parameters()
        }
        keep_fp32 |= {
            id(p)
            for name, p in self.named_parameters()
            if name.endswith(("scale_shift_table", "modulation"))
        }
        keep_buffers = {id(b) for b in rope.buffers()}
        self.to(device=device)
        # Cast tensor by tensor: a whole-model .to(bf16) followed by .float() would round the
        # kept tables through bf16 first.
        for module in self.modules():
            for p in module.parameters(recurse=False):
                if p.is_floating_point():
                    p.data = p.data.to(torch.float32 if id(p) in keep_fp32 else dtype)
            for name, b in module.named_buffers(recurse=False):
                if b.is_floating_point() and id(b) not in keep_buffers:
                    module._buffers[name] = b.to(dtype)
        return self

    @property
    def compute_dtype(self) -> torch.dtype:
        """The dtype of the large matrices (bf16 after ``to_runtime(dtype=bf16)``, else fp32).

        The time MLPs, AdaLN tables and RoPE stay fp32 / float64 whatever this says.
        """
        return self.video_model.wan_model.patch_embedding.weight.dtype

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per expert and in total."""
        counts = {
            name: sum(p.numel() for p in getattr(self, name).parameters())
            for name in ("video_model", "action_expert", "und_expert")
        }
        counts["total"] = sum(counts.values())
        return counts
