"""Held-out evaluation: diffusion loss at fixed noise and a ``vla``-mode action prediction.

* ``val/loss``, ``val/video_loss``, ``val/action_loss``: :func:`training_loss` on held-out
  samples with a fixed noise generator, so values are comparable across validations.
* ``val/vla_action_mse``: MSE between the ``vla`` prediction (future video held at noise,
  docs/motus.md §2.3; ``vla_steps`` Euler steps, fixed seed) and the true actions, normalised
  space; ``val/vla_action_mae_raw``: mean absolute error after de-normalisation (rad / gripper
  units).
* optional PNG: predicted vs true trajectories of the 14 joints for the first held-out sample.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import torch

from motus_policy.model.losses import training_loss
from motus_policy.model.policy import MotusPolicy
from motus_policy.model.sampler import MotusSampler
from motus_policy.training.features import FeatureEncoder
from motus_recorder import schema

VAL_NOISE_SEED = 20_240_917


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA, nothing on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def evaluate(
    policy: MotusPolicy,
    features: FeatureEncoder,
    batches: list[dict],
    vla_steps: int,
    device: torch.device,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Validation metrics over ``batches`` (the model is put back in train mode afterwards).

    Returns:
        ``(metrics, example)``: metric name -> float, and the first sample's ``true`` /
        ``pred`` actions (A, 14) de-normalised.
    """
    model = policy.model
    model.eval()
    noise = torch.Generator().manual_seed(VAL_NOISE_SEED)
    vla_gen = torch.Generator(device=device).manual_seed(VAL_NOISE_SEED)
    sampler = MotusSampler(model, num_steps=vla_steps)
    sums = {"loss": 0.0, "video_loss": 0.0, "action_loss": 0.0, "vla_action_mse": 0.0}
    mae_raw, n, example = 0.0, 0, {}
    try:
        for batch in batches:
            latents, vlm, text = features(batch)
            actions = batch["action_sequence"].to(device)
            state = batch["initial_state"].to(device) if model.config.has_state else None
            b = actions.shape[0]
            with autocast_for(device):
                cond = model.prepare_conditioning(text, vlm, cache_text_kv=True)
                out = training_loss(model, latents, actions, state, cond, generator=noise)
                pred = sampler.sample("vla", latents[:, :, :1], cond, state, generator=vla_gen)
            pred_a = pred.actions.float()
            sums["loss"] += float(out.loss) * b
            sums["video_loss"] += float(out.video_loss) * b
            sums["action_loss"] += float(out.action_loss) * b
            sums["vla_action_mse"] += float(((pred_a - actions) ** 2).mean()) * b
            true_raw = policy.stats.denormalize(actions.cpu().numpy())
            pred_raw = policy.stats.denormalize(pred_a.cpu().numpy())
            mae_raw += float(np.abs(pred_raw - true_raw).mean()) * b
            n += b
            if not example:
                example = {"true": true_raw[0], "pred": pred_raw[0]}
    finally:
        model.train()
    metrics = {k: v / n for k, v in sums.items()}
    metrics["vla_action_mae_raw"] = mae_raw / n
    return metrics, example


def plot_actions(true: np.ndarray, pred: np.ndarray, path: Path, title: str) -> Path:
    """PNG of (A, 14) predicted vs true actions, one panel per joint (left / right columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(7, 2, figsize=(9, 12), sharex=True)
    for d in range(true.shape[1]):
        ax = axes[d % 7, d // 7]
        ax.plot(true[:, d], label="true", color="k")
        ax.plot(pred[:, d], label="vla", color="tab:red", linestyle="--")
        side = "left" if d < schema.STATE_DIM // 2 else "right"
        ax.set_title(f"{side} {'gripper' if d % 7 == 6 else f'joint {d % 7 + 1}'}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def write_report(
    metrics: dict[str, float],
    example: dict[str, np.ndarray],
    step: int,
    folder: Path,
    writer=None,
    plot: bool = True,
) -> None:
    """Log one validation: TensorBoard ``val/*`` scalars, ``metrics.jsonl`` row, optional PNG."""
    if writer is not None:
        for k, val in metrics.items():
            writer.add_scalar(f"val/{k}", val, step)
    folder.mkdir(parents=True, exist_ok=True)
    if plot and example:
        title = f"step {step}: vla prediction vs truth (held-out sample 0)"
        plot_actions(example["true"], example["pred"], folder / f"{step:08d}.png", title)
    with open(folder / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": step, **metrics}) + "\n")
