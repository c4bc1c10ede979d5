r"""Train the tiny presets' VAE as an autoencoder: ``python -m motus_policy.cli.train_vae``.

The tiny presets otherwise use a VAE with random weights: its latents are random features and
the policy's imagined frames decode to noise. This fits it to your recorded episodes first
(method: ``motus_policy.training.vae_trainer``), then writes an encoders folder that the
fine-tuning CLI takes with ``--encoders``::

    python -m motus_policy.cli.train_vae --data data/sim_cmd/transfer_cube --out runs/vae
    python -m motus_policy.cli.train --config tiny --data data/sim_cmd/transfer_cube \
        --encoders runs/vae/encoders --out runs/tiny --precompute-features

Outputs in ``--out``: ``encoders/`` (a ``save_pretrained`` folder: the trained VAE with its
measured latent mean / std, the tiny T5 and Qwen3-VL built from ``--seed``, and an untrained
network that ``--encoders`` ignores), ``reconstructions.png`` (held-out input vs decoded
frames) and ``vae_summary.json`` (losses, held-out L1 / PSNR, wall time).

On a 2-core CPU a step of 8 clips x 5 frames at 128 x 96 takes about 1.4 s.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from motus_policy.cli.train import PRESETS
from motus_policy.training.vae_trainer import VAETrainConfig


def build_parser() -> argparse.ArgumentParser:
    """Argument parser (defaults from :class:`VAETrainConfig`)."""
    d = VAETrainConfig(data_roots=("-",))
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.cli.train_vae",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", nargs="+", required=True, help="dataset roots (recorder layout)")
    p.add_argument("--out", default=d.out_dir, help="run folder (default %(default)s)")
    p.add_argument(
        "--config",
        default="tiny",
        choices=[p for p in PRESETS if p.startswith("tiny")],
        help="tiny preset the encoders are for (sets H, W and the VAE factor; default tiny)",
    )
    p.add_argument("--max-steps", type=int, default=d.max_steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per step")
    p.add_argument("--clip-frames", type=int, default=d.clip_frames, help="1 + 4k frames")
    p.add_argument(
        "--frame-stride",
        type=int,
        default=None,
        help="recorded frames between clip frames (default: the preset's g * r)",
    )
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--kl-weight", type=float, default=d.kl_weight)
    p.add_argument(
        "--foreground-weight",
        type=float,
        default=d.foreground_weight,
        help="extra L1 weight on pixels that differ from the median frame (0 = plain L1)",
    )
    p.add_argument("--val-episodes", type=int, default=d.val_episodes)
    p.add_argument(
        "--stats-clips",
        type=int,
        default=d.stats_clips,
        help="clips used to measure the latent mean / std (default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="also seeds the tiny T5 / Qwen3-VL")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints a one-line JSON summary (``VAE_SUMMARY {...}``)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from motus_policy.model.configuration_motus import MotusConfig

    preset = MotusConfig.from_preset(args.config)
    stride = args.frame_stride or preset.global_downsample_rate * preset.video_action_freq_ratio
    try:
        cfg = VAETrainConfig(
            data_roots=tuple(args.data),
            out_dir=args.out,
            image_height=preset.image_height,
            image_width=preset.image_width,
            spatial_factor=preset.vae_spatial_factor,
            clip_frames=args.clip_frames,
            frame_stride=stride,
            batch_size=args.batch_size,
            max_steps=args.max_steps,
            lr=args.lr,
            kl_weight=args.kl_weight,
            foreground_weight=args.foreground_weight,
            val_episodes=args.val_episodes,
            stats_clips=args.stats_clips,
            seed=args.seed,
        )
    except ValueError as e:
        print(f"train_vae: {e}", file=sys.stderr)
        return 2
    from motus_policy.training.vae_trainer import save_encoders, train_vae

    vae, summary = train_vae(cfg, progress=not args.quiet)
    folder = save_encoders(vae, preset, args.seed, f"{args.out}/encoders")
    summary["encoders"] = str(folder)
    print(
        "VAE_SUMMARY " + json.dumps({k: summary[k] for k in ("encoders", "train_s", "held_out")})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
