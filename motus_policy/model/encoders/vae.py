"""Wan2.2 VAE wrapper with Motus's per-channel latent normalisation (docs/motus.md §3.3).

The network is diffusers' :class:`~diffusers.AutoencoderKLWan` with the Wan2.2 settings
(z = 48, 2x2 patchify, 16x spatial and 4x causal temporal compression). Motus feeds it RGB in
[-1, 1] (``x * 2 - 1`` from [0, 1]), keeps the posterior **mean** and normalises it per channel,
``z = (mu - mean_c) / std_c``, with the 48 mean/std values of docs/checkpoint-format.md §6.
Decoding inverts the normalisation; diffusers clamps the decoded pixels to [-1, 1], which we map
back to [0, 1]. Motus keeps the VAE in fp32 (docs/motus.md §3.3).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from diffusers import AutoencoderKLWan
from torch import nn

# docs/checkpoint-format.md §6 (channel order 0..47); identical to the Wan2.2-TI2V-5B vae config.
WAN22_LATENTS_MEAN: tuple[float, ...] = (
    -0.2289, -0.0052, -0.1323, -0.2339, -0.2799, 0.0174, 0.1838, 0.1557, -0.1382, 0.0542, 0.2813,
    0.0891, 0.1570, -0.0098, 0.0375, -0.1825, -0.2246, -0.1207, -0.0698, 0.5109, 0.2665, -0.2108,
    -0.2158, 0.2502, -0.2055, -0.0322, 0.1109, 0.1567, -0.0729, 0.0899, -0.2799, -0.1230, -0.0313,
    -0.1649, 0.0117, 0.0723, -0.2839, -0.2083, -0.0520, 0.3748, 0.0152, 0.1957, 0.1433, -0.2944,
    0.3573, -0.0548, -0.1681, -0.0667,
)  # fmt: skip
WAN22_LATENTS_STD: tuple[float, ...] = (
    0.4765, 1.0364, 0.4514, 1.1677, 0.5313, 0.4990, 0.4818, 0.5013, 0.8158, 1.0344, 0.5894, 1.0901,
    0.6885, 0.6165, 0.8454, 0.4978, 0.5759, 0.3523, 0.7135, 0.6804, 0.5833, 1.4146, 0.8986, 0.5659,
    0.7069, 0.5338, 0.4889, 0.4917, 0.4069, 0.4999, 0.6866, 0.4093, 0.5709, 0.6065, 0.6415, 0.4944,
    0.5726, 1.2042, 0.5458, 1.6887, 0.3971, 1.0600, 0.3943, 0.5537, 0.5444, 0.4089, 0.7468, 0.7744,
)  # fmt: skip


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of the Wan2.2 VAE (diffusers ``AutoencoderKLWan`` arguments).

    Defaults are the full-size Wan2.2-TI2V-5B VAE (docs/platform.md §6, ≈0.7 B parameters);
    :meth:`tiny` is the 3.6 M-parameter test variant with the same compression factors.

    Attributes:
        base_dim: encoder width (160 full size).
        decoder_base_dim: decoder width (256 full size).
        z_dim: latent channels (48).
        dim_mult: per-level width multipliers (4 levels -> 3 downsamplings + 2x2 patchify = 16x).
        num_res_blocks: residual blocks per encoder level (decoder uses one more).
        temperal_downsample: per-level temporal downsampling (diffusers' spelling).
        latents_mean: per-channel mean of the posterior mean, length ``z_dim``.
        latents_std: per-channel std, length ``z_dim``, all > 0.
    """

    base_dim: int = 160
    decoder_base_dim: int = 256
    z_dim: int = 48
    dim_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2
    temperal_downsample: tuple[bool, ...] = (False, True, True)
    latents_mean: tuple[float, ...] = field(default=WAN22_LATENTS_MEAN)
    latents_std: tuple[float, ...] = field(default=WAN22_LATENTS_STD)

    def __post_init__(self) -> None:
        for name in ("base_dim", "decoder_base_dim", "z_dim", "num_res_blocks"):
            if int(getattr(self, name)) <= 0:
                raise ValueError(f"VAEConfig.{name}: expected > 0, got {getattr(self, name)}")
        if len(self.dim_mult) != len(self.temperal_downsample) + 1:
            raise ValueError(
                "VAEConfig.temperal_downsample: expected len(dim_mult) - 1 = "
                f"{len(self.dim_mult) - 1} entries, got {len(self.temperal_downsample)}"
            )
        if len(self.latents_mean) != self.z_dim or len(self.latents_std) != self.z_dim:
            raise ValueError(
                f"VAEConfig.latents_mean/std: expected {self.z_dim} values each, got "
                f"{len(self.latents_mean)} / {len(self.latents_std)}"
            )
        if min(self.latents_std) <= 0:
            raise ValueError(f"VAEConfig.latents_std: expected all > 0, got {self.latents_std}")
        # Normalise list inputs (e.g. from JSON) to tuples so the config stays hashable.
        for name in ("dim_mult", "temperal_downsample", "latents_mean", "latents_std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def spatial_factor(self) -> int:
        """Pixels per latent cell along H and W: 2 (patchify) * 2^(levels - 1) = 16."""
        return 2 * 2 ** (len(self.dim_mult) - 1)

    @property
    def temporal_factor(self) -> int:
        """Frames per latent frame after the first one (4 for Wan2.2)."""
        return 2 ** sum(bool(t) for t in self.temperal_downsample)

    @classmethod
    def tiny(cls, spatial_factor: int = 16) -> VAEConfig:
        """Tiny random-init variant known to work with diffusers 0.42.1 (docs/platform.md §6 (a)).

        Args:
            spatial_factor: 16 (Wan2.2: 3 downsampling levels + 2x2 patchify) or 8 (one level
                fewer; both keep the 4x temporal compression).

        Raises:
            ValueError: another factor.
        """
        if spatial_factor not in (8, 16):
            raise ValueError(
                f"VAEConfig.tiny: spatial_factor must be 8 or 16, got {spatial_factor}"
            )
        levels = {16: ((1, 2, 2, 2), (False, True, True)), 8: ((1, 2, 2), (True, True))}
        dim_mult, temporal = levels[spatial_factor]
        return cls(
            base_dim=32,
            decoder_base_dim=32,
            dim_mult=dim_mult,
            temperal_downsample=temporal,
            num_res_blocks=1,
            latents_mean=WAN22_LATENTS_MEAN,
            latents_std=WAN22_LATENTS_STD,
        )

    def to_dict(self) -> dict:
        """JSON-serialisable dict (inverse: ``VAEConfig(**d)``)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def diffusers_kwargs(self) -> dict:
        """Arguments for ``AutoencoderKLWan(**kwargs)`` (Wan2.2: residual, patch 2, 12 ch)."""
        return {
            "base_dim": self.base_dim,
            "decoder_base_dim": self.decoder_base_dim,
            "z_dim": self.z_dim,
            "dim_mult": list(self.dim_mult),
            "num_res_blocks": self.num_res_blocks,
            "attn_scales": [],
            "temperal_downsample": list(self.temperal_downsample),
            "dropout": 0.0,
            "is_residual": True,
            "in_channels": 12,
            "out_channels": 12,
            "patch_size": 2,
            "scale_factor_spatial": self.spatial_factor,
            "scale_factor_temporal": self.temporal_factor,
            "latents_mean": list(self.latents_mean),
            "latents_std": list(self.latents_std),
        }


class MotusVAE(nn.Module):
    """Wan2.2 VAE with Motus's pixel range and latent normalisation.

    Thread-safety: none; call from the inference thread only (diffusers keeps a causal-conv
    cache on the module during a call).

    Args:
        config: architecture and latent statistics.
        vae: an existing ``AutoencoderKLWan`` (e.g. with converted weights); a random-init one
            is built from ``config`` when omitted.
    """

    def __init__(self, config: VAEConfig, vae: AutoencoderKLWan | None = None) -> None:
        super().__init__()
        self.config = config
        self.vae = vae if vae is not None else AutoencoderKLWan(**config.diffusers_kwargs())
        self.register_buffer(
            "latents_mean",
            torch.tensor(config.latents_mean, dtype=torch.float32).view(-1, 1, 1, 1),
        )
        self.register_buffer(
            "latents_std", torch.tensor(config.latents_std, dtype=torch.float32).view(-1, 1, 1, 1)
        )

    def _check_pixels(self, pixels: torch.Tensor) -> None:
        f = self.config.spatial_factor
        if pixels.ndim != 5 or pixels.shape[1] != 3:
            raise ValueError(f"pixels: expected (B, 3, F, H, W), got {tuple(pixels.shape)}")
        if pixels.shape[3] % f or pixels.shape[4] % f:
            raise ValueError(
                f"pixels: H and W must be multiples of {f}, got {tuple(pixels.shape[3:])}"
            )
        if (pixels.shape[2] - 1) % self.config.temporal_factor:
            raise ValueError(
                f"pixels: F must be 1 + {self.config.temporal_factor}k, got {pixels.shape[2]}"
            )

    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        """``(mu - mean_c) / std_c`` for latents ``(B, z, T, h, w)``."""
        return (mu - self.latents_mean.to(mu)) / self.latents_std.to(mu)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: ``z * std_c + mean_c``."""
        return z * self.latents_std.to(z) + self.latents_mean.to(z)

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode frames to normalised latents.

        Args:
            pixels: float (B, 3, F, H, W) RGB in [0, 1]; F = 1 + 4k; H, W multiples of 16.

        Returns:
            float32 (B, 48, 1 + (F - 1) // 4, H // 16, W // 16): normalised posterior mean.

        Raises:
            ValueError: wrong shape.
        """
        self._check_pixels(pixels)
        dtype = next(self.vae.parameters()).dtype
        x = pixels.to(dtype) * 2.0 - 1.0
        mu = self.vae.encode(x).latent_dist.mean
        return self.normalize(mu.float())

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decode normalised latents to frames.

        Args:
            z: float (B, 48, T, h, w) normalised latents.

        Returns:
            float32 (B, 3, 1 + 4 (T - 1), 16 h, 16 w) RGB in [0, 1] (clamped).

        Raises:
            ValueError: wrong channel count.
        """
        if z.ndim != 5 or z.shape[1] != self.config.z_dim:
            raise ValueError(
                f"z: expected (B, {self.config.z_dim}, T, h, w), got {tuple(z.shape)}"
            )
        dtype = next(self.vae.parameters()).dtype
        x = self.vae.decode(self.denormalize(z.float()).to(dtype)).sample
        return ((x.float() + 1.0) * 0.5).clamp(0.0, 1.0)
