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
* **buffers**, as they stand at the step's peak, which falls in the backward pass of the last MoT
  layer while every activation is still alive (measured: the profiler's peak is in that layer's
  attention backward): ``ddp`` 4 N gradient buckets when several processes run (DDP's default,
  ``gradient_as_bucket_view=False``; a single process is not wrapped, no buckets) plus, with
  mixed precision, 2 N for the bf16 weight copies autocast keeps during the step; ``zero2`` every
  layer gathered (2 N in bf16) plus the running layer's gradients; ``fsdp`` two layers gathered
  (the running one and the one prefetched for the next backward) and the running layer's
  unsharded gradients, bf16 with mixed precision and fp32 without (CPU). The reduce-scatter
  buffers come after a layer's backward, when its activations (larger) are freed, so they do not
  add to the peak. The root unit (everything outside the MoT layers) is gathered in fp32 for the
  whole step, with its gradients, in every FSDP layout.
* **activations** (estimate, :func:`activation_bytes`): the tensors autograd keeps for the backward
  pass, counted site by site in ``mot_layer`` (model/joint_attention.py) and the expert methods it
  calls, per sample, layer and token of each stream (width D, FFN width F) and of the joint
  sequence (head space Dh = heads x head_dim, the width every stream's q / k / v and attention
  output have, the und stream's included), plus the T5 rows' cross-attention K/V, the
  batched-matmul copies of the fused action / und QKV weights, and the work outside the layers
  (VLM adapter, text embedding, patch embedding, output heads and loss). With mixed precision
  (CUDA: bf16 autocast) projections, attention tensors and FFN inner activations are bf16 and
  each projection of an fp32 tensor keeps its own bf16 copy of the input; without (CPU) all are
  fp32 and the projections share their input. With activation checkpointing each layer keeps only
  its inputs (fp32 video and action streams, the und stream in bf16 under autocast) plus one
  layer's full set during its recomputation. Checked against the measured per-rank peak of the
  tiny preset on CPU (``tests/training/test_memory_peak.py``, PyTorch's memory profiler,
  :mod:`motus_policy.training.memory_peak`): the earlier per-token figure ``68 D + 4 F`` of the
  stream width missed that the und stream's q / k / v and attention output live in the head space
  (3072 wide at full size, not the und width 512), and assumed bf16 on every device.
* **frozen encoders** (full-size presets, docs/motus.md §1.1): Qwen3-VL 2.13 B in bf16, the Wan2.2
  VAE 704.7 M in fp32, and the UMT5-XXL encoder (≈ 5.7 B, bf16) unless the dataset brings its
  embeddings (``--text-source dataset``); tiny presets: not counted.

A layout fits when its total is at most ``usable_fraction`` (0.9) of the GPU's memory; the rest is
left to the CUDA context, NCCL buffers, the allocator's fragmentation and kernels' workspaces.
"""

from __future__ import annotations

import argparse
import math
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
        num_heads: attention heads (the joint attention's head space is ``num_heads * head_dim``).
        head_dim: width of one head.
        text_dim: T5 width of the text rows the text embedding takes.
        vlm_width: VLM hidden width the und adapter takes.
        latent_elements: VAE latent values of one sample (C x T' x h x w).
    """

    trainable: int
    per_layer: int
    root: int
    streams: tuple[tuple[int, int, int], ...]
    text_rows: int
    num_layers: int
    full_size: bool
    num_heads: int
    head_dim: int
    text_dim: int
    vlm_width: int
    latent_elements: int

    @property
    def head_width(self) -> int:
        """Dh = heads x head_dim: the q / k / v width of every stream (the Wan width)."""
        return self.num_heads * self.head_dim


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
        num_heads=config.num_heads,
        head_dim=config.head_dim,
        text_dim=config.text_dim,
        vlm_width=config.vlm_hidden_size,
        latent_elements=math.prod(config.latent_shape),
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


def layer_activation_bytes(sizes: ModelSizes, mixed_precision: bool = True) -> float:
    """Bytes one MoT layer keeps for the backward pass, per sample (see the module doc).

    Counted site by site in ``mot_layer`` and the expert methods (video_expert.py,
    action_expert.py, und_expert.py), with fp32 = 4 bytes and the compute dtype ``c`` = 2 (bf16
    autocast) or 4 (fp32, CPU). "norm" below is a LayerNorm / RMSNorm keeping its input and two
    (one for RMSNorm) fp32 statistics per token; a projection of an fp32 tensor keeps that tensor
    (fp32) or, under autocast, its own bf16 copy per projection.

    Per video token (width D, FFN F, head space H): pre-attention norm input, norm output and the
    modulated input of q / k / v (3 bf16 copies under autocast); the q and k projections (c H each,
    kept by the q / k RMSNorm) and their fp32 normed outputs that RoPE reads; the gated
    out-projection output (fp32; under autocast also the bf16 copy of its input); the
    cross-attention's norm input, its projected input (c D), q projection, normed q, the kernel's
    q and output (c H each) and log-sum-exp; the FFN's norm input, norm output, modulated input,
    two inner activations (c F each) and fp32 output that the gate multiplies. Action tokens: the
    same without cross-attention, with one fused q / k / v projection (3 c H). Und tokens: norm
    input and projected input, fused q / k / v, normed q and k, the out-projection input copy under
    autocast, and the plain FFN (norm input, projected input, two inner activations). Joint
    sequence: the attention kernel's q, k, v, output (c H each) and log-sum-exp per head. Text
    rows: k projection, normed k, the kernel's k and v (under autocast also the two bf16 copies of
    the context). Weights: the batched-matmul copies of the fused action and und q / k / v weights
    (c x 3 D H each).
    """
    f = 4.0
    c = 2.0 if mixed_precision else 4.0
    cast = c if mixed_precision else 0.0  # bf16 copy of a projection's input under autocast

    def proj_in(width: int, projections: int) -> float:
        return projections * c * width if mixed_precision else f * width

    (nv, dv, fv), (na, da, fa), (nu, du, fu) = sizes.streams
    h, heads = sizes.head_width, sizes.num_heads
    qk_norm = 2 * (f * h + f)  # normed q and k (fp32) and their RMSNorm statistics
    video = (
        2 * f * dv + 2 * f + proj_in(dv, 3)  # pre-attention norm, modulated input
        + 2 * c * h + qk_norm  # q, k projections and their norms
        + f * dv + cast * h  # gated out-projection
        + f * dv + 2 * f + c * dv + c * h + f * h + f + 2 * c * h + f * heads  # cross-attention
        + 3 * f * dv + 2 * f + proj_in(dv, 1) + 2 * c * fv  # gated FFN
    )  # fmt: skip
    action = (
        2 * f * da + 2 * f + proj_in(da, 1) + 3 * c * h + qk_norm
        + f * da + cast * h
        + 3 * f * da + 2 * f + proj_in(da, 1) + 2 * c * fa
    )  # fmt: skip
    und = (
        f * du + 2 * f + c * du + 3 * c * h + qk_norm
        + cast * h
        + f * du + 2 * f + c * du + 2 * c * fu
    )  # fmt: skip
    joint = (nv + na + nu) * (4 * c * h + f * heads)
    text = sizes.text_rows * ((3 * c + f) * h + f + 2 * cast * h)
    weights = c * 3 * h * (da + du)
    return nv * video + na * action + nu * und + joint + text + weights


def outside_activation_bytes(sizes: ModelSizes, mixed_precision: bool = True) -> float:
    """Bytes kept for backward outside the MoT layers, per sample (see :func:`activation_bytes`).

    VLM adapter (its input and two linear / SiLU output pairs of the und width), text embedding
    (input rows, two inner activations and the projected context of the video width), patch
    embedding (its latent input), the video and action output heads (norm input, statistics,
    norm output, modulated input, fp32) and the video loss (prediction and target, latent size).
    """
    f = 4.0
    c = 2.0 if mixed_precision else 4.0
    (nv, dv, _), (na, da, _), (nu, du, _) = sizes.streams
    adapter = nu * (c * sizes.vlm_width + 4 * c * du)
    text = sizes.text_rows * (c * sizes.text_dim + 3 * c * dv)
    heads = nv * (3 * f * dv + 2 * f) + na * (3 * f * da + 2 * f)
    latents = c * sizes.latent_elements + 2 * f * sizes.latent_elements
    return adapter + text + heads + latents


def activation_bytes(
    sizes: ModelSizes, batch: int, checkpointing: bool, mixed_precision: bool = True
) -> float:
    """Activations kept per rank for one micro-batch of ``batch`` samples (see the module doc).

    Args:
        sizes: from :func:`model_sizes`.
        batch: samples per micro-batch and rank.
        checkpointing: per-layer activation checkpointing on.
        mixed_precision: bf16 autocast (CUDA); False: everything fp32 (CPU).

    Returns:
        Bytes: ``batch x (layers x one layer + outside)`` without checkpointing; with it,
        ``batch x (layers x the layer inputs + one layer + outside)``.
    """
    layer = layer_activation_bytes(sizes, mixed_precision)
    outside = outside_activation_bytes(sizes, mixed_precision)
    if not checkpointing:
        return batch * (sizes.num_layers * layer + outside)
    (nv, dv, _), (na, da, _), (nu, du, _) = sizes.streams
    # fp32 video / action streams; the und stream has the VLM adapter's output dtype
    inputs = 4 * (nv * dv + na * da) + (2 if mixed_precision else 4) * nu * du
    return batch * (sizes.num_layers * inputs + layer + outside)


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
    mixed_precision: bool = True,
) -> PlanRow:
    """Per-rank memory of one layout (terms in the module doc).

    Args:
        sizes: from :func:`model_sizes`.
        layout: one of :data:`LAYOUTS`.
        gpus: P, processes (one per GPU).
        checkpointing: per-layer activation checkpointing.
        batch: samples per micro-batch and rank.
        gpu_bytes: memory of one GPU [bytes] (for ``fits``).
        t5_on_gpu: the frozen T5 encoder is on the GPU (full-size presets).
        mixed_precision: bf16 autocast and bf16 layer gathering (the CUDA path); False: the CPU
            path, everything fp32.

    Raises:
        ValueError: unknown layout, or ``gpus`` / ``batch`` < 1.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if gpus < 1 or batch < 1:
        raise ValueError(f"gpus / batch: expected >= 1, got {gpus} / {batch}")
    n, layer, root = sizes.trainable, sizes.per_layer, sizes.root
    low = 2 if mixed_precision else 4  # bytes of a gathered layer weight / gradient
    # at the step's peak (the last layer's backward, every activation still alive): the running
    # and the prefetched layer gathered, the running layer's unsharded gradients
    gathered_layers = (2 * low + low) * layer
    root_gathered = (4 + 4) * root  # fp32 weights + grads of the root unit
    autocast_copies = 2 * n if mixed_precision else 0  # bf16 weight copies autocast caches
    host = 0.0
    if layout == "ddp":
        per_param = 16.0
        buckets = 4 * n if gpus > 1 else 0  # one process runs unwrapped (no DDP buckets)
        buffers = buckets + autocast_copies
    elif layout == "zero2":
        per_param = 16.0 / gpus
        buffers = low * n + low * layer + root_gathered  # every layer stays gathered
    elif layout == "fsdp":
        per_param = 16.0 / gpus
        buffers = gathered_layers + root_gathered
    else:
        per_param = 0.0
        host = 16.0 * n / gpus
        buffers = gathered_layers + root_gathered
    states = per_param * n
    acts = activation_bytes(sizes, batch, checkpointing, mixed_precision)
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
