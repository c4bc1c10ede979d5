"""Flow-matching noise for training and the Euler sampling schedule (docs/motus.md §2).

Convention (all modalities): ``x_σ = (1−σ)·x₀ + σ·ε``, target velocity ``v = ε − x₀``, network
timestep ``t = 1000·σ``; sampling integrates ``x ← x + v·(σ_next − σ)`` from σ = 1 to σ = 0.

* Training (docs/motus.md §2.1): one σ per sample and modality, drawn uniformly from a 1000-entry
  table ``σ_j = shift·s_j / (1 + (shift−1)·s_j)``, ``s_j = 1 − j/1000`` (shift 5; the official
  ``FlowMatchScheduler(shift=5, sigma_min=0, extra_one_step=True)``). Video and action σ are
  independent (UniDiffuser style).
* Sampling (docs/motus.md §2.2): unshifted ``linspace(1, 0, N+1)``, N = 10. The official code
  builds it in bf16, so its timestep inputs are exactly 1000, 900, …, 100 and its step sizes are
  −0.1016, −0.0977, … (they still sum to −1). ``bf16=True`` (the default, ``MotusConfig.
  bf16_schedule``) reproduces those values bit for bit; ``bf16=False`` uses the exact fp32 grid.
"""

from __future__ import annotations

import torch


def training_sigma_table(num_train_timesteps: int = 1000, shift: float = 5.0) -> torch.Tensor:
    """The shifted training σ table, (num_train_timesteps,) float32, σ_0 = 1 (docs/motus.md §2.1).

    Raises:
        ValueError: on a non-positive size or shift.
    """
    if num_train_timesteps <= 0 or shift <= 0:
        raise ValueError(
            f"training_sigma_table: expected positive size and shift, got "
            f"{num_train_timesteps}, {shift}"
        )
    s = 1.0 - torch.arange(num_train_timesteps, dtype=torch.float64) / num_train_timesteps
    return (shift * s / (1.0 + (shift - 1.0) * s)).float()


def sample_training_sigmas(
    batch: int,
    num_train_timesteps: int = 1000,
    shift: float = 5.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Draw one σ per sample uniformly from :func:`training_sigma_table`.

    Returns:
        (batch,) float32 on ``device``, σ ∈ [≈0.005, 1].
    """
    table = training_sigma_table(num_train_timesteps, shift)
    idx = torch.randint(0, num_train_timesteps, (batch,), generator=generator)
    return table[idx].to(device)


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``(1−σ)·x₀ + σ·ε`` with ``sigma`` (B,) broadcast over the trailing dimensions."""
    s = sigma.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1.0 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Flow-matching target ``ε − x₀``."""
    return noise - x0


class EulerSchedule:
    """Euler integration over ``linspace(1, 0, N+1)``, diffusers-style ``step``.

    Source: docs/motus.md §2.2.

    Args:
        num_steps: N ≥ 1 Euler steps (official: 10).
        bf16: round the grid through bf16 like the official code (see module docstring).

    Attributes:
        sigmas: (N+1,) float32, from 1 down to 0.
        timesteps: (N,) float32 network inputs ``1000·σ_i`` (bf16-rounded when ``bf16``).

    Raises:
        ValueError: if ``num_steps`` < 1.
    """

    def __init__(self, num_steps: int = 10, bf16: bool = True) -> None:
        if num_steps < 1:
            raise ValueError(f"num_steps: expected >= 1, got {num_steps}")
        self.num_steps = num_steps
        self.bf16 = bf16
        if bf16:
            s = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.bfloat16)
            self.sigmas = s.float()
            self.timesteps = (s[:-1] * 1000).float()
            self.dts = (s[1:] - s[:-1]).float()
        else:
            self.sigmas = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64).float()
            self.timesteps = self.sigmas[:-1] * 1000.0
            self.dts = self.sigmas[1:] - self.sigmas[:-1]

    def __len__(self) -> int:
        return self.num_steps

    def step(self, velocity: torch.Tensor, i: int, sample: torch.Tensor) -> torch.Tensor:
        """One Euler step ``sample + velocity·(σ_{i+1} − σ_i)`` (float32)."""
        return sample.float() + velocity.float() * float(self.dts[i])
