"""Resumable training checkpoints.

Layout of one checkpoint (written into ``<name>.tmp`` and renamed, so a crash never leaves a
partial checkpoint under a real name; ``latest`` is replaced atomically after the rename)::

    <out>/checkpoints/step_00000500/
        policy/              MotusPolicy.save_pretrained folder: model.safetensors (network +
                             frozen encoders), config.json, stats.json, tokenizers; loadable by
                             the policy backend as is
        training_state.pt    step, epoch, batch position in the epoch, world size, batch size,
                             optimizer (not with fsdp) + LambdaLR state dicts, TrainConfig,
                             strategy
        sharded/             fsdp only: torch.distributed.checkpoint (DCP) folder of the fp32
                             master weights and the AdamW state, one file per rank
                             (:mod:`motus_policy.training.fsdp`)
        rng_rank<r>.pt       per-rank RNG states: python, numpy, torch CPU, CUDA
    <out>/checkpoints/latest   text file naming the newest complete checkpoint

The training noise is a function of (seed, step, sample slot) (``trainer.sample_noise``), so it
needs no stored generator state.

Resuming with the same world size and batch size restores the exact data position; otherwise
training continues at the start of the next epoch (logged).
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from motus_policy.model.policy import MotusPolicy
from motus_policy.model.pretrained import PretrainedParts, save_pretrained

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


def rng_state() -> dict[str, Any]:
    """Every global RNG the training loop may touch (python, numpy, torch CPU, CUDA)."""
    out = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state` (a stored ``noise`` entry of older checkpoints is unused)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after ``step`` steps."""
    return f"step_{step:08d}"


def begin_checkpoint(ckpt_root: Path, step: int) -> Path:
    """Create the empty ``<name>.tmp`` folder of the checkpoint after ``step`` (rank 0)."""
    ckpt_root.mkdir(parents=True, exist_ok=True)
    tmp = ckpt_root / (checkpoint_name(step) + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def save_policy(policy: MotusPolicy, folder: Path, model: torch.nn.Module | None = None) -> Path:
    """``policy.save_pretrained(folder)``, optionally with another network module.

    Args:
        policy: encoders, configs, stats and (unless ``model`` is given) the network.
        folder: new folder.
        model: a ``MotusModel`` to save instead of ``policy.model`` (the gathered copy of an
            FSDP-sharded network, :func:`motus_policy.training.fsdp.unsharded_copy`).
    """
    if model is None:
        return policy.save_pretrained(folder)
    parts = PretrainedParts(
        model=model,
        vae=policy.vae,
        text_encoder=policy.text_encoder,
        vlm=policy.vlm,
        policy_config=dataclasses.asdict(policy.config),
        stats=policy.stats.to_json(policy.config.stats_key),
    )
    return save_pretrained(parts, folder)


def save_checkpoint(
    ckpt_root: Path,
    policy: MotusPolicy,
    optimizer: torch.optim.Optimizer | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    position: TrainingPosition,
    extra: dict[str, Any],
    rng_by_rank: list[dict[str, Any]],
    keep_last: int,
    tmp: Path | None = None,
    model: torch.nn.Module | None = None,
) -> Path:
    """Write one checkpoint (rank 0 only; ``rng_by_rank`` gathered from every rank).

    Args:
        ckpt_root: ``<out>/checkpoints``.
        policy: network + encoders + stats (saved with ``save_pretrained``).
        optimizer: its state dict is saved; None when it lives in the ``sharded/`` folder.
        scheduler: its state dict is saved.
        position: step / epoch / batch position after this step.
        extra: JSON-safe metadata (world size, batch size, train config).
        rng_by_rank: :func:`rng_state` of each rank, index = rank.
        keep_last: older ``step_*`` folders beyond this many are deleted.
        tmp: the folder from :func:`begin_checkpoint` when other ranks already wrote into it
            (fsdp); None creates it here.
        model: network to save instead of ``policy.model`` (see :func:`save_policy`).

    Returns:
        The checkpoint folder.
    """
    final = ckpt_root / checkpoint_name(position.step)
    if tmp is None:
        tmp = begin_checkpoint(ckpt_root, position.step)
    save_policy(policy, tmp / POLICY_DIR, model)
    state = {"position": vars(position).copy(), "scheduler": scheduler.state_dict(), **extra}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    torch.save(state, tmp / STATE_FILE)
    for rank, rng in enumerate(rng_by_rank):
        torch.save(rng, tmp / f"rng_rank{rank}.pt")
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
