"""The latent-action VAE (paper §4.2, Fig. 3, eq. 2, Table 11).

A deep-compression autoencoder (diffusers ``AutoencoderDC``, DC-AE) maps an RGB flow image
(:mod:`motus_policy.latent_action.flow`) to a latent that is read as 4 tokens of 512 (full size):
the latent [C, h, w] is split into its 2 x 2 spatial quadrants, each flattened to ``C*h*w/4``
values (a linear "token projection" maps that to ``token_dim`` when the two differ). A lightweight
MLP encoder maps the concatenated 4 x ``token_dim`` features to a 14-D Gaussian (mean and
log-variance): the latent action, "roughly matching the scale of typical robot action spaces"
(§4.2). The decoder path runs back: latent action -> MLP -> 4 tokens -> DC-AE latent -> DC-AE
decoder -> flow image, so the flow is reconstructed *through* the 14-D bottleneck.

Loss (eq. 2): ``L = L_recon + lambda_a * ||a_real - a_pred||^2 + beta * L_KL`` with
``lambda_a = 1.0`` and ``beta = 1e-6`` (Table 11, "Latent Action VAE"); ``a_pred`` is the mean of
the latent action, and the alignment term is applied to labeled samples only (§4.2: "90 %
unlabeled data for self-supervised reconstruction with 10 % labeled trajectories for weak action
supervision"). Which action the label is (here: the scaled joint delta of the frame pair) is the
trainer's choice, :mod:`motus_policy.latent_action.trainer`.

Shapes: flow images float [B, 3, S, S] in [-1, 1]; tokens [B, 4, token_dim]; latent actions
[B, 14]; labels [B, 14] with a bool mask [B].
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch
from diffusers import AutoencoderDC
from safetensors.torch import load_file, save_file
from torch import nn

NUM_TOKENS = 4  # paper §4.2: "four 512-dimensional tokens"
CONFIG_FILE = "latent_action_vae.json"
WEIGHTS_FILE = "latent_action_vae.safetensors"


@dataclass(frozen=True)
class LatentActionVAEConfig:
    """Architecture and loss weights of :class:`LatentActionVAE` (:meth:`tiny`, :meth:`full`).

    Attributes:
        preset: name of the preset this was built from (informational).
        image_size_px: side S of the square flow image.
        latent_channels: DC-AE latent channels C.
        block_out_channels: DC-AE stage widths (encoder and decoder); S is downsampled by
            ``2 ** (len - 1)``.
        encoder_layers_per_block / decoder_layers_per_block: DC-AE blocks per stage.
        block_types: DC-AE block type per stage (``ResBlock`` or ``EfficientViTBlock``).
        attention_head_dim: DC-AE linear-attention head width (EfficientViT blocks).
        token_dim: width of each of the 4 tokens (512 in the paper).
        action_dim: latent-action size (14 in the paper, the dual-arm joint vector's size).
        mlp_hidden: hidden width of the MLP encoder and decoder.
        lambda_a: weight of the action-alignment term (Table 11: 1.0).
        beta: weight of the KL term (Table 11: 1e-6).
        dcae_path: optional local diffusers folder of a pretrained ``AutoencoderDC`` (the
            paper uses a pretrained DC-AE); its own config replaces the DC-AE fields.

    Raises:
        ValueError: non-positive sizes, mismatched per-stage tuples, S not divisible by the
            downsampling, an odd latent grid (no 2 x 2 quadrants), or negative loss weights.
    """

    preset: str = "tiny"
    image_size_px: int = 32
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (8, 16, 32)
    encoder_layers_per_block: tuple[int, ...] = (1, 1, 1)
    decoder_layers_per_block: tuple[int, ...] = (1, 1, 1)
    block_types: tuple[str, ...] = ("ResBlock",) * 3
    attention_head_dim: int = 8
    token_dim: int = 64
    action_dim: int = 14
    mlp_hidden: int = 128
    lambda_a: float = 1.0
    beta: float = 1e-6
    dcae_path: str | None = None

    def __post_init__(self) -> None:
        for name in ("block_out_channels", "encoder_layers_per_block", "decoder_layers_per_block",
                     "block_types"):  # fmt: skip
            object.__setattr__(self, name, tuple(getattr(self, name)))
        n = len(self.block_out_channels)
        for name in ("encoder_layers_per_block", "decoder_layers_per_block", "block_types"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"{name}: expected {n} entries (one per stage of block_out_channels), got "
                    f"{len(getattr(self, name))}"
                )
        ints = ("image_size_px", "latent_channels", "attention_head_dim", "token_dim",
                "action_dim", "mlp_hidden")  # fmt: skip
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        bad = [t for t in self.block_types if t not in ("ResBlock", "EfficientViTBlock")]
        if bad:
            raise ValueError(f"block_types: expected ResBlock or EfficientViTBlock, got {bad}")
        if self.image_size_px % self.downsample_factor:
            raise ValueError(
                f"image_size_px: expected a multiple of the DC-AE downsampling "
                f"{self.downsample_factor}, got {self.image_size_px}"
            )
        if self.latent_side % 2:
            raise ValueError(
                f"image_size_px: the latent grid {self.latent_side}x{self.latent_side} must be "
                "even to split into 2 x 2 token quadrants"
            )
        if self.lambda_a < 0 or self.beta < 0:
            raise ValueError(f"lambda_a/beta: expected >= 0, got {self.lambda_a}/{self.beta}")

    @property
    def downsample_factor(self) -> int:
        """Pixels per DC-AE latent cell: ``2 ** (stages - 1)``."""
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_side(self) -> int:
        """Side of the DC-AE latent grid."""
        return self.image_size_px // self.downsample_factor

    @property
    def quadrant_values(self) -> int:
        """Values of one latent quadrant: ``C * (h/2) * (w/2)``."""
        return self.latent_channels * (self.latent_side // 2) ** 2

    @classmethod
    def tiny(cls, **overrides: Any) -> LatentActionVAEConfig:
        """CPU preset: 32 x 32 flow images, 3-stage ResBlock DC-AE, 4 tokens of 64.

        f4, C = 4: latent 4 x 8 x 8 = 4 quadrants of 64 values; 14-D latent action.
        """
        return cls(**{"preset": "tiny", **overrides})

    @classmethod
    def full(cls, **overrides: Any) -> LatentActionVAEConfig:
        """Paper size (§4.2): 4 tokens of 512 from a DC-AE of the f32c32 shape; for GPUs.

        6 stages 128..1024 (3 ResBlock then 3 EfficientViT stages), C = 32, on 256 x 256 flow
        images -> latent 32 x 8 x 8 = 4 quadrants of 512 values exactly; 14-D latent action.
        """
        base = dict(
            preset="full",
            image_size_px=256,
            latent_channels=32,
            block_out_channels=(128, 256, 512, 512, 1024, 1024),
            encoder_layers_per_block=(2, 2, 2, 3, 3, 3),
            decoder_layers_per_block=(3, 3, 3, 3, 3, 3),
            block_types=("ResBlock",) * 3 + ("EfficientViTBlock",) * 3,
            attention_head_dim=32,
            token_dim=512,
            mlp_hidden=1024,
        )
        return cls(**{**base, **overrides})

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> LatentActionVAEConfig:
        """``tiny`` or ``full``. Raises ValueError for another name."""
        if name not in VAE_PRESETS:
            raise ValueError(f"preset: expected one of {VAE_PRESETS}, got {name!r}")
        return getattr(cls, name)(**overrides)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}  # fmt: skip


VAE_PRESETS = ("tiny", "full")


class LossTerms(NamedTuple):
    """Eq. 2 of the paper, each a scalar tensor: ``loss = recon + lambda_a*align + beta*kl``."""

    loss: torch.Tensor
    recon: torch.Tensor
    align: torch.Tensor
    kl: torch.Tensor
    n_labeled: int


class VAEOutput(NamedTuple):
    """``recon`` [B,3,S,S] in about [-1,1]; ``mean``, ``logvar``, ``z`` [B, action_dim]."""

    recon: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                         nn.Linear(hidden, d_out))  # fmt: skip


class LatentActionVAE(nn.Module):
    """DC-AE + 4-token MLP bottleneck to a 14-D latent action (see module docstring).

    Args:
        config: the architecture.

    Attributes:
        dcae: the diffusers ``AutoencoderDC``.
        token_in / token_out: quadrant values <-> ``token_dim`` (identity when equal, e.g. full).
        action_encoder: MLP 4*token_dim -> 2*action_dim (mean, log-variance); its last layer is
            the "action head" the alignment term trains.
        action_decoder: MLP action_dim -> 4*token_dim.
    """

    def __init__(
        self, config: LatentActionVAEConfig, dcae_config: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.config = c = config
        if dcae_config is not None:  # a saved folder: the DC-AE exactly as trained
            self.dcae = AutoencoderDC.from_config(dcae_config)
        elif c.dcae_path:
            self.dcae = AutoencoderDC.from_pretrained(c.dcae_path)
        else:
            self.dcae = AutoencoderDC(
                in_channels=3,
                latent_channels=c.latent_channels,
                attention_head_dim=c.attention_head_dim,
                encoder_block_types=c.block_types,
                decoder_block_types=c.block_types,
                encoder_block_out_channels=c.block_out_channels,
                decoder_block_out_channels=c.block_out_channels,
                encoder_layers_per_block=c.encoder_layers_per_block,
                decoder_layers_per_block=c.decoder_layers_per_block,
                encoder_qkv_multiscales=tuple(
                    (5,) if t == "EfficientViTBlock" else () for t in c.block_types
                ),
                decoder_qkv_multiscales=tuple(
                    (5,) if t == "EfficientViTBlock" else () for t in c.block_types
                ),
            )
        got = (self.dcae.config.latent_channels, len(self.dcae.config.encoder_block_out_channels))
        if got != (c.latent_channels, len(c.block_out_channels)):
            raise ValueError(
                f"dcae: expected latent_channels {c.latent_channels} and "
                f"{len(c.block_out_channels)} stages (the config), got {got[0]} and {got[1]}"
            )
        q = c.quadrant_values
        same = q == c.token_dim
        self.token_in = nn.Identity() if same else nn.Linear(q, c.token_dim)
        self.token_out = nn.Identity() if same else nn.Linear(c.token_dim, q)
        self.action_encoder = _mlp(NUM_TOKENS * c.token_dim, c.mlp_hidden, 2 * c.action_dim)
        self.action_decoder = _mlp(c.action_dim, c.mlp_hidden, NUM_TOKENS * c.token_dim)

    def _check(self, images: torch.Tensor) -> None:
        s = self.config.image_size_px
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ValueError(f"images: expected [B, 3, {s}, {s}], got {tuple(images.shape)}")

    def tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Flow images [B,3,S,S] in [-1,1] -> 4 tokens [B, 4, token_dim].

        Quadrant order: top-left, top-right, bottom-left, bottom-right.
        """
        self._check(images)
        lat = self.dcae.encode(images).latent  # [B, C, h, w]
        b, ch, h, w = lat.shape
        quads = lat.reshape(b, ch, 2, h // 2, 2, w // 2).permute(0, 2, 4, 1, 3, 5)
        return self.token_in(quads.reshape(b, NUM_TOKENS, -1))

    def untokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`tokens`' reshape: [B, 4, token_dim] -> DC-AE latent [B, C, h, w]."""
        c = self.config
        b, side = tokens.shape[0], c.latent_side
        quads = self.token_out(tokens).reshape(b, 2, 2, c.latent_channels, side // 2, side // 2)
        return quads.permute(0, 3, 1, 4, 2, 5).reshape(b, c.latent_channels, side, side)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Flow images [B,3,S,S] -> (mean, logvar) of the latent action, each [B, action_dim]."""
        stats = self.action_encoder(self.tokens(images).flatten(1))
        mean, logvar = stats.chunk(2, dim=-1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent actions [B, action_dim] -> reconstructed flow images [B, 3, S, S]."""
        if z.ndim != 2 or z.shape[1] != self.config.action_dim:
            raise ValueError(f"z: expected [B, {self.config.action_dim}], got {tuple(z.shape)}")
        tokens = self.action_decoder(z).reshape(z.shape[0], NUM_TOKENS, self.config.token_dim)
        return self.dcae.decode(self.untokens(tokens)).sample

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample ``z = mean + exp(logvar/2) * eps`` (the mean in eval mode), decode."""
        mean, logvar = self.encode(images)
        z = mean
        if self.training:
            eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            eps = eps.to(mean.device)  # drawn on the (CPU) generator's device
            z = mean + torch.exp(0.5 * logvar) * eps
        return VAEOutput(self.decode(z), mean, logvar, z)

    def loss(
        self,
        images: torch.Tensor,
        actions: torch.Tensor,
        labeled: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> LossTerms:
        """Eq. 2 on a batch.

        Args:
            images: flow images [B, 3, S, S] in [-1, 1].
            actions: a_real [B, action_dim]; rows of unlabeled samples are ignored (may be NaN).
            labeled: bool [B], True where ``actions`` holds a label.
            generator: CPU generator of the posterior sample's noise (None: global RNG).

        Returns:
            :class:`LossTerms`: ``recon`` = MSE over pixels; ``align`` = mean over labeled
            samples of ``||a_real - mean||^2`` (sum over the action dims; 0 with a zero gradient
            when no sample is labeled); ``kl`` = mean over samples of the
            KL(N(mean, exp(logvar)) || N(0, I)) summed over dims.

        Raises:
            ValueError: shapes do not match.
        """
        b, d = images.shape[0], self.config.action_dim
        if tuple(actions.shape) != (b, d) or tuple(labeled.shape) != (b,):
            raise ValueError(
                f"actions/labeled: expected [{b}, {d}] / [{b}], got {tuple(actions.shape)} / "
                f"{tuple(labeled.shape)}"
            )
        out = self(images, generator)
        recon = torch.mean((out.recon - images) ** 2)
        mask = labeled.to(torch.bool)
        n_lab = int(mask.sum())
        if n_lab:
            diff = out.mean[mask] - actions[mask].to(out.mean.dtype)
            align = (diff**2).sum(dim=-1).mean()
        else:  # in the graph with a zero gradient: every parameter still gets a .grad
            align = (out.mean * 0.0).sum()
        kl = 0.5 * (out.mean**2 + out.logvar.exp() - 1.0 - out.logvar).sum(dim=-1).mean()
        total = recon + self.config.lambda_a * align + self.config.beta * kl
        return LossTerms(total, recon, align, kl, n_lab)

    def action_head(self) -> nn.Linear:
        """The last layer of :attr:`action_encoder` (outputs mean and log-variance)."""
        return self.action_encoder[-1]

    # --- folders -------------------------------------------------------------------------------
    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write ``latent_action_vae.json`` (config + ``extra``) and ``.safetensors`` weights."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        cfg = self.config.to_dict()
        cfg["dcae_path"] = None  # the DC-AE weights are in this folder now
        cfg["dcae_config"] = dict(self.dcae.config)
        (out / CONFIG_FILE).write_text(json.dumps({"vae": cfg, **(extra or {})}, indent=1))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(out / WEIGHTS_FILE))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> tuple[LatentActionVAE, dict[str, Any]]:
        """Read a :meth:`save` folder: ``(model in eval mode, the extra entries)``.

        Raises:
            FileNotFoundError: the folder lacks the config or weights file (named).
        """
        d = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(
                    f"{d}: no {name} (expected a folder written by "
                    "python -m motus_policy.cli.train_latent_action)"
                )
        data = json.loads((d / CONFIG_FILE).read_text())
        cfg = dict(data.pop("vae"))
        dcae_config = cfg.pop("dcae_config", None)
        model = cls(LatentActionVAEConfig(**cfg), dcae_config)
        model.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
        return model.eval(), data
