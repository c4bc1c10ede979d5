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
    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny_vae \
        --encoders runs/vae/encoders --precompute-features

Many GPUs on one host (PyTorch DDP; one process per GPU, ``--batch-size`` is per GPU)::

    torchrun --standalone --nproc_per_node 8 -m motus_policy.cli.train \
        --config aloha_agilex_2 --data data/motus --init ckpt/Motus/mp_rank_00_model_states.pt \
        --encoders models/motus_aloha_encoders --out runs/aloha --batch-size 8

The full-size model on 8 GPUs of 80 GB: FSDP2, parameters / gradients / AdamW state sharded, one
unit per MoT layer, sharded checkpoints (``--strategy auto`` picks the layout from the memory
plan; ``python -m motus_policy.training.memory_plan --config aloha_agilex_2 --gpus 1 4 8``)::

    torchrun --standalone --nproc_per_node 8 -m motus_policy.cli.train \
        --config aloha_agilex_2 --data data/motus --init ckpt/Motus/mp_rank_00_model_states.pt \
        --encoders models/motus_aloha_encoders --out runs/aloha --batch-size 8 \
        --strategy fsdp --activation-checkpointing

One GPU: the same with ``--nproc_per_node 1 --strategy fsdp --cpu-offload`` (sharded state in host
memory). Several hosts: ``torchrun --nnodes N --node-rank I --rdzv-backend c10d
--rdzv-endpoint HOST:PORT --nproc_per_node 8 ...`` on each.

Resume after an interruption (same command plus ``--resume``; the run folder's latest
checkpoint is used; a new run into a folder that already holds one is refused)::

    python -m motus_policy.cli.train --config tiny --data data/motus --out runs/tiny --resume auto

The result ``<out>/final/`` is a ``MotusPolicy.save_pretrained`` folder the policy backend loads;
with ``--export-official``, ``<out>/final_official/mp_rank_00_model_states.pt`` holds the same
network in the official DeepSpeed layout (docs/checkpoint-format.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from motus_policy.cli.options import add_options, config_kwargs
from motus_policy.training.config import TrainConfig

PRESETS = (
    "tiny",
    "tiny_f8",
    "tiny_wide",
    "aloha_agilex_2",
    "ac_one",
    "robotwin",
    "latent_action_tiny",
    "latent_action",
)  # finetune-mode presets (stage 3), then pretrain-mode ones (--stage 2)


MODEL_AND_DATA = (
    "stage", "preset", "data_roots", "out_dir", "init", "encoders", "init_transition", "resume",
    "stats_key", "text_source", "vlm_image", "samples_per_episode", "max_episodes",
    "num_workers", "feature_cache", "preload", "precompute_features", "vae_batch",
)  # fmt: skip
OPTIMISATION = (
    "max_steps", "batch_size", "lr", "betas", "weight_decay", "grad_clip", "warmup_steps",
    "cycle_length", "f_start", "f_max", "f_min", "seed", "action_loss_weight", "device",
)  # fmt: skip
PARALLELISM = ("strategy", "cpu_offload", "activation_checkpointing", "grad_accum_steps")
LOGGING = (
    "val_episodes", "val_samples", "val_every", "vla_steps", "plot", "save_every", "keep_last",
    "log_every", "recommended_n_action_steps", "export_official",
)  # fmt: skip
"""Option groups of ``--help``: every :class:`TrainConfig` field, each once."""


def build_parser() -> argparse.ArgumentParser:
    """Argument parser of the CLI: one option per :class:`TrainConfig` field (its help)."""
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.cli.train",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(
        p.add_argument_group("model and data"),
        TrainConfig,
        MODEL_AND_DATA,
        flags={"preset": "--config", "data_roots": "--data", "out_dir": "--out"},
        overrides={
            "preset": {"choices": PRESETS},
            "data_roots": {"required": True, "metavar": "ROOT"},
            "init": {"metavar": "PATH"},
            "encoders": {"metavar": "DIR"},
            "resume": {"metavar": "PATH|auto", "help_extra": "auto = --out"},
            "feature_cache": {"metavar": "DIR"},
        },
    )
    add_options(
        p.add_argument_group("optimisation (docs/motus.md §2.1 defaults)"),
        TrainConfig,
        OPTIMISATION,
        overrides={"betas": {"metavar": ("BETA1", "BETA2")}},
    )
    add_options(
        p.add_argument_group(
            "parallelism and memory (python -m motus_policy.training.memory_plan)"
        ),
        TrainConfig,
        PARALLELISM,
    )
    add_options(p.add_argument_group("logging, validation, checkpoints"), TrainConfig, LOGGING)
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig of parsed arguments (``--resume auto`` = ``--out``).

    Raises:
        ValueError: a field is invalid (the message names it).
    """
    kwargs = config_kwargs(args, TrainConfig)
    if kwargs["resume"] == "auto":
        kwargs["resume"] = kwargs["out_dir"]
    return TrainConfig(**kwargs)


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
    from motus_policy.training.trainer import RunFolderInUseError, Trainer

    try:
        trainer = Trainer(config)
    except (RunFolderInUseError, ValueError, FileNotFoundError) as e:
        # a used --out, bad data, a stage that does not fit the preset, a missing file: one
        # line and exit 2; MOTUS_DEBUG=1 keeps the traceback
        if os.environ.get("MOTUS_DEBUG") == "1":
            raise
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
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
