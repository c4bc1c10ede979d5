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

from motus_policy.cli.options import add_options, config_kwargs
from motus_policy.cli.train import PRESETS
from motus_policy.training.vae_trainer import VAETrainConfig

PRESET_FIELDS = ("image_height", "image_width", "spatial_factor")
"""VAETrainConfig fields set from the ``--config`` preset, not options."""


def build_parser() -> argparse.ArgumentParser:
    """Argument parser: ``--config``, ``--quiet`` and the :class:`VAETrainConfig` options.

    One option per field but the preset's (:data:`PRESET_FIELDS`), help from its description.
    """
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.cli.train_vae",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config",
        default="tiny",
        choices=[p for p in PRESETS if p.startswith("tiny")],
        help="tiny preset the encoders are for (sets H, W and the VAE factor; default tiny)",
    )
    add_options(
        p,
        VAETrainConfig,
        exclude=PRESET_FIELDS,
        flags={"data_roots": "--data", "out_dir": "--out"},
        overrides={
            "data_roots": {"metavar": "ROOT"},
            "frame_stride": {"default": None, "help_extra": "default: the preset's g * r"},
        },
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints a one-line JSON summary (``VAE_SUMMARY {...}``)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from motus_policy.model.configuration_motus import MotusConfig

    preset = MotusConfig.from_preset(args.config)
    kwargs = config_kwargs(args, VAETrainConfig)
    kwargs["frame_stride"] = (
        args.frame_stride or preset.global_downsample_rate * preset.video_action_freq_ratio
    )
    try:
        cfg = VAETrainConfig(
            **kwargs,
            image_height=preset.image_height,
            image_width=preset.image_width,
            spatial_factor=preset.vae_spatial_factor,
        )
    except ValueError as e:
        print(f"train_vae: {e}", file=sys.stderr)
        return 2
    from motus_policy.training.vae_trainer import save_encoders, train_vae

    vae, summary = train_vae(cfg, progress=not args.quiet)
    folder = save_encoders(vae, preset, cfg.seed, f"{cfg.out_dir}/encoders")
    summary["encoders"] = str(folder)
    print(
        "VAE_SUMMARY " + json.dumps({k: summary[k] for k in ("encoders", "train_s", "held_out")})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
