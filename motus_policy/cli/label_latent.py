r"""Write latent actions beside each episode: ``python -m motus_policy.cli.label_latent``.

The same command as ``motus-dataset label-latent ROOT --vae PATH`` (which runs this module):
for every ``videos/<i>.mp4`` under ROOT (qpos not needed), the optical flow of each consecutive
frame pair is encoded by the latent-action VAE of ``--vae`` (written by
``python -m motus_policy.cli.train_latent_action``) into ``latent_action_dim14/<i>.pt``, float32
[T-1, 14], crash-safely (temporary file, fsync, rename). Episodes that already have one are
skipped unless ``--force``. Then stage 2 trains on them::

    python -m motus_policy.cli.train --stage 2 --config latent_action_tiny --data ROOT ...
"""

from __future__ import annotations

import argparse
import sys


def build_parser(prog: str = "python -m motus_policy.cli.label_latent") -> argparse.ArgumentParser:
    """``ROOT --vae PATH [--device D] [--batch-size N] [--force]``."""
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("root", nargs="+", help="dataset root(s), searched for videos/ folders")
    p.add_argument("--vae", required=True, metavar="PATH", help="latent-action VAE folder")
    p.add_argument("--device", default="cpu", help="torch device of the VAE (default cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="flow images per VAE call")
    p.add_argument("--force", action="store_true", help="relabel episodes that have labels")
    return p


def main(argv: list[str] | None = None) -> int:
    """Label; one line per written file and a summary line. Exit 0 ok, 1 failure, 2 bad --vae."""
    args = build_parser().parse_args(argv)
    from motus_policy.latent_action.labels import LatentActionLabeler, label_dataset

    try:
        labeler = LatentActionLabeler(args.vae, args.device, args.batch_size)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 2
    try:
        s = label_dataset(args.root, labeler, force=args.force, progress=print)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 1
    for what in s.too_short:
        print(f"NOTE skipped {what}: fewer than 2 frames")
    print(
        f"{len(s.written)} latent-action file(s) written with {args.vae}, {s.skipped} "
        "episode(s) already had one"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
