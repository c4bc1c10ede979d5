"""Does stage-2 latent-action pretraining help stage 3 with few demonstrations (issue #17)?

``python -m benchmarks.latent_pretrain --unlabeled data/sim_unlabeled --labeled
data/sim/transfer_cube --demos 10 20 50 --seeds 50 --out outputs/latent_pretrain``

1. Latent-action VAE on every episode under ``--unlabeled`` (``--vae-labeled-episodes`` of them
   keep their qpos as the weak labels; the others count as unlabeled video), then the labels
   (``train_latent_action --label``).
2. Stage 2: ``train --stage 2 --config latent_action_tiny`` on ``--unlabeled`` (qpos unused).
3. For each N in ``--demos``: stage 3 on the first N episodes of ``--labeled`` twice with the
   same recipe: from scratch and ``--init`` the stage-2 folder.
4. Each stage-3 checkpoint: ``motus-eval lockstep`` on ``--seeds`` held-out seeds (from
   ``--seed-start``), success with a Wilson 95 % interval.
5. Linear probe: latent actions of the ``--labeled`` episodes (labeled with the VAE) against their
   true joint deltas ``qpos[t+1] - qpos[t]``; least squares on the first half of the episodes,
   R^2 on the second half (held out).

Every step is the project's own command in a child process, so the numbers are what a user
gets. Writes ``results.json`` and ``results.md`` (the table for the model card) and copies the
VAE's ``reconstructions.png`` (flow images vs their reconstruction) into ``--out``. The default
step counts are the CPU-sized tiny recipe; ``--toy`` shrinks everything to a smoke run whose
figures say nothing about the method. ``--probe-only`` stops after step 1 and the probe (step 5).

Unlabeled data: record it with the scripted expert at other seeds, e.g. ``python -m
motus_teleop.record_demos --task transfer_cube --episodes 100 --seed-start 5000 --root
data/sim_unlabeled`` (and ``--task insertion``); stage 2 never reads its qpos.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from motus_policy.evaluation.stats import wilson_interval


def _run(cmd: list[str], log: Path) -> None:
    """Run one project command, its output appended to ``log``; raise on failure."""
    t0 = time.perf_counter()
    # headless MuJoCo rendering for the lockstep evaluation, as `make` exports it
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    env.setdefault("PYOPENGL_PLATFORM", "egl")
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
        f.write(f"[exit {rc} after {time.perf_counter() - t0:.0f} s]\n")
    if rc != 0:
        raise RuntimeError(f"{cmd[2] if len(cmd) > 2 else cmd} failed (exit {rc}); see {log}")


def _train(args, out: Path, data: str, extra: list[str], log: Path) -> Path:
    cmd = [sys.executable, "-m", "motus_policy.cli.train", "--data", data, "--out", str(out),
           "--batch-size", str(args.batch_size), "--val-every", "0", "--val-episodes", "0",
           "--save-every", "0", "--seed", str(args.train_seed),
           *(["--precompute-features"] if args.precompute else []), *extra]  # fmt: skip
    _run(cmd, log)
    return out / "final"


def _lockstep(args, ckpt: Path, out: Path, label: str, log: Path) -> dict:
    seeds = f"{args.seed_start}:{args.seed_start + args.seeds}"
    cmd = [sys.executable, "-m", "motus_policy.cli.eval", "lockstep", "--checkpoint", str(ckpt),
           "--task", "transfer_cube", "--episodes", str(args.seeds), "--seeds", seeds,
           "--label", label, "--out", str(out)]  # fmt: skip
    _run(cmd, log)
    s = json.loads((out / "sim_eval.json").read_text())
    return {"successes": int(s["successes"]), "episodes": int(s["episodes"])}


def linear_probe_r2(latent: list[np.ndarray], deltas: list[np.ndarray]) -> dict:
    """R^2 of a least-squares map (with bias) latent -> joint delta on held-out episodes.

    Fit on the first half of the episodes, scored on the second half.

    Args:
        latent: per episode float (T-1, 14) latent actions.
        deltas: per episode float (T-1, 14) true joint deltas.

    Returns:
        ``{"r2": pooled over dims, "r2_per_dim": [14] (None for a joint that does not move in
        the held-out episodes), "train_episodes", "test_episodes"}``.

    Raises:
        ValueError: fewer than 2 episodes.
    """
    if len(latent) < 2:
        raise ValueError(f"latent: expected at least 2 episodes, got {len(latent)}")
    half = len(latent) // 2

    def stack(xs):
        return np.concatenate(xs).astype(np.float64)

    x_tr, y_tr = stack(latent[:half]), stack(deltas[:half])
    x_te, y_te = stack(latent[half:]), stack(deltas[half:])
    w, *_ = np.linalg.lstsq(np.c_[x_tr, np.ones(len(x_tr))], y_tr, rcond=None)
    pred = np.c_[x_te, np.ones(len(x_te))] @ w
    ss_res = ((y_te - pred) ** 2).sum(axis=0)
    ss_tot = ((y_te - y_te.mean(axis=0)) ** 2).sum(axis=0)
    # a joint that (nearly) never moves in the held-out episodes has no variance to explain
    moving = ss_tot > 1e-8 * len(y_te)
    per_dim = np.where(moving, 1 - ss_res / np.maximum(ss_tot, 1e-12), np.nan)
    return {
        "r2": float(1 - ss_res.sum() / ss_tot.sum()),
        "r2_per_dim": [None if np.isnan(v) else round(float(v), 4) for v in per_dim],
        "train_episodes": half,
        "test_episodes": len(latent) - half,
    }


def _probe(args, vae: Path, labeled_root: str) -> dict:
    from motus_policy.latent_action.labels import LatentActionLabeler
    from motus_recorder.dataset import complete_episodes

    labeler = LatentActionLabeler(vae)
    lat, dq = [], []
    for task, i in complete_episodes([labeled_root])[: args.probe_episodes]:
        ep = task.read_episode(i, embedding=False)
        lat.append(labeler(ep.frames()))
        dq.append(np.diff(ep.qpos, axis=0))
    return linear_probe_r2(lat, dq)


def _fmt(r: dict) -> str:
    k, n = r["successes"], r["episodes"]
    lo, hi = wilson_interval(k, n)
    return f"{k}/{n} ({100 * k / n:.0f} %, CI {100 * lo:.0f}-{100 * hi:.0f} %)"


def main(argv: list[str] | None = None) -> int:
    """Run the experiment (see the module docstring); returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.latent_pretrain", description=__doc__)
    p.add_argument("--unlabeled", required=True, help="stage-2 data root (qpos ignored)")
    p.add_argument("--labeled", required=True, help="transfer_cube demonstrations (stage 3)")
    p.add_argument("--out", default="outputs/latent_pretrain")
    p.add_argument("--demos", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--seeds", type=int, default=50, help="held-out evaluation episodes")
    p.add_argument("--seed-start", type=int, default=100000)
    p.add_argument("--vae-steps", type=int, default=None, help="default 3000 (toy 200)")
    p.add_argument("--vae-labeled-episodes", type=int, default=10)
    p.add_argument("--stage2-steps", type=int, default=None, help="default 16000 (toy 300)")
    p.add_argument("--stage3-steps", type=int, default=None, help="default 16000 (toy 300)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--train-seed", type=int, default=0)
    p.add_argument("--probe-episodes", type=int, default=20)
    p.add_argument(
        "--no-precompute",
        dest="precompute",
        action="store_false",
        help="encode features per step instead of once up front (short runs)",
    )
    p.add_argument("--toy", action="store_true", help="tiny step counts: a smoke run only")
    p.add_argument(
        "--probe-only",
        action="store_true",
        help="steps 1 and 5 only: the latent-action VAE, its labels, the reconstruction picture "
        "and the linear probe (minutes on CPU; no stage 2 / 3 training, no closed loop)",
    )
    args = p.parse_args(argv)
    for name, full, toy in (("vae_steps", 3000, 200), ("stage2_steps", 16000, 300),
                            ("stage3_steps", 16000, 300)):  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, toy if args.toy else full)
    if args.toy:
        args.batch_size = min(args.batch_size, 8)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    t0 = time.perf_counter()
    vae = out / "la_vae"
    _run([sys.executable, "-m", "motus_policy.cli.train_latent_action", "--data", args.unlabeled,
          "--out", str(vae), "--max-steps", str(args.vae_steps), "--labeled-episodes",
          str(args.vae_labeled_episodes), "--label", "--quiet"], log)  # fmt: skip
    shutil.copy(vae / "reconstructions.png", out / "flow_reconstructions.png")
    probe = _probe(args, vae, args.labeled)
    if args.probe_only:
        results = {"toy": args.toy, "settings": dict(vars(args)), "probe": probe,
                   "wall_s": round(time.perf_counter() - t0)}  # fmt: skip
        (out / "results.json").write_text(json.dumps(results, indent=1))
        line = (f"Linear probe latent action -> joint delta, {probe['test_episodes']} held-out "
                f"episodes: R^2 = {probe['r2']:.3f}")  # fmt: skip
        (out / "results.md").write_text(line + "\n")
        print(line)
        return 0
    stage2 = _train(args, out / "stage2", args.unlabeled,
                    ["--stage", "2", "--config", "latent_action_tiny",
                     "--max-steps", str(args.stage2_steps)], log)  # fmt: skip
    rows = []
    for n in args.demos:
        row = {"demos": n}
        for arm, init in (("scratch", []), ("stage2", ["--init", str(stage2)])):
            ckpt = _train(args, out / f"stage3_{arm}_{n}", args.labeled,
                          ["--config", "tiny", "--max-episodes", str(n),
                           "--max-steps", str(args.stage3_steps), *init], log)  # fmt: skip
            row[arm] = _lockstep(args, ckpt, out / f"eval_{arm}_{n}", f"{arm} {n}", log)
        rows.append(row)
        (out / "results.json").write_text(json.dumps({"rows": rows, "probe": probe}, indent=1))
    results = {
        "toy": args.toy,
        "settings": {k: v for k, v in vars(args).items()},
        "probe": probe,
        "rows": rows,
        "wall_s": round(time.perf_counter() - t0),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [
        f"Stage 3 on N transfer_cube demos, lockstep, {args.seeds} held-out seeds"
        + (" (TOY run: step counts far too small to mean anything)" if args.toy else ""),
        "",
        "| demos | from scratch | from stage 2 |",
        "|---|---|---|",
        *[f"| {r['demos']} | {_fmt(r['scratch'])} | {_fmt(r['stage2'])} |" for r in rows],
        "",
        f"Linear probe latent action -> joint delta, held-out episodes: R^2 = {probe['r2']:.3f}",
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
