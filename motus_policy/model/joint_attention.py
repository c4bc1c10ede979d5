"""One Mixture-of-Transformers layer: tri-modal joint attention over [video | action | und].

Implements the per-layer procedure of docs/motus.md §1.5 exactly (steps 1-8): modulation,
pre-norms, projections into the shared Wan head space, RoPE on video q/k only, one unmasked
bidirectional attention over the concatenated sequence, split, per-expert out-projections with
gated (video, action) or plain (und) residuals, video cross-attention to the T5 context, then the
three FFNs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from motus_policy.model.action_expert import ActionExpert
from motus_policy.model.attention import attention
from motus_policy.model.und_expert import UndExpert
from motus_policy.model.video_expert import WanVideoExpert


def apply_rotary_emb(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs (2i, 2i+1) of ``x`` (Wan / diffusers ``WanAttnProcessor`` form).

    Args:
        x: (B, L, N, Dh) queries or keys.
        cos: (1, L, 1, Dh) cosine table
        sin: (1, L, 1, Dh) sine table, from ``WanRotaryPosEmbed`` (values repeated per pair).

    Returns:
        (B, L, N, Dh) float32 (the official code keeps q/k after RoPE in fp32).
    """
    x1, x2 = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2], sin[..., 1::2]
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)


@dataclass
class LayerConditioning:
    """Per-call inputs shared by every layer.

    Attributes:
        video_mod_proj: (B, 6, Dv) projected video time embedding.
        action_mod_proj: (B, 6, Da) projected action time embedding.
        rope: (cos, sin) for the video tokens, each (1, Lv, 1, Dh).
        text_context: (B, Lt, Dv) projected T5 context, or None when ``text_kv`` is given.
        text_kv: optional per-layer cached cross-attention (k, v).
    """

    video_mod_proj: torch.Tensor
    action_mod_proj: torch.Tensor
    rope: tuple[torch.Tensor, torch.Tensor]
    text_context: torch.Tensor | None
    text_kv: list[tuple[torch.Tensor, torch.Tensor]] | None


def mot_layer(
    i: int,
    video: WanVideoExpert,
    action: ActionExpert,
    und: UndExpert,
    xv: torch.Tensor,
    xa: torch.Tensor,
    xu: torch.Tensor,
    cond: LayerConditioning,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run layer ``i`` of all three experts.

    Args:
        i: layer index.
        video: the video expert.
        action: the action expert.
        und: the understanding expert.
        xv: (B, Lv, Dv) float32 video residual stream.
        xa: (B, La, Da) float32 action residual stream.
        xu: (B, Lu, Du) und residual stream (expert dtype).
        cond: time modulation, RoPE and text for this call.

    Returns:
        The updated (xv, xa, xu).
    """
    # 1. Modulation (float32)
    e0, e1, e2, e3, e4, e5 = video.modulation(i, cond.video_mod_proj)
    a0, a1, a2, a3, a4, a5 = action.modulation(i, cond.action_mod_proj)
    ablock, ublock = action.blocks[i], und.blocks[i]

    # 2-3. Pre-norms and projections into Wan head space; RoPE on video only
    qv, kv, vv = video.self_qkv(i, video.pre_attention(i, xv, e0, e1))
    qv, kv = apply_rotary_emb(qv, *cond.rope), apply_rotary_emb(kv, *cond.rope)
    qa, ka, va = ablock.qkv(action.pre_attention(i, xa, a0, a1))
    qu, ku, vu = ublock.qkv(xu)

    # 4-5. One unmasked attention over [video | action | und]
    lengths = (qv.shape[1], qa.shape[1], qu.shape[1])
    dtype = vv.dtype
    q = torch.cat([qv.to(dtype), qa.to(dtype), qu.to(dtype)], dim=1)
    k = torch.cat([kv.to(dtype), ka.to(dtype), ku.to(dtype)], dim=1)
    v = torch.cat([vv, va.to(dtype), vu.to(dtype)], dim=1)
    ov, oa, ou = attention(q, k, v).split(lengths, dim=1)

    # 6. Out-projections and residuals (gated for video/action, plain for und)
    xv = xv + video.self_out(i, ov).float() * e2
    xa = xa + ablock.out(oa).float() * a2
    xu = xu + ublock.out(ou).to(xu.dtype)

    # 7. Video cross-attention to the T5 context (no gate)
    layer_kv = cond.text_kv[i] if cond.text_kv is not None else None
    xv = xv + video.cross_attention(i, xv, cond.text_context, layer_kv).float()

    # 8. FFNs
    xv = xv + video.ffn(i, xv, e3, e4, e5)
    xa = xa + action.ffn(i, xa, a3, a4, a5)
    xu = xu + ublock.ffn_update(xu).to(xu.dtype)
    return xv, xa, xu
