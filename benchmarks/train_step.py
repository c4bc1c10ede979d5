r"""Stage-3 training steps of the network on random weights and random encoder features.

``python -m benchmarks.train_step --config tiny|aloha_agilex_2|ac_one|robotwin --device cpu|cuda
[--strategy fsdp|ddp] [--cpu-offload] [--activation-checkpointing] [--batch-size 1] [--steps 2]``

Under ``torchrun`` every process takes part (``--strategy fsdp`` shards over them). The step is
the trainer's (``motus_policy.training.trainer``): the loss module, per-sample noise, bf16
autocast on CUDA, backward, clipping at 0.5, AdamW with the official settings (docs/motus.md
§2.1); with ``fsdp`` one FSDP2 unit per MoT layer (``motus_policy.training.fsdp``). The frozen
encoders are left out: their outputs (VAE latents, T5 states, VLM states) are random tensors of
the shapes the network takes, so the figures are those of the trainable part plus its
activations. Full-size models are refused on CPU without ``--force``.

Printed (rank 0): seconds per step, peak memory (``torch.cuda.max_memory_allocated`` on GPU; the
model-state bytes this rank holds on CPU), the memory plan's per-GPU figure for the same layout
without the frozen encoders (``motus_policy.training.memory_plan``), and the losses.

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

import torch

from motus_policy.model.configuration_motus import PRESETS, MotusConfig
from motus_policy.model.modeling_motus import MotusModel
from motus_policy.training import fsdp
from motus_policy.training.config import TrainConfig
from motus_policy.training.distributed import ensure_process_group, init_distributed, shutdown
from motus_policy.training.memory_plan import GB, model_sizes, plan_row
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
    return p


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
        return _run(args, mcfg, info)
    finally:
        shutdown(info)


def _run(args, mcfg: MotusConfig, info) -> int:
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
    build_s = time.perf_counter() - t0
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
    times, losses = [], []
    peak_states = 0
    for step in range(args.steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t = time.perf_counter()
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
        peak_states = max(peak_states, _model_state_bytes(model, optimizer))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - t)
        losses.append(float(loss.detach()))
    if info.is_main:
        layout = args.strategy + ("+offload" if args.cpu_offload else "")
        sizes = model_sizes(mcfg, args.und_tokens)
        row = plan_row(
            sizes, layout, info.world_size, args.activation_checkpointing, b, t5_on_gpu=False
        )
        planned = (row.total - row.frozen) / GB
        timed = times[1:]
        print(f"config {args.config}, {layout}, {info.world_size} process(es), device {dev}, "
              f"activation checkpointing {'on' if args.activation_checkpointing else 'off'}, "
              f"batch {b} per process, {sizes.trainable:,} trainable parameters")  # fmt: skip
        print(f"build + shard: {build_s:.1f} s; first step {times[0]:.2f} s; "
              f"mean of {len(timed)} step(s): {sum(timed) / len(timed):.3f} s")  # fmt: skip
        if dev.type == "cuda":
            peak = torch.cuda.max_memory_allocated(dev) / GB
            print(f"peak GPU memory allocated: {peak:.2f} GB (plan without encoders: "
                  f"{planned:.2f} GB)")  # fmt: skip
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB -> GB
            print(f"model states on this rank: {peak_states / GB:.4f} GB (plan: "
                  f"{(row.model_states + row.host_states) / GB:.4f} GB); process max RSS "
                  f"{rss:.2f} GB")  # fmt: skip
        print("losses: " + " ".join(f"{v:.4f}" for v in losses))
    return 0 if all(torch.isfinite(torch.tensor(losses))) else 1


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
