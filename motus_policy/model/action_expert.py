"""Action expert: state/action tokens with their own timestep AdaLN, attending in Wan head space.

Faithful to docs/motus.md §1.3 and docs/checkpoint-format.md §3: module names equal the official
keys under the ``action_expert.`` prefix. Each block owns only parameters; the attention itself
runs in the tri-modal joint attention (:mod:`motus_policy.model.joint_attention`).

Token sequence: finetune ``[state (1), actions (A), registers (R)]``, pretrain ``[actions (A)]``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.video_expert import sinusoidal_embedding


def mlp3x_silu(in_dim: int, dim: int) -> nn.Sequential:
    """Linear(in→dim), SiLU, Linear(dim→dim), SiLU, Linear(dim→dim) (keys ``.0 .2 .4``)."""
    return nn.Sequential(
        nn.Linear(in_dim, dim), nn.SiLU(), nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim)
    )


def sincos_1d(length: int, dim: int) -> torch.Tensor:
    """MAE-style fixed 1-D positions ``[sin(p·ω_i), cos(p·ω_i)]``, ω_i = 1/10000^(i/(dim/2)).

    Returns:
        (1, length, dim) float32 (sin first, then cos; docs/motus.md §1.3).
    """
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.arange(length, dtype=np.float64)[:, None] * omega[None, :]
    emb = np.concatenate([np.sin(out), np.cos(out)], axis=1)
    return torch.from_numpy(emb).float()[None]


class StateActionEncoder(nn.Module):
    """Finetune-mode input encoder: state and action MLPs plus the sin-cos position buffer."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        D = config.action_hidden_size
        self.state_encoder = mlp3x_silu(config.state_dim, D)
        self.action_encoder = mlp3x_silu(config.action_dim, D)
        self.register_buffer("pos_embedding", sincos_1d(config.action_pos_embedding_rows, D))

    def forward(self, state, actions, registers) -> torch.Tensor:
        """(B, 14), (B, A, 14), (1, R, D) -> (B, 1 + A + R, D) tokens with positions added."""
        dtype = self.action_encoder[0].weight.dtype
        s = self.state_encoder(state.to(dtype))[:, None]  # (B, 1, D)
        a = self.action_encoder(actions.to(dtype))  # (B, A, D)
        x = torch.cat([s, a, registers.to(dtype).expand(a.shape[0], -1, -1)], dim=1)
        return x + self.pos_embedding[:, : x.shape[1]].to(dtype)


class ActionEncoder(nn.Module):
    """Pretrain-mode input encoder: action MLP plus positions (no state, no registers)."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        D = config.action_hidden_size
        self.action_encoder = mlp3x_silu(config.action_dim, D)
        self.register_buffer("pos_embedding", sincos_1d(config.action_pos_embedding_rows, D))

    def forward(self, state, actions, registers) -> torch.Tensor:
        """(B, A, 14) -> (B, A, D); ``state`` and ``registers`` must be None."""
        dtype = self.action_encoder[0].weight.dtype
        a = self.action_encoder(actions.to(dtype))
        return a + self.pos_embedding[:, : a.shape[1]].to(dtype)


class ActionExpertBlock(nn.Module):
    """Parameters of one action layer: AdaLN table, QKV into Wan heads, out-projection, FFN."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        D, N, Dh = config.action_hidden_size, config.num_heads, config.head_dim
        self.norm1 = nn.LayerNorm(D, eps=config.action_eps, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(D, eps=config.action_eps, elementwise_affine=False)
        self.modulation = nn.Parameter(torch.randn(1, 6, D) / D**0.5)
        # [q/k/v, head, in, head_dim]: q[b,t,n,:] = Σ_d x[b,t,d]·W[0,n,d,:]
        # (docs/checkpoint-format.md §3); std 1/sqrt(D·Dh) as the official
        # models/action_expert.py (ActionExpertBlock).
        self.wan_action_qkv = nn.Parameter(torch.randn(3, N, D, Dh) / (D * Dh) ** 0.5)
        # RMSNorm epsilon unverified in the official code; we use the expert's eps.
        self.wan_action_norm_q = nn.RMSNorm(N * Dh, eps=config.action_eps)
        self.wan_action_norm_k = nn.RMSNorm(N * Dh, eps=config.action_eps)
        self.wan_action_o = nn.Linear(N * Dh, D, bias=False)
        self.ffn = nn.Sequential(
            nn.Linear(D, config.action_ffn_dim),
            nn.GELU(approximate="tanh"),
            nn.Linear(config.action_ffn_dim, D),
        )

    def qkv(self, x_mod: torch.Tensor):
        """(B, La, D) modulated tokens -> q, k, v (B, La, N, Dh); RMSNorm on q, k; no RoPE."""
        w = self.wan_action_qkv
        q, k, v = torch.einsum("btd,knde->kbtne", x_mod.to(w.dtype), w).unbind(0)
        q = self.wan_action_norm_q(q.flatten(2)).unflatten(2, q.shape[2:])
        k = self.wan_action_norm_k(k.flatten(2)).unflatten(2, k.shape[2:])
        return q, k, v

    def out(self, o: torch.Tensor) -> torch.Tensor:
        """(B, La, N, Dh) attention output -> (B, La, D)."""
        return self.wan_action_o(o.flatten(2).to(self.wan_action_o.weight.dtype))


class ActionDecoder(nn.Module):
    """Final AdaLN (``modulation`` [1, 2, D]) and the zero-initialised ``action_head``."""

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        D = config.action_hidden_size
        self.norm = nn.LayerNorm(D, eps=config.action_eps, elementwise_affine=False)
        self.modulation = nn.Parameter(torch.randn(1, 2, D) / D**0.5)
        self.action_head = nn.Sequential(nn.Linear(D, config.action_dim))
        nn.init.zeros_(self.action_head[0].weight)
        nn.init.zeros_(self.action_head[0].bias)

    def forward(self, x: torch.Tensor, a_e: torch.Tensor) -> torch.Tensor:
        """(B, La, D), (B, D) -> (B, La, action_dim) float32 velocity for every token."""
        shift, scale = (self.modulation.float() + a_e[:, None].float()).unsqueeze(2).unbind(1)
        h = self.norm(x.float()) * (1 + scale) + shift
        return self.action_head(h.to(self.action_head[0].weight.dtype)).float()


class ActionExpert(nn.Module):
    """The Motus action expert (``action_expert.`` keys).

    Args:
        config: Motus config (hidden/FFN widths, layers, heads, chunk size, mode).
    """

    def __init__(self, config: MotusConfig) -> None:
        super().__init__()
        self.config = config
        D = config.action_hidden_size
        if config.has_state:
            self.input_encoder = StateActionEncoder(config)
        else:
            self.input_encoder = ActionEncoder(config)
        if config.num_registers:
            self.registers = nn.Parameter(torch.randn(1, config.num_registers, D) * 0.02)
        else:
            self.registers = None
        self.time_embedding = nn.Sequential(
            nn.Linear(config.freq_dim, D), nn.SiLU(), nn.Linear(D, D)
        )
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(D, 6 * D))
        self.blocks = nn.ModuleList(ActionExpertBlock(config) for _ in range(config.num_layers))
        self.decoder = ActionDecoder(config)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """The official fresh-training initialisation, in place.

        As ``ActionExpert.initialize_weights`` in the official models/action_expert.py: every
        ``nn.Linear`` xavier-uniform with zero bias, the output head zero, the time-embedding
        MLP's weights normal with std 0.02. The AdaLN tables (randn/sqrt(D)), the q/k/v into Wan
        heads (randn/sqrt(D·Dh)) and the registers (std 0.02) keep their construction values,
        as upstream.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        head = self.decoder.action_head[-1]
        nn.init.zeros_(head.weight)
        nn.init.zeros_(head.bias)
        for m in self.time_embedding.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)

    def embed(self, state: torch.Tensor | None, actions: torch.Tensor) -> torch.Tensor:
        """Input tokens (B, La, D) float32 from state (B, 14) (finetune) and actions (B, A, 14).

        Raises:
            ValueError: on shape mismatch or a missing/extra state.
        """
        cfg = self.config
        A = cfg.action_chunk_size
        if actions.ndim != 3 or actions.shape[1:] != (A, cfg.action_dim):
            raise ValueError(
                f"actions: expected (B, {A}, {cfg.action_dim}), got {tuple(actions.shape)}"
            )
        if cfg.has_state:
            if state is None or state.shape != (actions.shape[0], cfg.state_dim):
                got = None if state is None else tuple(state.shape)
                raise ValueError(
                    f"state: expected ({actions.shape[0]}, {cfg.state_dim}), got {got}"
                )
        elif state is not None:
            raise ValueError("state: pretrain-mode models take no state, got a tensor")
        return self.input_encoder(state, actions, self.registers).float()

    def time_embed(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) timesteps -> ``a_e`` (B, D) and its projection (B, 6, D), float32."""
        w = self.time_embedding[0].weight
        a_e = self.time_embedding(sinusoidal_embedding(t, self.config.freq_dim).to(w.dtype))
        proj = self.time_projection(a_e.to(self.time_projection[1].weight.dtype))
        return a_e.float(), proj.float().unflatten(1, (6, -1))

    def modulation(self, i: int, time_proj: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Block ``i`` terms a0..a5 (same roles as Wan's e0..e5), six (B, 1, D) float32."""
        table = self.blocks[i].modulation.float()
        return tuple((table + time_proj).unsqueeze(2).unbind(1))

    def pre_attention(self, i: int, x, shift, scale) -> torch.Tensor:
        """``LN(x)·(1+scale)+shift`` (float32)."""
        return self.blocks[i].norm1(x.float()) * (1 + scale) + shift

    def ffn(self, i: int, x, shift, scale, gate) -> torch.Tensor:
        """Gated FFN update (B, La, D) float32."""
        block = self.blocks[i]
        h = block.norm2(x.float()) * (1 + scale) + shift
        return block.ffn(h.to(block.ffn[0].weight.dtype)).float() * gate

    def decode(self, x: torch.Tensor, a_e: torch.Tensor) -> torch.Tensor:
        """Decoder on all tokens, then keep the action rows: (B, A, action_dim) float32."""
        start = int(self.config.has_state)
        return self.decoder(x, a_e)[:, start : start + self.config.action_chunk_size]
