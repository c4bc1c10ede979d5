"""Understanding expert: adapted Qwen3-VL features that join the tri-modal attention.

Faithful to docs/motus.md §1.4 and docs/checkpoint-format.md §4 (module names = official keys under
``und_expert.``): a ``vlm_adapter`` MLP maps the VLM's last hidden state to the expert width; each
block has plain (non-modulated) pre-norms, QKV into Wan head space with RMSNorm on q/k, an
out-projection and an FFN, with ungated residuals. No timestep, no positions, no output head.
"""

from __future__ import annotations

import torch
from torch import nn

from motus_policy.model.action_expert import mlp3x_silu
from motus_policy.model.configuration_motus import MotusConfig


class UndExpertBlock(nn.Module):
    """Parameters of one understanding layer."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        D, N, Dh = config.und_hidden_size, config.num_heads, config.head_dim
        self.norm1 = nn.LayerNorm(D, eps=config.und_eps, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(D, eps=config.und_eps, elementwise_affine=False)
        # std 1/sqrt(D·Dh) as the official models/und_expert.py (UndExpertBlock)
        self.wan_und_qkv = nn.Parameter(torch.randn(3, N, D, Dh) / (D * Dh) ** 0.5)
        self.wan_und_norm_q = nn.RMSNorm(N * Dh, eps=config.und_eps)  # eps unverified upstream
        self.wan_und_norm_k = nn.RMSNorm(N * Dh, eps=config.und_eps)
        self.wan_und_o = nn.Linear(N * Dh, D, bias=False)
        self.ffn = nn.Sequential(
            nn.Linear(D, config.und_ffn_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.und_ffn_dim, D),
        )

    def qkv(self, x: torch.Tensor):
        """(B, Lu, D) stream -> q, k, v (B, Lu, N, Dh) after ``norm1`` and RMSNorm on q, k."""
        w = self.wan_und_qkv
        h = self.norm1(x).to(w.dtype)
        q, k, v = torch.einsum("btd,knde->kbtne", h, w).unbind(0)
        q = self.wan_und_norm_q(q.flatten(2)).unflatten(2, q.shape[2:])
        k = self.wan_und_norm_k(k.flatten(2)).unflatten(2, k.shape[2:])
        return q, k, v

    def out(self, o: torch.Tensor) -> torch.Tensor:
        """(B, Lu, N, Dh) -> (B, Lu, D)."""
        return self.wan_und_o(o.flatten(2).to(self.wan_und_o.weight.dtype))

    def ffn_update(self, x: torch.Tensor) -> torch.Tensor:
        """Ungated FFN update ``ffn(LN(x))`` (B, Lu, D)."""
        return self.ffn(self.norm2(x).to(self.ffn[0].weight.dtype))


class UndExpert(nn.Module):
    """The Motus understanding expert (``und_expert.`` keys), VLM adapter included."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        self.config = config
        self.vlm_adapter = mlp3x_silu(config.vlm_hidden_size, config.und_hidden_size)
        self.blocks = nn.ModuleList(UndExpertBlock(config) for _ in range(config.num_layers))

    def adapt(self, vlm_hidden: torch.Tensor) -> torch.Tensor:
        """Layer-0 und tokens from the VLM's last hidden state.

        Args:
            vlm_hidden: (B, Lu, vlm_hidden_size) Qwen3-VL last hidden state, every prompt token.

        Returns:
            (B, Lu, und_hidden_size) in the expert's dtype. Constant across denoising steps
            (docs/motus.md §9.4), so callers compute it once per observation.

        Raises:
            ValueError: on a wrong width.
        """
        width = self.config.vlm_hidden_size
        if vlm_hidden.ndim != 3 or vlm_hidden.shape[-1] != width:
            raise ValueError(
                f"vlm_hidden: expected (B, Lu, {width}), got {tuple(vlm_hidden.shape)}"
            )
        return self.vlm_adapter(vlm_hidden.to(self.vlm_adapter[0].weight.dtype))
