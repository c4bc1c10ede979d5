r"""Stage-3 Motus fine-tuning CLI: ``python -m motus_policy.cli.train --config tiny ...``.

Single process (CPU or one GPU)::

    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny \
        --max-steps 2000

Tiny preset on a CPU: decode the videos once and encode every sample's frozen features up front
(a one-off pass of a few minutes), then every step is a cache hit (tens of steps/s)::

    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny \
        --max-steps 3000 --precompute-features

Tiny preset with a VAE trained on your frames first (``python -m motus_policy.cli.train_vae``;
otherwise the tiny encoders are random networks built in code)::

    python -m motus_policy.cli.train_vae --data data/motus --out runs/vae
    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny \
        --encoders runs/vae/encoders --precompute-features

Many GPUs on one host (PyTorch DDP; one process per GPU, ``--batch-size`` is per GPU)::

    torchrun --standalone --nproc_per_node 8 -m motus_policy.cli.train \
        --config aloha_agilex_2 --data data/motus --init ckpt/Motus/mp_rank_00_model_states.pt \
        --encoders models/motus_aloha_encoders --out runs/aloha --batch-size 8

Resume after an interruption (same command plus ``--resume``; the run folder's latest
checkpoint is used)::

    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny --resume auto

The result ``<out>/final/`` is a ``MotusPolicy.save_pretrained`` folder the policy backend loads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from motus_policy.training.config import (
    DEVICES,
    INIT_TRANSITIONS,
    TEXT_SOURCES,
    VLM_IMAGES,
    TrainConfig,
)

PRESETS = (
    "tiny",
    "tiny_f8",
    "tiny_wide",
    "aloha_agilex_2",
    "ac_one",
    "robotwin",
)  # finetune-mode presets


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the CLI (defaults from :class:`TrainConfig`)."""
    d = TrainConfig(data_roots=("-",))
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.cli.train",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("model and data")
    g.add_argument(
        "--config",
        default=d.preset,
        choices=PRESETS,
        help="MotusConfig preset for a fresh or official start (default %(default)s)",
    )
    g.add_argument(
        "--data",
        nargs="+",
        required=True,
        metavar="ROOT",
        help="dataset root(s) in the Motus real-robot layout (reference §4.2)",
    )
    g.add_argument("--out", default=d.out_dir, help="run folder (default %(default)s)")
    g.add_argument(
        "--init",
        default=None,
        metavar="PATH",
        help="official mp_rank_00_model_states.pt (or its folder), or our "
        "save_pretrained folder; default: fresh weights",
    )
    g.add_argument(
        "--encoders",
        default=None,
        metavar="DIR",
        help="save_pretrained folder providing VAE/T5/VLM: required for non-tiny presets; for "
        "tiny presets, e.g. the encoders folder of `python -m motus_policy.cli.train_vae` "
        "(default: random tiny encoders built in code)",
    )
    g.add_argument(
        "--init-transition",
        default=d.init_transition,
        choices=INIT_TRANSITIONS,
        help="official checkpoint stage rule (reference §5.1; default %(default)s)",
    )
    g.add_argument(
        "--resume",
        default=None,
        metavar="PATH|auto",
        help="checkpoint folder or run folder to resume; 'auto' = --out",
    )
    g.add_argument(
        "--stats-key",
        default=d.stats_key,
        help="stat.json entry for min-max normalisation, 'auto' or 'none'",
    )
    g.add_argument(
        "--text-source",
        default=d.text_source,
        choices=TEXT_SOURCES,
        help="T5 context from the dataset's .pt or the policy's text encoder",
    )
    g.add_argument(
        "--vlm-image",
        default=d.vlm_image,
        choices=VLM_IMAGES,
        help="VLM input image: padded model frame or raw composite",
    )
    g.add_argument("--samples-per-episode", type=int, default=d.samples_per_episode)
    g.add_argument(
        "--max-episodes",
        type=int,
        default=d.max_episodes,
        help="train on the first N complete episodes only (roots in the order given, indices "
        "ascending; the validation episodes are the last of these), e.g. for a "
        "success-vs-demonstrations curve; 0 = all (default)",
    )
    g.add_argument(
        "--num-workers",
        type=int,
        default=d.num_workers,
        help="DataLoader workers decoding video (default %(default)s)",
    )
    g.add_argument(
        "--feature-cache",
        default=None,
        metavar="DIR",
        help="per-sample VAE/VLM feature cache (default <out>/feature_cache; '' disables)",
    )
    g.add_argument(
        "--preload",
        action="store_true",
        help="decode every episode once and keep its frames (resized) in RAM instead of "
        "decoding video per item (same items, bit for bit)",
    )
    g.add_argument(
        "--precompute-features",
        action="store_true",
        help="first encode VAE latents / VLM features of every (episode, condition index) and "
        "keep them in RAM, so every step is a cache hit (implies --preload; the fast path "
        "for CPU training of the tiny preset)",
    )
    g.add_argument(
        "--vae-batch",
        type=int,
        default=d.vae_batch,
        help="clips per VAE call in the precompute pass (1 = bit-identical to on-the-fly "
        "encodes; default %(default)s)",
    )
    o = p.add_argument_group("optimisation (reference §2.1 defaults)")
    o.add_argument("--max-steps", type=int, default=d.max_steps)
    o.add_argument("--batch-size", type=int, default=d.batch_size, help="per process")
    o.add_argument("--lr", type=float, default=d.lr)
    o.add_argument("--weight-decay", type=float, default=d.weight_decay)
    o.add_argument("--grad-clip", type=float, default=d.grad_clip)
    o.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    o.add_argument(
        "--cycle-length",
        type=int,
        default=d.cycle_length,
        help="step at which the linear decay reaches lr x --f-min, held afterwards "
        "(default %(default)s, the real-robot configs')",
    )
    o.add_argument(
        "--f-min",
        type=float,
        default=d.f_min,
        help="learning-rate factor at the end of the cycle (default %(default)s, upstream); "
        "e.g. --cycle-length 8000 --f-min 0.02 anneals a short fine-tune",
    )
    o.add_argument("--seed", type=int, default=d.seed)
    o.add_argument(
        "--action-loss-weight",
        type=float,
        default=None,
        help="weight of the action MSE against the video MSE (default: the checkpoint's / "
        "preset's, 1.0 as in the reference)",
    )
    o.add_argument("--device", default=d.device, choices=DEVICES)
    v = p.add_argument_group("logging, validation, checkpoints")
    v.add_argument("--val-episodes", type=int, default=d.val_episodes)
    v.add_argument("--val-samples", type=int, default=d.val_samples)
    v.add_argument("--val-every", type=int, default=d.val_every, help="0 disables")
    v.add_argument("--vla-steps", type=int, default=d.vla_steps)
    v.add_argument("--no-plot", action="store_true", help="skip the validation PNG")
    v.add_argument("--save-every", type=int, default=d.save_every)
    v.add_argument("--keep-last", type=int, default=d.keep_last)
    v.add_argument("--log-every", type=int, default=d.log_every)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig of parsed arguments (ValueError names a bad field)."""
    return TrainConfig(
        preset=args.config,
        data_roots=tuple(args.data),
        out_dir=args.out,
        init=args.init,
        encoders=args.encoders,
        init_transition=args.init_transition,
        resume=args.out if args.resume == "auto" else args.resume,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        warmup_steps=args.warmup_steps,
        cycle_length=args.cycle_length,
        f_min=args.f_min,
        seed=args.seed,
        samples_per_episode=args.samples_per_episode,
        max_episodes=args.max_episodes,
        val_episodes=args.val_episodes,
        val_samples=args.val_samples,
        val_every=args.val_every,
        save_every=args.save_every,
        keep_last=args.keep_last,
        log_every=args.log_every,
        num_workers=args.num_workers,
        feature_cache=args.feature_cache,
        preload=args.preload,
        precompute_features=args.precompute_features,
        vae_batch=args.vae_batch,
        text_source=args.text_source,
        vlm_image=args.vlm_image,
        stats_key=args.stats_key,
        device=args.device,
        vla_steps=args.vla_steps,
        plot=not args.no_plot,
        action_loss_weight=args.action_loss_weight,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse, train, print a JSON summary line (rank 0); returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from motus_policy.training.distributed import shutdown
    from motus_policy.training.trainer import Trainer

    trainer = Trainer(config)
    try:
        result = trainer.run()
    finally:
        shutdown(trainer.info)
    if trainer.info.is_main:
        summary = {
            "final": str(result.final_dir),
            "checkpoint": str(result.checkpoint),
            "steps": trainer.position.step,
            "last_loss": result.losses[-1][1] if result.losses else None,
            "steps_per_s": result.steps_per_s,
            "val": result.val_metrics,
        }
        print("TRAIN_SUMMARY " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
