"""Resumable training checkpoints.

Layout of one checkpoint (written into ``<name>.tmp`` and renamed, so a crash never leaves a
partial checkpoint under a real name; ``latest`` is replaced atomically after the rename)::

    <out>/checkpoints/step_00000500/
        policy/              MotusPolicy.save_pretrained folder: model.safetensors (network +
                             frozen encoders), config.json, stats.json, tokenizers; loadable by
                             the policy backend as is
        training_state.pt    step, epoch, batch position in the epoch, world size, batch size,
                             optimizer + LambdaLR state dicts, TrainConfig
        rng_rank<r>.pt       per-rank RNG states: python, numpy, torch CPU, CUDA, noise generator
    <out>/checkpoints/latest   text file naming the newest complete checkpoint

Resuming with the same world size and batch size restores the exact data position; otherwise
training continues at the start of the next epoch (logged).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motus_policy.model.policy import MotusPolicy

STATE_FILE = "training_state.pt"
POLICY_DIR = "policy"


@dataclass
class TrainingPosition:
    """Where training stands after ``step`` optimiser steps.

    Attributes:
        step: completed optimiser steps.
        epoch: epoch of the next batch.
        batch_in_epoch: batches of that epoch already consumed (per rank).
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0


def rng_state(noise: torch.Generator) -> dict[str, Any]:
    """Every RNG the training loop may touch."""
    out = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "noise": noise.get_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any], noise: torch.Generator) -> None:
    """Inverse of :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    noise.set_state(state["noise"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` steps."""
    return f"step_{step:08d}"


def save_checkpoint(
    ckpt_root: Path,
    policy: MotusPolicy,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    position: TrainingPosition,
    extra: dict[str, Any],
    rng_by_rank: list[dict[str, Any]],
    keep_last: int,
) -> Path:
    """Write one checkpoint (rank 0 only; ``rng_by_rank`` gathered from every rank).

    Args:
        ckpt_root: ``<out>/checkpoints``.
        policy: network + encoders + stats (saved with ``save_pretrained``).
        optimizer: its state dict is saved.
        scheduler: its state dict is saved.
        position: step / epoch / batch position after this step.
        extra: JSON-safe metadata (world size, batch size, train config).
        rng_by_rank: :func:`rng_state` of each rank, index = rank.
        keep_last: older ``step_*`` folders beyond this many are deleted.

    Returns:
        The checkpoint folder.
    """
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / checkpoint_name(position.step)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    policy.save_pretrained(tmp / POLICY_DIR)
    torch.save(
        {
            "position": vars(position).copy(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            **extra,
        },
        tmp / STATE_FILE,
    )
    for rank, state in enumerate(rng_by_rank):
        torch.save(state, tmp / f"rng_rank{rank}.pt")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    latest_tmp = ckpt_root / "latest.tmp"
    latest_tmp.write_text(final.name)
    latest_tmp.replace(ckpt_root / "latest")
    done = sorted(p for p in ckpt_root.glob("step_*") if not p.name.endswith(".tmp"))
    for old in done[:-keep_last]:
        shutil.rmtree(old)
    return final


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder, or the latest one of a run folder / checkpoints folder.

    Raises:
        FileNotFoundError: nothing resumable at ``path``.
    """
    p = Path(path)
    for root in (p, p / "checkpoints"):
        if (root / STATE_FILE).is_file():
            return root
        if (root / "latest").is_file():
            cand = root / (root / "latest").read_text().strip()
            if (cand / STATE_FILE).is_file():
                return cand
    raise FileNotFoundError(f"{p}: no {STATE_FILE} and no checkpoints/latest to resume from")


def load_training_state(ckpt: Path, rank: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``(training_state, rng_state of this rank or None)`` of a checkpoint folder."""
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
    rng_path = ckpt / f"rng_rank{rank}.pt"
    rng = torch.load(rng_path, weights_only=False) if rng_path.is_file() else None
    return state, rng


def describe(ckpt: Path) -> str:
    """One line about a checkpoint (for logs)."""
    state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)
    return json.dumps({"checkpoint": str(ckpt), **state["position"]})


def export_final(checkpoint: Path, final: Path) -> Path:
    """Copy a checkpoint's ``policy/`` folder to ``final`` (via ``<final>.tmp`` + rename)."""
    tmp = final.with_name(final.name + ".tmp")
    for p in (tmp, final):
        if p.exists():
            shutil.rmtree(p)
    shutil.copytree(checkpoint / POLICY_DIR, tmp)
    tmp.rename(final)
    return final


def truncate_log(path: Path, step: int) -> None:
    """Drop rows with ``"step" > step`` from a JSON-lines log (atomic rewrite).

    A run that crashed after its last checkpoint logged steps that the resumed run redoes.
    """
    if not path.is_file():
        return
    rows = path.read_text().splitlines()
    keep = [r for r in rows if r.strip() and json.loads(r)["step"] <= step]
    if len(keep) != len(rows):
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(r + "\n" for r in keep))
        tmp.replace(path)
