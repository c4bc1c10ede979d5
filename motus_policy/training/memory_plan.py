"""Per-GPU memory plan of stage-3 fine-tuning, computed from the network built on the meta device.

::

    python -m motus_policy.training.memory_plan --config aloha_agilex_2 --gpus 1 4 8

prints, for each GPU count and each data-parallel layout, with and without activation
checkpointing, the bytes per trainable parameter per rank and the per-rank total, and which layout
``--strategy auto`` picks (:func:`choose_strategy`, used by the trainer).

Terms (N = trainable parameters, P = GPUs, counted on
:func:`motus_policy.model.inspect.build_meta_model`; fp32 master weights, fp32 gradients,
AdamW's two fp32 moments, docs/motus.md §2.1):

* **model states**: ``ddp`` 16 N per rank (4 weight + 4 gradient + 8 AdamW); ``zero2`` (FSDP2 with
  ``reshard_after_forward=False``, the ZeRO-2-like layout) and ``fsdp`` (full shard, ZeRO-3)
  16 N / P; ``fsdp+offload`` 0 on the GPU (16 N / P in host memory). This is the figure
  ``tests/training/test_fsdp.py`` checks against the storages a rank really holds.
* **buffers**: ``ddp`` 4 N gradient buckets (DDP's default, ``gradient_as_bucket_view=False``)
  plus 2 N for the bf16 weight copies autocast keeps during the step; ``zero2`` 2 N (every layer
  stays gathered in bf16 from forward to backward) plus the gathering of two layers' gradients
  (bf16 + fp32 reduce buffer); ``fsdp`` two layers gathered in bf16 (the running one and the
  prefetched one) plus their gradients; the root unit (everything outside the MoT layers) is
  gathered in fp32 for the whole step, with its gradients, in every FSDP layout.
* **activations** (estimate): per sample, layer and token of a stream of width D and FFN width F,
  ``68 D + 4 F`` bytes: the tensors ``mot_layer`` (model/joint_attention.py) keeps for the
  backward pass, counted one by one (fp32 norm inputs / modulated inputs / gated outputs, bf16
  projections, q and k after RoPE in fp32, attention inputs and output, the FFN's two inner
  activations), plus the cross-attention K/V of the 512 T5 rows for the video stream. With
  activation checkpointing only each layer's inputs are kept (fp32 video and action streams, bf16
  und stream) plus one layer's full set during its recomputation.
* **frozen encoders** (full-size presets, docs/motus.md §1.1): Qwen3-VL 2.13 B in bf16, the Wan2.2
  VAE 704.7 M in fp32, and the UMT5-XXL encoder (≈ 5.7 B, bf16) unless the dataset brings its
  embeddings (``--text-source dataset``); tiny presets: not counted.

A layout fits when its total is at most ``usable_fraction`` (0.9) of the GPU's memory; the rest is
left to the CUDA context, NCCL buffers, the allocator's fragmentation and kernels' workspaces.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from motus_policy.model.configuration_motus import PRESETS, MotusConfig
from motus_policy.model.inspect import build_meta_model
from motus_policy.model.modeling_motus import MotusModel

LAYOUTS = ("ddp", "zero2", "fsdp", "fsdp+offload")
"""Data-parallel layouts of the plan (``zero2`` is listed for comparison; ``auto`` never picks
it: it saves the per-layer gathering of ``fsdp`` but costs 2 N per rank)."""

USABLE_FRACTION = 0.9
GB = 1e9

# docs/motus.md §1.1: frozen encoder sizes of the full-size presets
VLM_PARAMS = 2.13e9
VAE_PARAMS = 704.7e6
T5_PARAMS = 5.7e9


@dataclass(frozen=True)
class ModelSizes:
    """Parameter counts and token counts the plan needs.

    Attributes:
        trainable: N, every parameter of ``MotusModel`` (all trained in stage 3).
        per_layer: parameters of one MoT layer (layer i of the three experts), the largest one.
        root: parameters outside the MoT layers (embeddings, heads, state encoder, adapter).
        streams: per stream (video, action, und): (tokens per sample, width D, FFN width F).
        text_rows: T5 rows the video stream cross-attends to.
        num_layers: MoT layers.
        full_size: the preset has the full-size encoders (text_dim 4096).
    """

    trainable: int
    per_layer: int
    root: int
    streams: tuple[tuple[int, int, int], ...]
    text_rows: int
    num_layers: int
    full_size: bool


def model_sizes(config: MotusConfig, und_tokens: int = 480) -> ModelSizes:
    """Counts of ``config``'s network, built on the meta device.

    Args:
        config: the network's config.
        und_tokens: VLM prompt tokens per sample (docs/motus.md §7.1: ≈ 480 with the recorded
            composite image as in the official training, ≈ 140 with a 384 x 320 image).
    """
    model: MotusModel = build_meta_model(config)
    total = sum(p.numel() for p in model.parameters())
    blocks = (
        model.video_model.wan_model.blocks,
        model.action_expert.blocks,
        model.und_expert.blocks,
    )
    layers = [
        sum(p.numel() for b in blocks for p in b[i].parameters()) for i in range(config.num_layers)
    ]
    streams = (
        (config.num_video_tokens, config.wan_dim, config.wan_ffn_dim),
        (config.num_action_tokens, config.action_hidden_size, config.action_ffn_dim),
        (und_tokens, config.und_hidden_size, config.und_ffn_dim),
    )
    return ModelSizes(
        trainable=total,
        per_layer=max(layers),
        root=total - sum(layers),
        streams=streams,
        text_rows=config.text_len,
        num_layers=config.num_layers,
        full_size=config.text_dim == 4096,
    )


@dataclass(frozen=True)
class PlanRow:
    """One layout's per-rank memory (bytes).

    Attributes:
        layout: one of :data:`LAYOUTS`.
        gpus: P.
        activation_checkpointing: per-layer recomputation on.
        state_bytes_per_param: model-state bytes per trainable parameter on each GPU.
        model_states: weights + gradients + AdamW state on the GPU.
        host_states: the same in host memory (``fsdp+offload``).
        buffers: gathered layers / root, gradient buckets, autocast copies.
        activations: kept for the backward pass (estimate).
        frozen: frozen encoders.
        total: sum of the GPU terms.
        fits: ``total`` <= usable fraction of the GPU memory.
    """

    layout: str
    gpus: int
    activation_checkpointing: bool
    state_bytes_per_param: float
    model_states: float
    host_states: float
    buffers: float
    activations: float
    frozen: float
    total: float
    fits: bool


def activation_bytes(sizes: ModelSizes, batch: int, checkpointing: bool) -> float:
    """Activations kept per rank for one micro-batch of ``batch`` samples (see module doc)."""
    per_layer = sum(n * (68 * d + 4 * f) for n, d, f in sizes.streams)
    per_layer += 4 * sizes.text_rows * sizes.streams[0][1]  # bf16 cross-attention K and V
    if not checkpointing:
        return batch * sizes.num_layers * per_layer
    (nv, dv, _), (na, da, _), (nu, du, _) = sizes.streams
    inputs = 4 * nv * dv + 4 * na * da + 2 * nu * du
    return batch * (sizes.num_layers * inputs + per_layer)


def frozen_bytes(sizes: ModelSizes, t5_on_gpu: bool) -> float:
    """Frozen encoders on each GPU (full-size presets; 0 for tiny ones)."""
    if not sizes.full_size:
        return 0.0
    return 2 * VLM_PARAMS + 4 * VAE_PARAMS + (2 * T5_PARAMS if t5_on_gpu else 0.0)


def plan_row(
    sizes: ModelSizes,
    layout: str,
    gpus: int,
    checkpointing: bool,
    batch: int = 8,
    gpu_bytes: float = 80 * GB,
    t5_on_gpu: bool = True,
) -> PlanRow:
    """Per-rank memory of one layout.

    Raises:
        ValueError: unknown layout, or ``gpus`` / ``batch`` < 1.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if gpus < 1 or batch < 1:
        raise ValueError(f"gpus / batch: expected >= 1, got {gpus} / {batch}")
    n, layer, root = sizes.trainable, sizes.per_layer, sizes.root
    gathered_layers = 2 * (2 + 2 + 4) * layer  # two layers: bf16 weights, bf16 grads, fp32 reduce
    root_gathered = (4 + 4) * root  # fp32 weights + grads of the root unit
    host = 0.0
    if layout == "ddp":
        per_param = 16.0
        buffers = (4 + 2) * n
    elif layout == "zero2":
        per_param = 16.0 / gpus
        buffers = 2 * n + gathered_layers + root_gathered
    elif layout == "fsdp":
        per_param = 16.0 / gpus
        buffers = gathered_layers + root_gathered
    else:
        per_param = 0.0
        host = 16.0 * n / gpus
        buffers = gathered_layers + root_gathered
    states = per_param * n
    acts = activation_bytes(sizes, batch, checkpointing)
    frozen = frozen_bytes(sizes, t5_on_gpu)
    total = states + buffers + acts + frozen
    return PlanRow(
        layout, gpus, checkpointing, per_param, states, host, buffers, acts, frozen, total,
        total <= USABLE_FRACTION * gpu_bytes,
    )  # fmt: skip


def pick(
    sizes: ModelSizes,
    gpus: int,
    checkpointing: bool,
    batch: int,
    gpu_bytes: float,
    t5_on_gpu: bool = True,
) -> tuple[str, str]:
    """The layout ``--strategy auto`` takes: the first of ddp, fsdp, fsdp+offload that fits.

    Returns:
        ``(layout, reason)``; fsdp+offload with a reason saying so when nothing fits.
    """
    rows = {}
    for layout in ("ddp", "fsdp", "fsdp+offload"):
        row = plan_row(sizes, layout, gpus, checkpointing, batch, gpu_bytes, t5_on_gpu)
        rows[layout] = row
        if row.fits:
            return layout, (
                f"memory plan: {row.total / GB:.1f} GB per GPU of "
                f"{USABLE_FRACTION * gpu_bytes / GB:.1f} GB usable"
            )
    row = rows["fsdp+offload"]
    return "fsdp+offload", (
        f"memory plan: nothing fits ({row.total / GB:.1f} GB per GPU with fsdp+offload, "
        f"{USABLE_FRACTION * gpu_bytes / GB:.1f} GB usable); lower --batch-size or add "
        f"--activation-checkpointing"
    )


def choose_strategy(
    model_config: MotusConfig, train_config, world_size: int, device: torch.device
) -> tuple[str, bool, str]:
    """Resolve ``TrainConfig.strategy`` / ``cpu_offload`` for this run.

    ``ddp`` / ``fsdp`` are taken as given. ``auto``: on CPU, ddp (the data-parallel replica, or a
    single process); on CUDA the first layout of :func:`pick` that fits the GPU's memory for this
    world size, batch size and activation-checkpointing setting (``cpu_offload`` forces
    fsdp+offload).

    Args:
        model_config: the network's config.
        train_config: the :class:`~motus_policy.training.config.TrainConfig`.
        world_size: processes.
        device: this rank's device.

    Returns:
        ``(strategy in {"ddp", "fsdp"}, cpu_offload, reason for the log)``.
    """
    cfg = train_config
    if cfg.strategy != "auto":
        return cfg.strategy, cfg.cpu_offload, "requested"
    if cfg.cpu_offload:
        return "fsdp", True, "cpu_offload requested"
    if device.type != "cuda":
        return "ddp", False, "CPU: data-parallel replicas"
    sizes = model_sizes(model_config)
    gpu_bytes = float(torch.cuda.get_device_properties(device).total_memory)
    layout, why = pick(
        sizes, world_size, cfg.activation_checkpointing, cfg.batch_size, gpu_bytes,
        t5_on_gpu=cfg.text_source != "dataset",
    )  # fmt: skip
    return layout.split("+")[0], layout.endswith("offload"), why


def format_table(
    sizes: ModelSizes,
    gpus: Sequence[int],
    batch: int = 8,
    gpu_bytes: float = 80 * GB,
    t5_on_gpu: bool = True,
) -> str:
    """Markdown table of every layout for each GPU count, then the launcher's pick per count."""
    lines = [
        "| GPUs | layout | act. ckpt | state B/param/GPU | states GB | buffers GB | "
        "activations GB | frozen GB | total GB/GPU | fits |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in gpus:
        for layout in LAYOUTS:
            for ac in (False, True):
                r = plan_row(sizes, layout, p, ac, batch, gpu_bytes, t5_on_gpu)
                states = f"{r.model_states / GB:.1f}"
                if r.host_states:
                    states += f" (+{r.host_states / GB:.1f} host)"
                lines.append(
                    f"| {p} | {layout} | {'on' if ac else 'off'} | {r.state_bytes_per_param:.2f} "
                    f"| {states} | {r.buffers / GB:.1f} | {r.activations / GB:.1f} "
                    f"| {r.frozen / GB:.1f} | {r.total / GB:.1f} | {'yes' if r.fits else 'no'} |"
                )
    lines.append("")
    for p in gpus:
        for ac in (False, True):
            layout, why = pick(sizes, p, ac, batch, gpu_bytes, t5_on_gpu)
            lines.append(
                f"- {p} GPU(s), activation checkpointing {'on' if ac else 'off'}: "
                f"--strategy auto picks {layout} ({why})"
            )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    p = argparse.ArgumentParser(
        prog="python -m motus_policy.training.memory_plan",
        description="Per-GPU memory of stage-3 fine-tuning for each data-parallel layout "
        "(ddp, zero2, fsdp, fsdp+offload), with and without activation checkpointing, and the "
        "layout --strategy auto picks.",
    )
    p.add_argument("--config", required=True, choices=sorted(PRESETS), metavar="PRESET")
    p.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8], help="GPU counts")
    p.add_argument("--batch-size", type=int, default=8, help="samples per GPU and micro-batch")
    p.add_argument("--gpu-gb", type=float, default=80.0, help="memory of one GPU [GB = 1e9 B]")
    p.add_argument(
        "--und-tokens", type=int, default=480, help="VLM prompt tokens per sample (docs §7.1)"
    )
    p.add_argument(
        "--text-source-dataset",
        action="store_true",
        help="the dataset brings its UMT5 embeddings: the T5 encoder stays off the GPU",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Print the table; returns the exit status."""
    args = build_parser().parse_args(argv)
    if min(args.gpus) < 1 or args.batch_size < 1 or args.gpu_gb <= 0:
        build_parser().error("--gpus, --batch-size and --gpu-gb must be positive")
    sizes = model_sizes(MotusConfig.from_preset(args.config), args.und_tokens)
    head = (
        f"{args.config}: N = {sizes.trainable:,} trainable parameters, largest MoT layer "
        f"{sizes.per_layer:,}, root unit {sizes.root:,}; batch {args.batch_size} per GPU, "
        f"{args.gpu_gb:g} GB GPUs, {USABLE_FRACTION:.0%} usable"
    )
    table = format_table(
        sizes, args.gpus, args.batch_size, args.gpu_gb * GB, not args.text_source_dataset
    )
    sys.stdout.write(head + "\n\n" + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
