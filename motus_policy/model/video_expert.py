"""Video expert: the Wan2.2-TI2V DiT, driven layer by layer by the Motus MoT forward.

The weights live in a diffusers ``WanTransformer3DModel`` (diffusers 0.42.1, module names of
``transformer_wan.py``); this class never calls its ``forward``. It exposes the pieces the
tri-modal layer needs (docs/motus.md §1.2, §1.5): patch embedding + RoPE, the time embedding, the
text projection, per-block modulation / self-attention projections / cross-attention / FFN, and the
output head with unpatchify.

Name map to the original Wan keys: docs/checkpoint-format.md §2.1 (diffusers swaps
``norm2``/``norm3``: here ``norm1`` = pre-self-attn, ``norm2`` = affine pre-cross-attn,
``norm3`` = pre-FFN).
"""

from __future__ import annotations

import torch
from diffusers.models.transformers.transformer_wan import WanTransformer3DModel
from torch import nn

from motus_policy.model.attention import attention
from motus_policy.model.configuration_motus import MotusConfig

TextKV = list[tuple[torch.Tensor, torch.Tensor]]  # per layer (k, v), each (B, Lt, N, Dh)


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Wan's 1-D timestep sinusoid ``[cos(t·ω_i), sin(t·ω_i)]``, ω_i = 10000^(−i/(dim/2)).

    Computed in float64 like ``sinusoidal_embedding_1d`` of the original Wan code
    (docs/motus.md §1.2; float32 where the device has no float64, e.g. MPS).

    Args:
        t: (B,) timesteps in [0, 1000] (t = 1000·σ).
        dim: even embedding width (``freq_dim``).

    Returns:
        (B, dim) float32.
    """
    dtype = torch.float32 if t.device.type == "mps" else torch.float64
    half = dim // 2
    omega = torch.pow(10000.0, -torch.arange(half, device=t.device, dtype=dtype) / half)
    args = t.to(dtype)[:, None] * omega[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1).float()


class WanVideoExpert(nn.Module):
    """Wrapper around a diffusers ``WanTransformer3DModel`` (attribute ``wan_model``).

    Args:
        config: the Motus config (Wan widths, layers, patch size, text width, epsilon).
    """

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        self.config = config
        self.wan_model = WanTransformer3DModel(
            patch_size=config.patch_size,
            num_attention_heads=config.num_heads,
            attention_head_dim=config.head_dim,
            in_channels=config.latent_channels,
            out_channels=config.latent_channels,
            text_dim=config.text_dim,
            freq_dim=config.freq_dim,
            ffn_dim=config.wan_ffn_dim,
            num_layers=config.num_layers,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            eps=config.wan_eps,
            rope_max_seq_len=config.rope_max_seq_len,
        )

    # 1. Patch & position embedding -----------------------------------------------------------
    def embed(
        self, latents: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor], tuple[int, int, int]]:
        """Patchify video latents into tokens and build their RoPE tables.

        Args:
            latents: (B, C, T', h, w) video latents.

        Returns:
            tokens (B, Lv, D) float32 (residual stream), RoPE (cos, sin) each (1, Lv, 1, Dh)
            float32, and the token grid (T', h/ph, w/pw). Tokens are in (t, h, w) row-major order.
        """
        wan = self.wan_model
        rope_cos, rope_sin = wan.rope(latents)
        x = wan.patch_embedding(latents.to(wan.patch_embedding.weight.dtype))  # (B, D, T', h', w')
        grid = tuple(x.shape[2:])
        x = x.flatten(2).transpose(1, 2).float().contiguous()  # (B, Lv, D)
        return x, (rope_cos.float(), rope_sin.float()), grid

    # 2. Condition embeddings ------------------------------------------------------------------
    def time_embedding(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Wan time embedding for one timestep per sample (identical to the per-token form).

        Args:
            t: (B,) timesteps in [0, 1000].

        Returns:
            ``t_emb`` (B, D) and its projection (B, 6, D), both float32.
        """
        ce = self.wan_model.condition_embedder
        emb_dtype = ce.time_embedder.linear_1.weight.dtype
        temb = ce.time_embedder(sinusoidal_embedding(t, self.config.freq_dim).to(emb_dtype))
        proj = ce.time_proj(ce.act_fn(temb).to(ce.time_proj.weight.dtype))
        return temb.float(), proj.float().unflatten(1, (6, -1))

    def text_context(self, text_embeds: torch.Tensor) -> torch.Tensor:
        """Zero-pad T5 output to ``text_len`` rows and apply the text projection.

        Source: docs/motus.md §1.2.

        Args:
            text_embeds: (B, L, text_dim) T5 last hidden states of the real tokens, L <= text_len.

        Returns:
            (B, text_len, D) projected context (padded rows become constant bias vectors,
            attended to without a mask, as in the official code).

        Raises:
            ValueError: on a wrong width or more than ``text_len`` rows.
        """
        cfg = self.config
        if text_embeds.ndim != 3 or text_embeds.shape[-1] != cfg.text_dim:
            raise ValueError(
                f"text_embeds: expected (B, L, {cfg.text_dim}), got {tuple(text_embeds.shape)}"
            )
        if text_embeds.shape[1] > cfg.text_len:
            raise ValueError(
                f"text_embeds: expected <= {cfg.text_len} rows, got {text_embeds.shape[1]}"
            )
        proj = self.wan_model.condition_embedder.text_embedder
        pad = cfg.text_len - text_embeds.shape[1]
        x = nn.functional.pad(text_embeds, (0, 0, 0, pad)).to(proj.linear_1.weight.dtype)
        return proj(x)

    def text_kv(self, context: torch.Tensor) -> TextKV:
        """Per-layer cross-attention keys/values of the (constant) text context.

        Args:
            context: (B, Lt, D) output of :meth:`text_context`.

        Returns:
            One (k, v) pair per layer, each (B, Lt, N, Dh), exactly what
            :meth:`cross_attention` computes internally when no cache is given.
        """
        out = []
        for block in self.wan_model.blocks:
            attn = block.attn2
            k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1))
            v = attn.to_v(context).unflatten(2, (attn.heads, -1))
            out.append((k, v))
        return out

    # 3. Per-block pieces ----------------------------------------------------------------------
    def modulation(self, i: int, time_proj: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Block ``i`` AdaLN terms e0..e5 (shift, scale, gate, c_shift, c_scale, c_gate).

        Args:
            i: layer index.
            time_proj: (B, 6, D) from :meth:`time_embedding`.

        Returns:
            Six (B, 1, D) float32 tensors.
        """
        table = self.wan_model.blocks[i].scale_shift_table.float()  # (1, 6, D)
        return tuple(c for c in (table + time_proj).unsqueeze(2).unbind(1))

    def pre_attention(self, i: int, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor):
        """``LN(x)·(1+scale)+shift`` in float32 (``norm1``, non-affine)."""
        return self.wan_model.blocks[i].norm1(x.float()) * (1 + scale) + shift

    def self_qkv(self, i: int, x_mod: torch.Tensor):
        """q, k, v (B, Lv, N, Dh) of block ``i``'s self-attention, after RMSNorm, before RoPE."""
        attn = self.wan_model.blocks[i].attn1
        x = x_mod.to(attn.to_q.weight.dtype)
        q = attn.norm_q(attn.to_q(x)).unflatten(2, (attn.heads, -1))
        k = attn.norm_k(attn.to_k(x)).unflatten(2, (attn.heads, -1))
        v = attn.to_v(x).unflatten(2, (attn.heads, -1))
        return q, k, v

    def self_out(self, i: int, out: torch.Tensor) -> torch.Tensor:
        """Output projection of the joint-attention result for the video tokens: (B, Lv, D)."""
        attn = self.wan_model.blocks[i].attn1
        return attn.to_out[0](out.flatten(2).to(attn.to_out[0].weight.dtype))

    def cross_attention(
        self,
        i: int,
        x: torch.Tensor,
        context: torch.Tensor | None,
        kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``attn2(norm2(x), text)``: video-to-text cross-attention, no gate.

        Source: docs/motus.md §1.5, step 7.

        Args:
            i: layer index.
            x: (B, Lv, D) video residual stream.
            context: (B, Lt, D) projected text (ignored when ``kv`` is given).
            kv: optional cached (k, v) for this layer from :meth:`text_kv`.

        Returns:
            (B, Lv, D) update to add to ``x``.
        """
        block = self.wan_model.blocks[i]
        attn = block.attn2
        h = block.norm2(x.float()).to(attn.to_q.weight.dtype)
        q = attn.norm_q(attn.to_q(h)).unflatten(2, (attn.heads, -1))
        if kv is None:
            if context is None:
                raise ValueError("cross_attention: need the text context or its cached K/V")
            k = attn.norm_k(attn.to_k(context)).unflatten(2, (attn.heads, -1))
            v = attn.to_v(context).unflatten(2, (attn.heads, -1))
        else:
            k, v = kv
        out = attention(q, k, v).flatten(2)
        return attn.to_out[0](out)

    def ffn(self, i: int, x: torch.Tensor, shift, scale, gate) -> torch.Tensor:
        """Gated FFN residual update ``ffn(LN(x)·(1+scale)+shift)·gate`` (float32, (B, Lv, D))."""
        block = self.wan_model.blocks[i]
        h = block.norm3(x.float()) * (1 + scale) + shift
        return block.ffn(h.to(block.ffn.net[2].weight.dtype)).float() * gate

    # 4. Output norm, projection & unpatchify --------------------------------------------------
    def head(
        self, x: torch.Tensor, temb: torch.Tensor, grid: tuple[int, int, int]
    ) -> torch.Tensor:
        """Final AdaLN + ``proj_out`` + unpatchify.

        Args:
            x: (B, Lv, D) video residual stream.
            temb: (B, D) unprojected time embedding.
            grid: token grid (T', h', w').

        Returns:
            (B, C, T', h, w) float32 velocity; each token's outputs ordered (pt, ph, pw, c).
        """
        wan = self.wan_model
        shift, scale = (wan.scale_shift_table.float() + temb[:, None]).unsqueeze(2).unbind(1)
        h = wan.norm_out(x.float()) * (1 + scale) + shift
        h = wan.proj_out(h.to(wan.proj_out.weight.dtype)).float()
        B = x.shape[0]
        pt, ph, pw = self.config.patch_size
        t, hh, ww = grid
        h = h.reshape(B, t, hh, ww, pt, ph, pw, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return h.flatten(6, 7).flatten(4, 5).flatten(2, 3)

    @property
    def num_parameters(self) -> int:
        """Parameter count of the Wan DiT."""
        return sum(p.numel() for p in self.parameters())
