r"""Train the latent-action VAE: ``python -m motus_policy.cli.train_latent_action``.

Stage 2 of Motus pretrains the action expert on *latent actions*: 14-D codes of the optical flow
between consecutive frames (paper §4.2). This trains the VAE that makes them, on every
``videos/<i>.mp4`` under ``--data`` (episodes without qpos included; those with qpos give the
weak action labels of 10 % of the samples)::

    python -m motus_policy.cli.train_latent_action --data data/sim --out runs/la_vae \
        --preset tiny --max-steps 2000
    motus-dataset label-latent data/sim --vae runs/la_vae     # latent_action_dim14/<i>.pt

(``--label`` does the second step at the end of the first.)

Outputs in ``--out``: the model folder ``label-latent`` reads (``latent_action_vae.json`` +
``.safetensors``), ``train_log.jsonl``, ``summary.json`` and ``reconstructions.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from motus_policy.cli.options import add_options, config_kwargs
from motus_policy.latent_action.trainer import LatentActionTrainConfig


def build_parser() -> argparse.ArgumentParser:
    """One option per :class:`LatentActionTrainConfig` field, plus ``--quiet``."""
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.cli.train_latent_action",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_options(
        p,
        LatentActionTrainConfig,
        flags={"data_roots": "--data", "out_dir": "--out"},
        overrides={"data_roots": {"required": True, "metavar": "ROOT"}},
    )
    p.add_argument(
        "--label",
        action="store_true",
        help="after training, write the latent actions beside every episode under --data (what "
        "motus-dataset label-latent DATA --vae OUT does)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, train, print ``LATENT_VAE_SUMMARY {json}``; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = LatentActionTrainConfig(**config_kwargs(args, LatentActionTrainConfig))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from motus_policy.latent_action.trainer import train_latent_action_vae

    try:
        _, summary = train_latent_action_vae(cfg, progress=not args.quiet)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.label:
        from motus_policy.latent_action.labels import LatentActionLabeler, label_dataset

        try:
            s = label_dataset(cfg.data_roots, LatentActionLabeler(cfg.out_dir, cfg.device))
        except (RuntimeError, ValueError, OSError) as e:
            print(f"error: labeling: {e}", file=sys.stderr)
            return 1
        summary["labeled_files"] = len(s.written)
    print("LATENT_VAE_SUMMARY " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
