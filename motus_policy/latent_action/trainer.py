"""Train the latent-action VAE on episodes: flow images, 90 % unlabeled + 10 % labeled batches.

Data (paper §4.2): every consecutive frame pair of every video episode under the roots gives one
flow image (:class:`~motus_policy.latent_action.flow.FlowImages`, at the VAE's S x S). Pairs of
*labeled* episodes (those with ``qpos/<i>.pt``, the first ``labeled_episodes`` of them) also carry
an action label: the joint delta ``qpos[t+1] - qpos[t]`` divided by its per-dimension standard
deviation over the labeled pairs (``action_scale``, saved with the model), so the 14 latent
dimensions are aligned with unit-scale joint motions. All other pairs are unlabeled.

Batches mix the two pools (:class:`MixedSampler`): each sample is labeled with probability
``labeled_fraction`` (0.1: the paper's 90 % unlabeled / 10 % labeled), and the alignment term of
eq. 2 sees only those (:meth:`LatentActionVAE.loss`).

Outputs in ``out_dir``: the model folder (``latent_action_vae.json`` with the VAE config, the flow
settings and ``action_scale``; ``latent_action_vae.safetensors``), ``train_log.jsonl`` (one line
per step), ``summary.json`` and ``reconstructions.png`` (flow images vs their reconstruction
through the 14-D latent action). Threads: everything runs in the caller's thread.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from motus_policy.latent_action.flow import FLOW_BACKENDS, FlowConfig, FlowImages
from motus_policy.latent_action.labels import images_to_tensor
from motus_policy.latent_action.layout import video_episodes
from motus_policy.latent_action.vae import VAE_PRESETS, LatentActionVAE, LatentActionVAEConfig
from motus_recorder.dataset import TaskFolder, decode_video

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatentActionTrainConfig:
    """Settings of :func:`train_latent_action_vae` (``metadata["description"]`` = CLI help)."""

    data_roots: tuple[str, ...] = field(
        default=(), metadata={"description": "dataset root(s); every videos/<i>.mp4 is used"}
    )
    out_dir: str = field(
        default="runs/latent_action_vae",
        metadata={"description": "output folder (the model folder label-latent reads)"},
    )
    preset: str = field(
        default="tiny",
        metadata={
            "description": "VAE size: tiny (CPU) or full (paper, GPU)",
            "choices": VAE_PRESETS,
        },  # fmt: skip
    )
    max_steps: int = field(default=500, metadata={"description": "optimiser steps"})
    batch_size: int = field(default=32, metadata={"description": "flow images per step"})
    lr: float = field(default=1e-3, metadata={"description": "AdamW learning rate (constant)"})
    weight_decay: float = field(default=0.0, metadata={"description": "AdamW weight decay"})
    labeled_fraction: float = field(
        default=0.1,
        metadata={
            "description": "probability a sample comes from the labeled pool (paper §4.2: 10 %)"
        },  # fmt: skip
    )
    labeled_episodes: int = field(
        default=-1,
        metadata={
            "description": "episodes with qpos used as labeled (the first N in dataset "
            "order; -1 = all with qpos, 0 = none); the others are unlabeled"
        },  # fmt: skip
    )
    max_pairs_per_episode: int = field(
        default=0,
        metadata={"description": "frame pairs kept per episode, evenly spaced (0 = all)"},
    )
    lambda_a: float | None = field(
        default=None, metadata={"description": "alignment weight (None: preset's 1.0)"}
    )
    beta: float | None = field(
        default=None, metadata={"description": "KL weight (None: preset's 1e-6)"}
    )
    flow_backend: str = field(
        default="dis",
        metadata={"description": "flow estimator", "choices": FLOW_BACKENDS},
    )
    raft_weights: str | None = field(
        default=None, metadata={"description": "local torchvision RAFT .pth (raft backend)"}
    )
    flow_size_px: int = field(
        default=0,
        metadata={"description": "side of the square frames flow is estimated on, px (0 = "
                  "twice the VAE image size); the flow image is then resized to the VAE's"},
    )  # fmt: skip
    max_magnitude_px: float = field(
        default=4.0,
        metadata={
            "description": "flow magnitude at full colour saturation, px at "
            "flow_size_px (a robot arm moves a few px per frame at 64 px)"
        },  # fmt: skip
    )
    seed: int = field(default=0, metadata={"description": "init, sampling and noise seed"})
    log_every: int = field(default=10, metadata={"description": "steps between log lines"})
    device: str = field(default="cpu", metadata={"description": "torch device"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_roots", tuple(str(r) for r in self.data_roots))
        if not self.data_roots:
            raise ValueError("data_roots: expected at least one dataset root, got none")
        if self.flow_size_px < 0:
            raise ValueError(f"flow_size_px: expected >= 0, got {self.flow_size_px}")
        for name in ("max_steps", "batch_size", "log_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name}: expected a positive int, got {v!r}")
        if not 0.0 <= self.labeled_fraction <= 1.0:
            raise ValueError(f"labeled_fraction: expected 0..1, got {self.labeled_fraction}")
        if self.labeled_episodes < -1 or self.max_pairs_per_episode < 0:
            raise ValueError(
                f"labeled_episodes/max_pairs_per_episode: expected >= -1 / >= 0, got "
                f"{self.labeled_episodes}/{self.max_pairs_per_episode}"
            )
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"lr/weight_decay: expected > 0 / >= 0, got {self.lr}/"
                             f"{self.weight_decay}")  # fmt: skip
        if self.preset not in VAE_PRESETS:
            raise ValueError(f"preset: expected one of {VAE_PRESETS}, got {self.preset!r}")

    def vae_config(self) -> LatentActionVAEConfig:
        """The preset with ``lambda_a`` / ``beta`` overrides applied."""
        over = {k: getattr(self, k) for k in ("lambda_a", "beta") if getattr(self, k) is not None}
        return LatentActionVAEConfig.from_preset(self.preset, **over)

    def flow_config(self, image_size_px: int) -> FlowConfig:
        """Flow settings for S x S flow images (flow estimated at ``flow_size_px``)."""
        side = self.flow_size_px or 2 * image_size_px
        return FlowConfig(
            backend=self.flow_backend,
            raft_weights_path=self.raft_weights,
            device=self.device,
            max_magnitude_px=self.max_magnitude_px,
            image_hw=(side, side),
            output_hw=(image_size_px, image_size_px),
        )


@dataclass
class PairData:
    """Flow images and labels of every kept frame pair.

    Attributes:
        images: uint8 (N, S, S, 3).
        actions: float32 (N, 14), scaled joint deltas; NaN rows for unlabeled pairs.
        labeled: bool (N,).
        episode: int (N,) episode number (position in ``episodes``) of each pair.
        episodes: ``"<task>:<i>"`` per episode.
        action_scale: float32 (14,) per-dimension std of the labeled joint deltas (ones when
            there is no labeled pair).
    """

    images: np.ndarray
    actions: np.ndarray
    labeled: np.ndarray
    episode: np.ndarray
    episodes: list[str]
    action_scale: np.ndarray


def _keep(n_pairs: int, max_pairs: int) -> np.ndarray:
    if not max_pairs or n_pairs <= max_pairs:
        return np.arange(n_pairs)
    return np.unique(np.linspace(0, n_pairs - 1, max_pairs).round().astype(int))


def build_pairs(
    roots: list[str],
    flow: FlowImages,
    labeled_episodes: int = -1,
    max_pairs_per_episode: int = 0,
    progress: bool = True,
) -> PairData:
    """Decode every video episode, render the flow images of its pairs and attach labels.

    Raises:
        ValueError: no video episode; a labeled episode whose qpos rows differ from its frames.
    """
    episodes = video_episodes(roots)
    if not episodes:
        raise ValueError(f"no videos/<i>.mp4 under {roots}")
    images, deltas, labeled, ep_ids, names = [], [], [], [], []
    n_labeled = 0
    for k, (task, i) in enumerate(tqdm(episodes, desc="flow", unit="ep", disable=not progress)):
        frames = decode_video(task / "videos" / f"{i}.mp4")
        if len(frames) < 2:
            continue
        keep = _keep(len(frames) - 1, max_pairs_per_episode)
        imgs = flow.images(frames)[keep]
        has_qpos = (task / "qpos" / f"{i}.pt").is_file()
        use = has_qpos and (labeled_episodes < 0 or n_labeled < labeled_episodes)
        d = np.full((len(keep), 14), np.nan, np.float32)
        if use:
            q = TaskFolder(task).read_episode(i, embedding=False).qpos
            if len(q) != len(frames):
                raise ValueError(
                    f"{task}/qpos/{i}.pt: {len(q)} rows but the video has {len(frames)} frames"
                )
            d = (q[1:] - q[:-1])[keep].astype(np.float32)
            n_labeled += 1
        images.append(imgs)
        deltas.append(d)
        labeled.append(np.full(len(keep), use))
        ep_ids.append(np.full(len(keep), k))
        names.append(f"{task}:{i}")
    actions = np.concatenate(deltas)
    mask = np.concatenate(labeled)
    scale = np.ones(14, np.float32)
    if mask.any():
        scale = np.maximum(actions[mask].std(axis=0), 1e-6).astype(np.float32)
        actions = actions / scale
    return PairData(np.concatenate(images), actions, mask, np.concatenate(ep_ids), names, scale)


class MixedSampler:
    """Endless batches of pair indices mixing an unlabeled and a labeled pool.

    Each sample is drawn from the labeled pool with probability ``labeled_fraction`` (from
    the other pool when one is empty), uniformly within its pool.

    Args:
        labeled: bool (N,) marking labeled pairs.
        labeled_fraction: probability of a labeled sample, 0..1.
        batch_size: samples per batch.
        seed: seed of the draws.

    Raises:
        ValueError: ``labeled`` is empty.
    """

    def __init__(self, labeled: np.ndarray, labeled_fraction: float, batch_size: int, seed: int):
        labeled = np.asarray(labeled, bool)
        if labeled.size == 0:
            raise ValueError("labeled: expected at least one pair, got none")
        self.lab, self.unlab = np.flatnonzero(labeled), np.flatnonzero(~labeled)
        self.fraction, self.batch_size = float(labeled_fraction), int(batch_size)
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            yield self.batch()

    def batch(self) -> np.ndarray:
        """One batch of indices, int (batch_size,)."""
        p = self.fraction if len(self.unlab) else 1.0
        p = p if len(self.lab) else 0.0
        from_lab = self.rng.random(self.batch_size) < p
        out = np.empty(self.batch_size, np.int64)
        n = int(from_lab.sum())
        if n:
            out[from_lab] = self.rng.choice(self.lab, n)
        if n < self.batch_size:
            out[~from_lab] = self.rng.choice(self.unlab, self.batch_size - n)
        return out


def _save_reconstructions(model: LatentActionVAE, images: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with torch.no_grad():
        x = images_to_tensor(images).to(next(model.parameters()).device)
        rec = model.decode(model.encode(x)[0]).clamp(-1, 1)
    rec = ((rec.permute(0, 2, 3, 1).cpu().numpy() + 1) * 127.5).round().astype(np.uint8)
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for k in range(n):
        for row, img in enumerate((images[k], rec[k])):
            axes[row][k].imshow(img)
            axes[row][k].axis("off")
    axes[0][0].set_title("flow", fontsize=8, loc="left")
    axes[1][0].set_title("through the 14-D latent action", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def train_latent_action_vae(
    config: LatentActionTrainConfig, progress: bool = True, data: PairData | None = None
) -> tuple[LatentActionVAE, dict[str, Any]]:
    """Train the VAE and write the output folder (see module docstring).

    Args:
        config: the run's settings.
        progress: show progress bars.
        data: pairs built beforehand (:func:`build_pairs`), else built from ``config``.

    Returns:
        ``(model in eval mode, summary dict)``.

    Raises:
        ValueError: no episode (see :func:`build_pairs`).
    """
    t0 = time.perf_counter()
    torch.manual_seed(config.seed)
    vcfg = config.vae_config()
    fcfg = config.flow_config(vcfg.image_size_px)
    if data is None:
        data = build_pairs(
            list(config.data_roots),
            FlowImages(fcfg),
            config.labeled_episodes,
            config.max_pairs_per_episode,
            progress,
        )
    dev = torch.device(config.device)
    model = LatentActionVAE(vcfg).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sampler = MixedSampler(data.labeled, config.labeled_fraction, config.batch_size, config.seed)
    noise = torch.Generator().manual_seed(config.seed + 1)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / "train_log.jsonl"
    log_file.write_text("")
    last: dict[str, float] = {}
    bar = tqdm(range(1, config.max_steps + 1), desc="latent-action VAE", disable=not progress)
    with open(log_file, "a") as flog:
        for step, idx in zip(bar, sampler, strict=False):
            x = images_to_tensor(data.images[idx]).to(dev)
            a = torch.from_numpy(np.nan_to_num(data.actions[idx])).to(dev)
            m = torch.from_numpy(data.labeled[idx]).to(dev)
            terms = model.loss(x, a, m, noise)
            opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            opt.step()
            last = {
                "step": step,
                "loss": terms.loss.item(),
                "recon": terms.recon.item(),
                "align": terms.align.item(),
                "kl": terms.kl.item(),
                "n_labeled": terms.n_labeled,
            }
            flog.write(json.dumps(last) + "\n")
            if step % config.log_every == 0 or step == config.max_steps:
                bar.set_postfix(recon=f"{last['recon']:.4f}", align=f"{last['align']:.3f}")
    model.eval()
    extra = {
        "flow": dataclasses.asdict(fcfg),
        "action_scale": data.action_scale.tolist(),
        "action_target": "(qpos[t+1] - qpos[t]) / action_scale of the frame pair (t, t+1)",
        "train": {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(config).items()
        },  # fmt: skip
    }
    for k in ("image_hw", "output_hw"):
        extra["flow"][k] = list(getattr(fcfg, k))
    model.save(out, extra)
    picks = np.linspace(0, len(data.images) - 1, min(8, len(data.images))).round().astype(int)
    _save_reconstructions(model, data.images[picks], out / "reconstructions.png")
    summary = {
        "out": str(out),
        "pairs": int(len(data.images)),
        "labeled_pairs": int(data.labeled.sum()),
        "episodes": len(data.episodes),
        "steps": config.max_steps,
        "last": last,
        "train_s": round(time.perf_counter() - t0, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return model, summary
