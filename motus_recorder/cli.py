"""``motus-dataset``: validate, summarise and look at Motus-format datasets.

Examples::

    motus-dataset validate data/             # exit 1 and one line per problem if any
    motus-dataset stats data/ --write        # per-dimension min/max, update data/stat.json
    motus-dataset show data/ --episode pick/v1:0 --png ep0.png
    motus-dataset embed data/ --t5 umt5-xxl/                 # instructions/<i>.pt (UMT5, bf16)
    motus-dataset stats data/ --export-official aloha_agilex_2 \
        --official-stat Motus/data/utils/stat.json           # the official loader's stats file
    motus-dataset validate data/ --official aloha_agilex_2 \
        --official-stat Motus/data/utils/stat.json           # everything the official loader needs
    motus-dataset label-latent data/ --vae runs/la_vae      # latent_action_dim14/<i>.pt (stage 2)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from motus_recorder.dataset import (
    OFFICIAL_KEYS,
    OFFICIAL_STAT_FILE,
    EpisodeFileError,
    TaskFolder,
    embed_dataset,
    export_official_stat,
    find_tasks,
    validate_report,
)
from motus_recorder.stats import STAT_FILE, minmax, read_stat_file


def _cmd_validate(args: argparse.Namespace) -> int:
    rep = validate_report(
        args.root,
        decode=not args.no_decode,
        official=args.official,
        official_stat=args.official_stat,
    )
    for p in rep.problems:
        print(f"ERROR {p}")
    for note in rep.notes:
        print(f"NOTE {note}")
    if rep.problems:
        print(
            f"INVALID: {len(rep.problems)} problem(s), {rep.episodes} complete episode(s) "
            f"in {args.root}"
        )
        return 1
    for_official = f", ready for the official {args.official} loader" if args.official else ""
    print(
        f"OK: {rep.episodes} episode(s) in {rep.tasks} task folder(s) under {args.root}"
        f"{for_official}"
    )
    return 0


def _cmd_embed(args: argparse.Namespace) -> int:
    from motus_recorder.writers.torch_io import UMT5Embedder

    try:
        embedder = UMT5Embedder(args.t5, args.tokenizer, device=args.device, dtype=args.dtype)
    except (FileNotFoundError, ValueError) as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 2
    try:
        s = embed_dataset(args.root, embedder, force=args.force)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"ERROR {exc}", file=sys.stderr)
        return 1
    for f in s.files:
        print(f"wrote {f}")
    print(
        f"{s.written} embedding file(s) written ({s.encoded} distinct instruction(s) encoded "
        f"with {args.t5} on {embedder.device}), {s.skipped} episode(s) already had one"
    )
    return 0


def _cmd_label_latent(args: argparse.Namespace) -> int:
    """Run ``python -m motus_policy.cli.label_latent`` with these arguments in a child process.

    The latent-action VAE is model code of ``motus_policy`` (torch, diffusers); the recorder
    package imports nothing from the other packages (docs/architecture.md), so the labeling runs
    in a child interpreter and its exit status is returned.
    """
    cmd = [sys.executable, "-m", "motus_policy.cli.label_latent", *args.root, "--vae", args.vae]
    cmd += ["--device", args.device, "--batch-size", str(args.batch_size)]
    if args.force:
        cmd.append("--force")
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:
        print(f"ERROR cannot start {cmd[0]}: {exc}", file=sys.stderr)
        return 1


def _cmd_stats(args: argparse.Namespace) -> int:
    if args.export_official:
        try:
            path, entry = export_official_stat(args.root, args.export_official, args.official_stat)
        except (ValueError, OSError) as exc:
            print(f"ERROR {exc}", file=sys.stderr)
            return 1
        print(f"{entry['file_count']} episode(s)")
        print(json.dumps({args.export_official: entry}, indent=1))
        print(f"wrote entry {args.export_official!r} of {path}")
        return 0
    per_key: dict[str, list[np.ndarray]] = defaultdict(list)
    frames = episodes = 0
    for t in find_tasks(args.root):
        task = TaskFolder(t)
        for i in task.episode_indices():
            try:
                ep = task.read_episode(i, embedding=False)
            except EpisodeFileError as exc:
                print(f"ERROR {exc}", file=sys.stderr)
                return 1
            key = args.key or (ep.meta or {}).get("normalization_key") or "dataset"
            per_key[key].append(ep.qpos)
            frames += ep.qpos.shape[0]
            episodes += 1
    if not episodes:
        print(f"no complete episodes under {args.root}", file=sys.stderr)
        return 1
    stats = {k: minmax(v) for k, v in per_key.items()}
    print(f"{episodes} episode(s), {frames} frame(s)")
    print(json.dumps(stats, indent=1))
    if args.write:
        path = Path(args.root) / STAT_FILE
        data = read_stat_file(path) if path.is_file() else {}
        data.update(stats)
        path.write_text(json.dumps(data, indent=1))
        print(f"wrote {path}")
    return 0


def _plot(task: TaskFolder, i: int, png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = task.read_episode(i, embedding=False)
    n_rows = ep.qpos.shape[0]
    picks = np.linspace(0, n_rows - 1, num=min(6, n_rows)).round().astype(int).tolist()
    frames = ep.frames(picks)
    fig = plt.figure(figsize=(3 * len(picks), 7))
    for k, (idx, img) in enumerate(zip(picks, frames, strict=True)):
        ax = fig.add_subplot(2, len(picks), k + 1)
        ax.imshow(img)
        ax.set_title(f"frame {idx}")
        ax.axis("off")
    ax = fig.add_subplot(2, 1, 2)
    names = (ep.meta or {}).get("joint_names") or [f"q{d}" for d in range(ep.qpos.shape[1])]
    for d in range(ep.qpos.shape[1]):
        ax.plot(ep.qpos[:, d], label=names[d], lw=1)
    ax.set_xlabel("frame")
    ax.set_ylabel("qpos (rad / gripper unit)")
    ax.legend(ncol=7, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.suptitle(f"{task.path} episode {i}: {ep.instruction}")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)


def _cmd_show(args: argparse.Namespace) -> int:
    tasks = [TaskFolder(t) for t in find_tasks(args.root)]
    for task in tasks:
        idx = task.episode_indices()
        rows = [task.read_episode(i, embedding=False).qpos.shape[0] for i in idx]
        rel = task.path.relative_to(args.root) if task.path != Path(args.root) else Path(".")
        print(f"{rel}: {len(idx)} episode(s), frames per episode {rows}")
    if args.episode:
        sub, _, num = args.episode.rpartition(":")
        task = TaskFolder(Path(args.root) / sub)
        ep = task.read_episode(int(num), embedding=False)
        meta = ep.meta or {}
        print(f"episode {args.episode}: {ep.qpos.shape[0]} frames, instruction {ep.instruction!r}")
        if "sync" in meta:
            print(f"  sync: {json.dumps(meta['sync'])}")
        if args.png:
            _plot(task, int(num), args.png)
            print(f"wrote {args.png}")
    elif args.png:
        print("--png needs --episode", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser (exposed for tests and docs)."""
    p = argparse.ArgumentParser(
        prog="motus-dataset",
        description="Validate, summarise and inspect Motus-format datasets "
        "(<root>/<task>/<variant>/{videos,qpos,instructions}/).",
        epilog="examples:\n" + __doc__.split("Examples::", 1)[1].rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    official_stat_help = (
        f"official stats file (default ROOT/{OFFICIAL_STAT_FILE}); the official loader reads "
        "data/utils/stat.json of the Motus checkout"
    )
    v = sub.add_parser("validate", help="check layout, shapes, NaNs, video frames vs qpos rows")
    v.add_argument("root", help="dataset root (searched recursively for task folders)")
    v.add_argument("--no-decode", action="store_true", help="skip decoding videos (faster)")
    v.add_argument(
        "--official",
        choices=OFFICIAL_KEYS,
        help="also check what the official loader of this key needs: UMT5 embeddings, numeric "
        "names, the stats entry in --official-stat, 30 Hz for real-robot profiles",
    )
    v.add_argument("--official-stat", help=official_stat_help)
    v.set_defaults(fn=_cmd_validate)
    s = sub.add_parser("stats", help="per-dimension qpos min/max (stat.json format)")
    s.add_argument("root")
    s.add_argument("--key", help="stat.json key (default: each episode's normalization_key)")
    s.add_argument("--write", action="store_true", help="merge the result into ROOT/stat.json")
    s.add_argument(
        "--export-official",
        metavar="KEY",
        choices=OFFICIAL_KEYS,
        help="write the min/max of every episode's qpos as entry KEY of --official-stat, in "
        "the format of the official data/utils/stat.json (other entries kept)",
    )
    s.add_argument("--official-stat", help=official_stat_help)
    s.set_defaults(fn=_cmd_stats)
    e = sub.add_parser(
        "embed", help="write the UMT5 instruction embeddings the official trainer needs"
    )
    e.add_argument("root")
    e.add_argument(
        "--t5",
        required=True,
        metavar="PATH",
        help="local UMT5 encoder folder (Hugging Face save_pretrained of umt5-xxl's encoder)",
    )
    e.add_argument("--tokenizer", help="tokenizer folder (default: PATH, else PATH/tokenizer)")
    e.add_argument("--device", default="auto", help="cpu, cuda, ... (default: cuda if any)")
    e.add_argument("--dtype", default="bfloat16", help="encoder dtype (default bfloat16)")
    e.add_argument("--force", action="store_true", help="re-encode existing embeddings")
    e.set_defaults(fn=_cmd_embed)
    la = sub.add_parser(
        "label-latent",
        help="write latent actions (optical flow -> latent-action VAE) beside each episode for "
        "stage-2 pretraining: latent_action_dim14/<i>.pt, float32 [T-1, 14]; qpos not needed",
    )
    la.add_argument("root", nargs="+", help="dataset root(s), searched for videos/ folders")
    la.add_argument(
        "--vae",
        required=True,
        metavar="PATH",
        help="folder of python -m motus_policy.cli.train_latent_action",
    )
    la.add_argument("--device", default="cpu", help="torch device of the VAE (default cpu)")
    la.add_argument("--batch-size", type=int, default=64, help="flow images per VAE call")
    la.add_argument("--force", action="store_true", help="relabel episodes that have labels")
    la.set_defaults(fn=_cmd_label_latent)
    sh = sub.add_parser("show", help="summary; optional contact sheet + qpos plot as PNG")
    sh.add_argument("root")
    sh.add_argument("--episode", help="TASK_SUBPATH:INDEX, e.g. pick/v1:0")
    sh.add_argument("--png", help="write a contact sheet and qpos plot of --episode here")
    sh.set_defaults(fn=_cmd_show)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``motus-dataset``; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
