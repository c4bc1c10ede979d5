r"""Stage-3 training steps of the network on random weights and random encoder features.

``python -m benchmarks.train_step --config tiny|aloha_agilex_2|ac_one|robotwin --device cpu|cuda
[--strategy fsdp|ddp] [--cpu-offload] [--activation-checkpointing] [--batch-size 1] [--steps 2]
[--profile-memory]``

Under ``torchrun`` every process takes part (``--strategy fsdp`` shards over them). The step is
the trainer's (``motus_policy.training.trainer``): the loss module, per-sample noise, bf16
autocast on CUDA, backward, clipping at 0.5, AdamW with the official settings (docs/motus.md
§2.1); with ``fsdp`` one FSDP2 unit per MoT layer (``motus_policy.training.fsdp``). The frozen
encoders are left out: their outputs (VAE latents, T5 states, VLM states) are random tensors of
the shapes the network takes, so the figures are those of the trainable part plus its
activations. Full-size models are refused on CPU without ``--force``.

Printed (rank 0): seconds per step, peak memory (``torch.cuda.max_memory_allocated`` on GPU; the
model-state bytes this rank holds on CPU), the memory plan's per-GPU figure for the same layout
without the frozen encoders (``motus_policy.training.memory_plan``), and the losses. With
``--profile-memory`` the last step runs under PyTorch's memory profiler
(``motus_policy.training.memory_peak``: every tensor of the step, by category) and a table of the
plan's per-rank terms against the measured peak of each rank is printed; the plan is taken with
mixed precision on CUDA and in fp32 on CPU, as the step runs. Without ``--strategy`` given,
``--strategy fsdp`` is used; ``ddp`` in one process runs the loss module unwrapped, as the
trainer does.

CPU, tiny, the figures in benchmarks/README.md (one process; two gloo ranks)::

    python -m benchmarks.train_step --config tiny --strategy ddp --profile-memory
    torchrun --standalone --nproc_per_node 2 -m benchmarks.train_step --config tiny \
        --strategy fsdp --profile-memory [--activation-checkpointing]

One H100 of 80 GB, full size (the plan's 1-GPU layout; ≈ 100 GB of host memory for the sharded
fp32 state)::

    torchrun --standalone --nproc_per_node 1 -m benchmarks.train_step --config aloha_agilex_2 \
        --device cuda --strategy fsdp --cpu-offload --activation-checkpointing --batch-size 1
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

from motus_policy.model.configuration_motus import PRESETS, MotusConfig
from motus_policy.model.modeling_motus import MotusModel
from motus_policy.training import fsdp
from motus_policy.training.config import TrainConfig
from motus_policy.training.distributed import (
    DistInfo,
    ensure_process_group,
    init_distributed,
    shutdown,
)
from motus_policy.training.memory_peak import MeasuredPeak, measure_peak
from motus_policy.training.memory_plan import GB, PlanRow, model_sizes, plan_row
from motus_policy.training.schedule import build_optimizer
from motus_policy.training.trainer import LossModule, sample_noise
from motus_policy.training.validation import autocast_for


def _model_state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    def local(t: torch.Tensor) -> int:
        t = t.to_local() if hasattr(t, "to_local") else t
        return t.numel() * t.element_size()

    total = sum(
        local(p) + (local(p.grad) if p.grad is not None else 0) for p in model.parameters()
    )
    for state in optimizer.state.values():
        total += sum(local(v) for v in state.values() if torch.is_tensor(v) and v.ndim > 0)
    return total


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__)
    p.add_argument("--config", default="tiny", choices=sorted(PRESETS), metavar="PRESET")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--strategy", default="fsdp", choices=("fsdp", "ddp"))
    p.add_argument("--cpu-offload", action="store_true")
    p.add_argument("--activation-checkpointing", action="store_true")
    p.add_argument("--batch-size", type=int, default=1, help="samples per process")
    p.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    p.add_argument("--und-tokens", type=int, default=480, help="VLM tokens per sample")
    p.add_argument("--text-rows", type=int, default=200, help="real T5 rows per sample")
    p.add_argument("--force", action="store_true", help="allow a full-size model on CPU")
    p.add_argument(
        "--profile-memory",
        action="store_true",
        help="profile the last step's tensor memory and print it against the memory plan",
    )
    return p


@dataclass
class StepReport:
    """What :func:`run_steps` measured on this rank.

    Attributes:
        layout: the memory plan's layout name (``ddp``, ``fsdp``, ``fsdp+offload``).
        world_size: processes.
        build_s: seconds to build, shard and make the optimizer.
        times: seconds of each step (the first one is the warm-up).
        losses: loss of each step.
        peak_states: model-state bytes (weights, gradients, AdamW) this rank held, at most.
        plan: the memory plan's row for this layout, world size, batch and precision (frozen
            encoders left out: ``t5_on_gpu=False`` and tiny presets count none).
        measured: the profiled last step's peak on this rank (``--profile-memory``), else None.
        measured_all: every rank's ``measured`` (gathered; this rank's alone without a group).
    """

    layout: str
    world_size: int
    build_s: float
    times: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    peak_states: int = 0
    plan: PlanRow | None = None
    measured: MeasuredPeak | None = None
    measured_all: list[MeasuredPeak] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    """Run the steps and print the figures; returns the exit status."""
    args = build_parser().parse_args(argv)
    mcfg = MotusConfig.from_preset(args.config)
    if args.device == "cpu" and mcfg.text_dim == 4096 and not args.force:
        print(f"error: {args.config} is full size; on CPU pass --force", file=sys.stderr)
        return 2
    if args.batch_size < 1 or args.steps < 1:
        print("error: --batch-size and --steps must be >= 1", file=sys.stderr)
        return 2
    info = init_distributed(args.device)
    try:
        report = run_steps(args, info)
        if info.is_main:
            print_report(args, report, info.device)
        return 0 if all(torch.isfinite(torch.tensor(report.losses))) else 1
    finally:
        shutdown(info)


def run_steps(args: argparse.Namespace, info: DistInfo) -> StepReport:
    """Build the network and run ``args.steps + 1`` training steps on this rank.

    Args:
        args: parsed :func:`build_parser` arguments.
        info: this process's :class:`~motus_policy.training.distributed.DistInfo` (collective
            when ``info.world_size > 1``: every rank calls it).

    Returns:
        The :class:`StepReport` of this rank.
    """
    mcfg = MotusConfig.from_preset(args.config)
    dev = info.device
    torch.manual_seed(0)
    cfg = TrainConfig(
        data_roots=("unused",), preset=args.config, strategy=args.strategy,
        cpu_offload=args.cpu_offload, activation_checkpointing=args.activation_checkpointing,
        batch_size=args.batch_size, device=args.device,
    )  # fmt: skip
    t0 = time.perf_counter()
    model = MotusModel(mcfg).float().train()
    if not args.cpu_offload:
        model.to(dev)
    loss_module: torch.nn.Module = LossModule(model)
    layers = None
    if args.strategy == "fsdp" or args.activation_checkpointing:
        layers = fsdp.install_layers(model, args.activation_checkpointing)
    if args.strategy == "fsdp":
        ensure_process_group(info)
        loss_module.layers = layers
        fsdp.shard(loss_module, layers, dev, args.cpu_offload)
    elif info.distributed:
        ids = [dev.index] if dev.type == "cuda" else None
        loss_module = torch.nn.parallel.DistributedDataParallel(
            loss_module, device_ids=ids, static_graph=True
        )
    optimizer, scheduler = build_optimizer(model.parameters(), cfg)
    layout = args.strategy + ("+offload" if args.cpu_offload else "")
    report = StepReport(layout, info.world_size, time.perf_counter() - t0)
    b = args.batch_size
    g = torch.Generator().manual_seed(info.rank)
    latents = torch.randn((b, *mcfg.latent_shape), generator=g).to(dev)
    actions = torch.rand((b, mcfg.action_chunk_size, mcfg.action_dim), generator=g).to(dev)
    state = torch.rand((b, mcfg.action_dim), generator=g).to(dev) if mcfg.has_state else None
    rows = min(args.text_rows, mcfg.text_len)
    text = torch.randn((b, rows, mcfg.text_dim), generator=g).to(dev)
    vlm = torch.randn((b, args.und_tokens, mcfg.vlm_hidden_size), generator=g).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def one_step(step: int) -> None:
        slots = [info.rank + info.world_size * j for j in range(b)]
        sigmas, noise = sample_noise(
            0, step, slots, tuple(latents.shape[1:]), tuple(actions.shape[1:]),
            mcfg.num_train_timesteps, mcfg.train_shift,
        )  # fmt: skip
        with autocast_for(dev):
            loss, _, _ = loss_module(latents, actions, state, text, vlm, sigmas, noise)
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        report.peak_states = max(report.peak_states, _model_state_bytes(model, optimizer))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        report.losses.append(float(loss.detach()))

    for step in range(args.steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
        if args.profile_memory and step == args.steps:  # a later step: AdamW state exists
            report.measured = measure_peak(lambda step=step: one_step(step), dev)
        else:
            one_step(step)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        report.times.append(time.perf_counter() - t)
    sizes = model_sizes(mcfg, args.und_tokens)
    report.plan = plan_row(
        sizes, layout, info.world_size, args.activation_checkpointing, b, t5_on_gpu=False,
        mixed_precision=dev.type == "cuda",
    )  # fmt: skip
    if report.measured is not None:
        report.measured_all = [report.measured]
        if info.distributed and dist.is_initialized():
            gathered: list = [None] * info.world_size
            dist.all_gather_object(gathered, report.measured)
            report.measured_all = gathered
    return report


def memory_table(report: StepReport) -> str:
    """Markdown table: the plan's per-rank terms, then each rank's measured peak, in MB (1e6 B).

    The measured row splits the profiler's categorised peak (where its analysis runs) into model
    states (parameters, gradients, AdamW state), activations (activation + autograd detail) and
    the rest (the data batch, temporaries, uncategorised: FSDP buffers among them). The peak is a
    range "lower-upper" where the profiler missed frees (``MeasuredPeak``), with the plan's
    deviation from each end.
    """
    plan = report.plan
    planned = plan.total - plan.frozen
    lines = [
        "| per rank [MB] | model states | buffers / other | activations | peak | plan vs peak |",
        "|---|---|---|---|---|---|",
        f"| plan ({report.layout}, {report.world_size} process(es), act. ckpt "
        f"{'on' if plan.activation_checkpointing else 'off'}) | {plan.model_states / 1e6:.3f} "
        f"| {plan.buffers / 1e6:.3f} | {plan.activations / 1e6:.3f} | {planned / 1e6:.3f} | |",
    ]
    for rank, m in enumerate(report.measured_all):
        err = f"{(planned - m.peak_bytes) / m.peak_bytes:+.1%}"
        peak = f"{m.peak_bytes / 1e6:.3f}"
        if m.peak_lower_bytes != m.peak_bytes:  # frees the profiler missed: a range
            err = f"{(planned - m.peak_lower_bytes) / m.peak_lower_bytes:+.1%} / {err}"
            peak = f"{m.peak_lower_bytes / 1e6:.3f}-{peak}"
        if m.at_peak is None:
            cells = "not categorised | | "
        else:
            a = m.at_peak
            states = a["parameter"] + a["gradient"] + a["optimizer_state"]
            acts = a["activation"] + a["autograd_detail"]
            rest = m.categorized_peak_bytes - states - acts
            cells = f"{states / 1e6:.3f} | {rest / 1e6:.3f} | {acts / 1e6:.3f}"
        lines.append(f"| measured, rank {rank} | {cells} | {peak} | {err} |")
    return "\n".join(lines)


def print_report(args: argparse.Namespace, report: StepReport, dev: torch.device) -> None:
    """Print the figures of :func:`run_steps` (rank 0)."""
    row = report.plan
    planned = (row.total - row.frozen) / GB
    timed = report.times[1:]
    print(f"config {args.config}, {report.layout}, {report.world_size} process(es), device {dev}, "
          f"activation checkpointing {'on' if args.activation_checkpointing else 'off'}, "
          f"batch {args.batch_size} per process, "
          f"{model_sizes(MotusConfig.from_preset(args.config)).trainable:,} trainable "
          f"parameters")  # fmt: skip
    print(f"build + shard: {report.build_s:.1f} s; first step {report.times[0]:.2f} s; "
          f"mean of {len(timed)} step(s): {sum(timed) / len(timed):.3f} s"
          + (" (the last one profiled)" if report.measured is not None else ""))  # fmt: skip
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / GB
        print(f"peak GPU memory allocated: {peak:.2f} GB (plan without encoders: "
              f"{planned:.2f} GB)")  # fmt: skip
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB
        print(f"model states on this rank: {report.peak_states / GB:.4f} GB (plan: "
              f"{(row.model_states + row.host_states) / GB:.4f} GB); process max RSS "
              f"{rss:.2f} GB")  # fmt: skip
    if report.measured is not None:
        print(
            "memory per rank, plan vs measured (profiled step; measured columns: categories "
            "of the memory profiler at the peak):"
        )
        print(memory_table(report))
    print("losses: " + " ".join(f"{v:.4f}" for v in report.losses))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
