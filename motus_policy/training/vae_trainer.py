"""Train the tiny Wan2.2-style VAE as an autoencoder on recorded episodes.

The tiny presets ship a VAE built here; with random weights its latents are fixed random
features and its decoded "imagined" frames are noise. This trainer fits the same diffusers
``AutoencoderKLWan`` (:meth:`VAEConfig.tiny`) to the frames the policy will see: T-layout
composites resized with :func:`resize_pad` to the model's H x W, in clips of ``1 + 4k`` frames
spaced like the model's video frames (``g * r`` recorded frames apart, docs/motus.md §3.2), so both
the first-frame path and the 4x causal temporal path of the encoder are trained.

Loss per clip (x, x_hat in [-1, 1]):

* a foreground-weighted L1, ``sum(w * |x_hat - x|) / sum(w)`` with ``w = 1 + lambda * fg``. ``fg``
  marks pixels that differ from the dataset's per-pixel median frame by more than a threshold:
  the static table and walls are the median, the arms and the (few-pixel) object are not. An
  unweighted loss lets a small autoencoder blur a 2 x 2 px cube away, and the policy needs it.
* ``kl_weight`` times the KL of the diagonal-Gaussian posterior to N(0, I), which keeps the
  latents bounded (the usual VAE recipe; Wan2.2 is trained with a small KL term as well).

Decoding uses the posterior mean, as Motus does (docs/motus.md §3.3). Afterwards the per-channel
mean and std of the posterior mean are measured over training clips and stored as the VAE's
``latents_mean`` / ``latents_std`` (the normalisation of docs/motus.md §3.3), so normalised latents
are about N(0, 1) like the full model's.

Threads: everything runs in the caller's thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
from motus_recorder.composite import resize_pad
from motus_recorder.dataset import complete_episodes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VAETrainConfig:
    """Settings of :func:`train_vae`.

    Each field's ``metadata["description"]`` is its help text (``python -m
    motus_policy.cli.train_vae --help`` is generated from it).

    Raises:
        ValueError: a field out of range (the message names it).
    """

    data_roots: tuple[str, ...] = field(
        metadata={"description": "dataset roots (recorder layout); every complete episode is used"}
    )
    out_dir: str = field(
        default="runs/vae",
        metadata={"description": "run folder (vae_summary.json, reconstructions.png, encoders/)"},
    )
    image_height: int = field(
        default=128, metadata={"description": "model input height [px] (tiny presets: 128)"}
    )
    image_width: int = field(
        default=96, metadata={"description": "model input width [px] (tiny presets: 96)"}
    )
    spatial_factor: int = field(
        default=16,
        metadata={"description": "VAE spatial compression (16 for tiny, 8 for tiny_f8)"},
    )
    clip_frames: int = field(
        default=5,
        metadata={
            "description": "frames per training clip, 1 + 4k (5: the first frame + one group)"
        },
    )
    frame_stride: int = field(
        default=6,
        metadata={
            "description": "recorded frames between clip frames (g * r = 6 for the tiny presets)"
        },
    )
    batch_size: int = field(default=8, metadata={"description": "clips per step"})
    max_steps: int = field(default=800, metadata={"description": "optimiser steps"})
    lr: float = field(
        default=1e-3,
        metadata={
            "description": "peak AdamW learning rate (linear warm-up, cosine decay to 10 %)"
        },
    )
    warmup_steps: int = field(default=30, metadata={"description": "warm-up length [steps]"})
    kl_weight: float = field(
        default=1e-4,
        metadata={
            "description": "weight of the KL term (per latent element, relative to the "
            "per-pixel L1)"
        },
    )
    foreground_weight: float = field(
        default=10.0,
        metadata={
            "description": "extra L1 weight lambda on pixels that differ from the median frame "
            "(0 = plain L1)"
        },
    )
    foreground_threshold: float = field(
        default=0.08,
        metadata={
            "description": "max-over-channels |x - median| in [0, 1] above which a pixel is "
            "foreground"
        },
    )
    val_episodes: int = field(
        default=2,
        metadata={"description": "last episodes held out for the reported reconstruction error"},
    )
    stats_clips: int = field(
        default=256, metadata={"description": "clips used to measure the latent mean / std"}
    )
    seed: int = field(
        default=0,
        metadata={
            "description": "RNG seed (clip sampling and initialisation); also seeds the tiny "
            "T5 / Qwen3-VL saved with the encoders"
        },
    )

    def __post_init__(self) -> None:
        if not self.data_roots:
            raise ValueError("VAETrainConfig.data_roots: expected at least one root")
        if self.spatial_factor not in (8, 16):
            raise ValueError(f"spatial_factor: expected 8 or 16, got {self.spatial_factor}")
        for name in ("image_height", "image_width"):
            if getattr(self, name) % self.spatial_factor:
                raise ValueError(
                    f"{name}: expected a multiple of {self.spatial_factor}, "
                    f"got {getattr(self, name)}"
                )
        if self.clip_frames < 1 or (self.clip_frames - 1) % 4:
            raise ValueError(f"clip_frames: expected 1 + 4k, got {self.clip_frames}")
        for name in ("frame_stride", "batch_size", "max_steps", "stats_clips"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("lr", "foreground_threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        for name in ("kl_weight", "foreground_weight", "warmup_steps", "val_episodes"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        object.__setattr__(self, "data_roots", tuple(str(r) for r in self.data_roots))


def load_frames(
    roots: tuple[str, ...], hw: tuple[int, int], progress: bool = True
) -> list[np.ndarray]:
    """Decode every complete episode's video, resized with :func:`resize_pad`.

    Returns:
        One uint8 (T, H, W, 3) array per episode, in ``find_tasks`` / episode-index order.

    Raises:
        ValueError: no complete episode under ``roots``.
    """
    episodes = complete_episodes(roots)
    if not episodes:
        raise ValueError(f"no complete episodes under {list(roots)}")
    out = []
    for task, i in tqdm(episodes, desc="decode", unit="ep", disable=not progress):
        raw = task.read_episode(i, embedding=False).frames()
        out.append(np.stack([resize_pad(f, hw) for f in raw]))
    return out


class ClipSampler:
    """Random clips of ``clip_frames`` frames, ``frame_stride`` apart (clamped at the end).

    Args:
        episodes: uint8 (T, H, W, 3) per episode.
        clip_frames / frame_stride: as in :class:`VAETrainConfig`.
        seed: numpy RNG seed.
    """

    def __init__(self, episodes: list[np.ndarray], clip_frames: int, frame_stride: int, seed: int):
        if not episodes:
            raise ValueError("ClipSampler: expected at least one episode")
        self.episodes, self.n, self.stride = episodes, clip_frames, frame_stride
        self.rng = np.random.default_rng(seed)

    def clip(self, e: int, start: int) -> torch.Tensor:
        """Clip of episode ``e`` from frame ``start``: float (3, F, H, W) in [-1, 1]."""
        frames = self.episodes[e]
        idx = [min(start + k * self.stride, len(frames) - 1) for k in range(self.n)]
        x = torch.from_numpy(frames[idx]).permute(3, 0, 1, 2).float()  # (F,H,W,3) -> (3,F,H,W)
        return x / 127.5 - 1.0

    def batch(self, size: int) -> torch.Tensor:
        """Float (size, 3, F, H, W) in [-1, 1], episodes and starts drawn uniformly."""
        es = self.rng.integers(0, len(self.episodes), size)
        return torch.stack(
            [self.clip(e, int(self.rng.integers(0, len(self.episodes[e])))) for e in es]
        )


def median_frame(episodes: list[np.ndarray], n: int = 256, seed: int = 0) -> torch.Tensor:
    """Per-pixel median of ``n`` random frames: float (3, H, W) in [-1, 1] (the static scene)."""
    rng = np.random.default_rng(seed)
    picks = [episodes[e][rng.integers(0, len(episodes[e]))]
             for e in rng.integers(0, len(episodes), n)]  # fmt: skip
    med = np.median(np.stack(picks), axis=0)  # (H, W, 3)
    return torch.from_numpy(med).permute(2, 0, 1).float() / 127.5 - 1.0


def foreground_weights(x: torch.Tensor, background: torch.Tensor, cfg: VAETrainConfig):
    """``1 + lambda * fg`` for clips (B, 3, F, H, W) in [-1, 1] -> (B, 1, F, H, W)."""
    diff = (x - background[None, :, None]).abs().amax(dim=1, keepdim=True) / 2.0  # [0, 1] units
    return 1.0 + cfg.foreground_weight * (diff > cfg.foreground_threshold).float()


def clip_loss(vae, x: torch.Tensor, background: torch.Tensor, cfg: VAETrainConfig):
    """(total, weighted L1, KL per element) for clips x (B, 3, F, H, W) in [-1, 1]."""
    post = vae.encode(x).latent_dist
    rec = vae.decode(post.mean).sample  # (B, 3, F, H, W)
    w = foreground_weights(x, background, cfg)
    l1 = (w * (rec - x).abs()).sum() / (w.sum() * 3)
    kl = 0.5 * (post.mean.pow(2) + post.var - 1.0 - post.logvar).mean()
    return l1 + cfg.kl_weight * kl, l1, kl


def lr_at(step: int, cfg: VAETrainConfig) -> float:
    """Linear warm-up to ``lr``, then cosine decay to 10 % at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    p = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


@torch.no_grad()
def latent_stats(vae, sampler: ClipSampler, n: int, batch: int) -> tuple[list, list]:
    """Per-channel mean / std of the posterior mean over ``n`` random clips."""
    total, sq, count = None, None, 0
    for k in range(0, n, batch):
        mu = vae.encode(sampler.batch(min(batch, n - k))).latent_dist.mean  # (B, z, T, h, w)
        flat = mu.double().transpose(0, 1).reshape(mu.shape[1], -1)  # (z, B*T*h*w)
        total = flat.sum(1) if total is None else total + flat.sum(1)
        sq = flat.pow(2).sum(1) if sq is None else sq + flat.pow(2).sum(1)
        count += flat.shape[1]
    mean = total / count
    std = (sq / count - mean.pow(2)).clamp_min(1e-8).sqrt()
    return [round(float(v), 6) for v in mean], [round(float(v), 6) for v in std]


@torch.no_grad()
def evaluate(vae, sampler: ClipSampler, background, cfg: VAETrainConfig) -> dict:
    """Reconstruction error on clips starting at every 24th frame of ``sampler``'s episodes.

    Returns:
        ``{"l1": mean |x_hat - x|, "psnr_db": mean per-clip PSNR, "foreground_l1": mean
        |x_hat - x| on foreground pixels (None if there are none)}``, pixels in [0, 1] units.
    """
    l1s, psnrs, fg_l1s = [], [], []
    for e in range(len(sampler.episodes)):
        for start in range(0, len(sampler.episodes[e]), 24):
            x = sampler.clip(e, start)[None]
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
            err = (rec - x).abs() / 2.0  # [0, 1] units
            fg = foreground_weights(x, background, cfg) > 1.0
            l1s.append(float(err.mean()))
            psnrs.append(float(-10 * torch.log10(err.pow(2).mean().clamp_min(1e-10))))
            if fg.any():
                fg_l1s.append(float(err.mean(1, keepdim=True)[fg].mean()))
    return {"l1": float(np.mean(l1s)), "psnr_db": float(np.mean(psnrs)),
            "foreground_l1": float(np.mean(fg_l1s)) if fg_l1s else None}  # fmt: skip


def save_reconstructions(vae, sampler: ClipSampler, path: Path, n: int = 4) -> Path:
    """PNG grid: first frame and last clip frame of ``n`` held-out clips, input over output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2 * n, figsize=(2.0 * 2 * n, 5.2))
    for j in range(n):
        e = j % len(sampler.episodes)
        start = (j * 37) % max(1, len(sampler.episodes[e]) - 1)
        x = sampler.clip(e, start)[None]
        with torch.no_grad():
            rec = vae.decode(vae.encode(x).latent_dist.mean).sample.clamp(-1, 1)
        for k, f in enumerate((0, x.shape[2] - 1)):
            for row, img in enumerate((x, rec)):
                ax = axes[row, 2 * j + k]
                ax.imshow(((img[0, :, f].permute(1, 2, 0) + 1) / 2).numpy())
                ax.set_axis_off()
                ax.set_title(
                    f"{'input' if row == 0 else 'decoded'} ep{e} f{start}+{f}", fontsize=7
                )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_encoders(vae: MotusVAE, preset, seed: int, directory: str | Path) -> Path:
    """Write an encoders folder for ``python -m motus_policy.cli.train --encoders``.

    A ``save_pretrained`` folder holding ``vae``, the tiny T5 and Qwen3-VL of
    ``build_tiny_encoders(seed)`` (the weights a tiny run without ``--encoders`` gets) and a
    fresh ``MotusModel(preset)``, which ``--encoders`` ignores.

    Args:
        vae: the trained VAE.
        preset: the tiny ``MotusConfig`` the encoders are for (text / VLM widths).
        seed: seed of the tiny T5 / Qwen3-VL and of the placeholder network.
        directory: output folder.

    Returns:
        The folder written.
    """
    from motus_policy.model.encoders.tiny import build_tiny_encoders
    from motus_policy.model.modeling_motus import MotusModel
    from motus_policy.model.policy import MotusPolicy, PolicyConfig

    _, text, vlm = build_tiny_encoders(
        seed=seed,
        text_dim=preset.text_dim,
        vlm_dim=preset.vlm_hidden_size,
        context_len=preset.text_len,
        vae_config=vae.config,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MotusModel(preset)
    return MotusPolicy(model, vae, text, vlm, None, PolicyConfig()).save_pretrained(directory)


def train_vae(cfg: VAETrainConfig, progress: bool = True) -> tuple[MotusVAE, dict]:
    """Fit the tiny VAE to the recorded frames.

    Args:
        cfg: settings.
        progress: show tqdm bars.

    Returns:
        ``(vae, summary)``: a frozen :class:`MotusVAE` whose config holds the measured latent
        mean / std, and a JSON-able summary (losses, held-out reconstruction error, timing).
        ``reconstructions.png`` and ``vae_summary.json`` are written to ``cfg.out_dir``.

    Raises:
        ValueError: no episodes, or fewer than ``val_episodes + 1`` episodes.
        FloatingPointError: a step's loss is NaN or infinite (nothing is written).
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hw = (cfg.image_height, cfg.image_width)
    episodes = load_frames(cfg.data_roots, hw, progress)
    if len(episodes) <= cfg.val_episodes:
        raise ValueError(
            f"expected more than val_episodes={cfg.val_episodes} episodes, got {len(episodes)}"
        )
    split = len(episodes) - cfg.val_episodes
    train = ClipSampler(episodes[:split], cfg.clip_frames, cfg.frame_stride, cfg.seed)
    val = ClipSampler(episodes[split:] or episodes[:1], cfg.clip_frames, cfg.frame_stride, 1)
    background = median_frame(episodes[:split], seed=cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        base = VAEConfig.tiny(cfg.spatial_factor)
        net = MotusVAE(base).vae.float().train().requires_grad_(True)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=0.0)
    history, t0 = [], time.perf_counter()
    bar = tqdm(range(cfg.max_steps), desc="vae", unit="step", disable=not progress)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss, l1, kl = clip_loss(net, train.batch(cfg.batch_size), background, cfg)
        l1, kl = l1.item(), kl.item()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"vae step {step}: non-finite loss {float(loss)}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        history.append((step, l1, kl))
        bar.set_postfix(l1=f"{l1:.4f}", kl=f"{kl:.2f}")
    train_s = time.perf_counter() - t0
    net.eval().requires_grad_(False)
    mean, std = latent_stats(net, train, cfg.stats_clips, cfg.batch_size)
    vae = MotusVAE(
        dataclasses.replace(base, latents_mean=tuple(mean), latents_std=tuple(std)), net
    )
    held_out = evaluate(net, val, background, cfg)
    save_reconstructions(net, val, out / "reconstructions.png")
    summary = {
        "config": {**dataclasses.asdict(cfg), "data_roots": list(cfg.data_roots)},
        "episodes": {"train": split, "held_out": len(episodes) - split},
        "frames": int(sum(len(e) for e in episodes)),
        "train_s": round(train_s, 1),
        "final_train_l1": float(np.mean([h[1] for h in history[-20:]])),
        "held_out": held_out,
        "loss_every_50": [h for h in history if h[0] % 50 == 0],
    }
    (out / "vae_summary.json").write_text(json.dumps(summary, indent=2))
    log.info("vae: %d steps in %.0f s, held-out %s", cfg.max_steps, train_s, held_out)
    return vae, summary
