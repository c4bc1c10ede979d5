"""PyTorch FSDP2 for stage-3 fine-tuning: one shard unit per MoT layer, DCP checkpoints.

Why FSDP2 (``torch.distributed.fsdp.fully_shard``): it ships with the torch we pin, runs under
the ``torchrun`` launcher the DDP path already uses, shards parameters, gradients and AdamW state
(the ZeRO-3 layout) with per-unit mixed precision and CPU offload, and its checkpoints go through
``torch.distributed.checkpoint`` (DCP), which saves and reloads sharded state without gathering it
on one rank. DeepSpeed (the official engine, docs/motus.md §2.1) is not installed and would bring
its own launcher and checkpoint format; ``accelerate`` would only wrap the same FSDP2 calls.

Units. The three experts step through their layers together (docs/motus.md §1.5), so layer ``i``
of the video, action and understanding experts is one unit, :class:`MoTLayer`. The network's own
``forward`` calls :func:`~motus_policy.model.joint_attention.mot_layer` on the experts directly;
FSDP2 gathers a unit's parameters in the unit's ``forward`` hooks, so :func:`install_layers`
replaces the network's ``forward`` (on that instance only) by :func:`layered_forward`: the
network's own forward with its ``run_layer`` hook calling the units.
``tests/training/test_fsdp.py`` checks that both give bit-identical outputs. Everything outside
the layers (patch / text / time embeddings, heads, state encoder, registers, VLM adapter) is the
root unit, :class:`~motus_policy.training.trainer`'s loss module.

Precision (docs/motus.md §1.5: bf16 weights and matmuls, modulation, norms and gated residuals in
fp32; ``MotusModel.to_runtime``): master weights, gradients and AdamW state are fp32. On CUDA each
layer unit is gathered in bf16 (``MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32)``),
except its AdaLN tables (``scale_shift_table``, ``modulation``), which are left to the root unit;
the root unit (time-embedding MLPs, AdaLN tables and the small input / output layers) is gathered
in fp32. Matmuls run under bf16 autocast as on the DDP path; RoPE tables are buffers, never cast.
On CPU everything is fp32.

The frozen VLM, VAE and T5 are not part of the loss module: they stay whole on every rank, outside
the optimiser, as upstream.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint import DefaultLoadPlanner
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    MixedPrecisionPolicy,
    OffloadPolicy,
    fully_shard,
)
from torch.distributed.tensor import DTensor
from torch.utils.checkpoint import checkpoint

from motus_policy.model.joint_attention import LayerConditioning, mot_layer
from motus_policy.model.modeling_motus import MotusModel, MotusOutput

SHARDED_DIR = "sharded"
"""DCP folder of a sharded checkpoint (model + optimizer)."""

FP32_TABLE_SUFFIXES = ("scale_shift_table", "modulation")
"""Parameters inside a layer kept fp32 in the forward (AdaLN tables, ``MotusModel.to_runtime``)."""


class MoTLayer(nn.Module):
    """Layer ``i`` of the video, action and understanding experts as one module.

    Its submodules are the experts' own block modules (shared, not copied), so sharding or
    checkpointing this module acts on the network's parameters.

    Args:
        model: the network.
        index: layer index i.
        checkpointing: recompute the layer's activations in the backward pass
            (``torch.utils.checkpoint``, non-reentrant) instead of keeping them.
    """

    def __init__(self, model: MotusModel, index: int, checkpointing: bool = False) -> None:
        super().__init__()
        self.video = model.video_model.wan_model.blocks[index]
        self.action = model.action_expert.blocks[index]
        self.und = model.und_expert.blocks[index]
        self.index = index
        self.checkpointing = checkpointing
        # a tuple: the experts are not registered as submodules of the layer
        self._experts = (model.video_model, model.action_expert, model.und_expert)

    def forward(
        self, xv: torch.Tensor, xa: torch.Tensor, xu: torch.Tensor, cond: LayerConditioning
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`mot_layer` of this layer: (xv, xa, xu) -> updated (xv, xa, xu), same shapes."""
        if self.checkpointing and torch.is_grad_enabled():
            return checkpoint(
                mot_layer, self.index, *self._experts, xv, xa, xu, cond, use_reentrant=False
            )
        return mot_layer(self.index, *self._experts, xv, xa, xu, cond)


def layered_forward(model: MotusModel, layers: nn.ModuleList, *args, **kwargs) -> MotusOutput:
    """``MotusModel.forward`` with MoT layer ``i`` called as the module ``layers[i]``.

    Arguments, shapes, checks and result are ``MotusModel.forward``'s (its ``run_layer`` hook):
    only the per-layer call changes, so FSDP sees one unit's ``forward`` per layer.
    ``tests/training/test_fsdp.py`` asserts outputs and gradients equal the plain forward.

    Raises:
        ValueError: as ``MotusModel.forward`` (latent shape or batch mismatch).
    """

    def run_layer(i: int, xv, xa, xu, cond: LayerConditioning):
        return layers[i](xv, xa, xu, cond)

    return MotusModel.forward(model, *args, run_layer=run_layer, **kwargs)


def install_layers(model: MotusModel, checkpointing: bool = False) -> nn.ModuleList:
    """Route ``model``'s forward through one :class:`MoTLayer` per layer (this instance only).

    Returns:
        The ``num_layers`` layer modules (register them under the module FSDP wraps as root).
    """
    layers = nn.ModuleList(
        MoTLayer(model, i, checkpointing) for i in range(model.config.num_layers)
    )
    model.forward = types.MethodType(  # instance attribute: nn.Module.__call__ uses it
        lambda self, *a, **k: layered_forward(self, layers, *a, **k), model
    )
    return layers


def layer_fp32_tables(layers: nn.ModuleList) -> set[nn.Parameter]:
    """The AdaLN tables inside the layers (kept fp32 in the forward; owned by the root unit)."""
    return {p for name, p in layers.named_parameters() if name.endswith(FP32_TABLE_SUFFIXES)}


def shard(
    root: nn.Module, layers: nn.ModuleList, device: torch.device, cpu_offload: bool = False
) -> None:
    """Apply ``fully_shard`` to every layer, then to ``root`` (in place).

    Args:
        root: the module whose ``forward`` runs the whole step (it holds ``layers`` and the
            network); its own unit gets every parameter not in a layer plus the AdaLN tables.
        layers: from :func:`install_layers`.
        device: this rank's device (bf16 gathering of the layers on CUDA only).
        cpu_offload: FSDP2 ``CPUOffloadPolicy`` for every unit.
    """
    low = torch.bfloat16 if device.type == "cuda" else None
    # inputs stay as they come: the video / action residual streams are fp32 (docs/motus.md §1.5)
    layer_mp = MixedPrecisionPolicy(
        param_dtype=low, reduce_dtype=torch.float32, cast_forward_inputs=False
    )
    root_mp = MixedPrecisionPolicy(reduce_dtype=torch.float32, cast_forward_inputs=False)
    offload = CPUOffloadPolicy() if cpu_offload else OffloadPolicy()
    tables = layer_fp32_tables(layers)
    in_layers: set[nn.Parameter] = set()
    for layer in layers:
        fully_shard(layer, mp_policy=layer_mp, offload_policy=offload, ignored_params=tables)
        # after fully_shard: the layer now holds new (DTensor) parameter objects
        in_layers |= {p for p in layer.parameters() if p not in tables}
    # the layers' parameters are also reachable through the network's own block lists
    fully_shard(root, mp_policy=root_mp, offload_policy=offload, ignored_params=in_layers)


def grad_norm_value(norm: torch.Tensor) -> float:
    """The float of ``clip_grad_norm_``'s result (a DTensor under FSDP)."""
    if isinstance(norm, DTensor):
        norm = norm.full_tensor()
    return float(norm)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Gathered full state dict on CPU (collective; the tensors on rank 0, empty elsewhere)."""
    return get_model_state_dict(
        model, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
    )


def unsharded_copy(model: MotusModel, state: dict[str, torch.Tensor]) -> MotusModel:
    """A plain ``MotusModel`` of ``model``'s config holding ``state`` (no copy of the tensors).

    Built on the meta device, then the gathered tensors are assigned (strict: every key, every
    shape); for :func:`~motus_policy.model.checkpoint.save_official_checkpoint` and
    ``save_pretrained``, which read ``state_dict()``. Non-persistent buffers (RoPE tables) are
    rebuilt on CPU.

    Raises:
        RuntimeError: ``state`` misses keys or has unexpected / mis-shaped ones.
    """
    with torch.device("meta"):
        copy = MotusModel(model.config)
    copy.load_state_dict(state, strict=True, assign=True)
    for name, buf in list(copy.named_buffers()):
        if buf.is_meta:
            owner, attr = _owner(copy, name)
            ref = dict(model.named_buffers())[name]
            owner._buffers[attr] = ref.detach().to("cpu", copy=True)
    return copy


def _owner(module: nn.Module, name: str) -> tuple[nn.Module, str]:
    path, _, attr = name.rpartition(".")
    return (module.get_submodule(path) if path else module), attr


def save_sharded(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Write model + optimizer state with DCP into ``folder`` (collective, every rank writes)."""
    state = {
        "model": get_model_state_dict(model),
        "optim": get_optimizer_state_dict(model, optimizer),
    }
    dcp.save(state, checkpoint_id=str(folder))


def load_sharded(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Inverse of :func:`save_sharded` (collective); the world size may differ (DCP reshards).

    Raises:
        FileNotFoundError: no DCP metadata in ``folder``.
    """
    if not (folder / ".metadata").is_file():
        raise FileNotFoundError(f"{folder}: no sharded (DCP) checkpoint (.metadata missing)")
    weights = {"model": get_model_state_dict(model)}
    dcp.load(weights, checkpoint_id=str(folder))
    set_model_state_dict(model, weights["model"])
    # A fresh optimizer's state dict has an entry for every parameter; the saved one has none for
    # the parameters that never get a gradient (the last und block's output projection and FFN:
    # the und stream ends there), so those keys keep their fresh (unused) values.
    optim = {"optim": get_optimizer_state_dict(model, optimizer)}
    dcp.load(
        optim,
        checkpoint_id=str(folder),
        planner=DefaultLoadPlanner(allow_partial_load=True),
    )
    set_optimizer_state_dict(model, optimizer, optim["optim"])


@contextlib.contextmanager
def gathered(root: nn.Module, layers: nn.ModuleList) -> Iterator[None]:
    """Hold every unit gathered (collective on entry and exit), e.g. for validation.

    Inside, code may use the network's parameters outside the units' ``forward`` (the text K/V
    cache, ``prepare_conditioning``); on exit the units are sharded again.
    """
    units = [*layers, root]
    for unit in units:
        unit.set_reshard_after_forward(False, recurse=False)
        unit.unshard()
    try:
        yield
    finally:
        for unit in units:
            unit.reshard()
            unit.set_reshard_after_forward(unit is not root, recurse=False)
