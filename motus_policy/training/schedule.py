"""AdamW + the stage-3 learning-rate schedule (docs/motus.md §2.1) on ``torch.optim.lr_scheduler``.

Shape (docs/motus.md §2.1): linear warm-up over ``warmup_steps`` to ``f_max`` = 0.99x the base lr,
then linear decay to ``f_min`` = 0.4x over ``cycle_length`` steps. The formula is that of the
latent-diffusion ``LambdaLinearScheduler`` that this shape and its parameter names
(``f_start``/``f_max``/``f_min``/``cycle_length``) come from: during warm-up
``f = f_start + (f_max - f_start) n / W``, afterwards ``f = f_min + (f_max - f_min) (C - n) / C``
(n counted from step 0, so the decay starts from slightly below f_max). We hold ``f_min`` after
the cycle instead of restarting it.
"""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from motus_policy.training.config import TrainConfig


class WarmupLinearDecay:
    """Learning-rate factor of optimiser step ``n`` (a picklable ``LambdaLR`` lambda).

    Args:
        warmup_steps: W (>= 0). cycle_length: C (> W).
        f_start, f_max, f_min: factors at step 0, step W and step C.
    """

    def __init__(
        self, warmup_steps: int, cycle_length: int, f_start: float, f_max: float, f_min: float
    ) -> None:
        if cycle_length <= warmup_steps:
            raise ValueError(
                f"cycle_length: expected > warmup_steps={warmup_steps}, got {cycle_length}"
            )
        self.warmup_steps = warmup_steps
        self.cycle_length = cycle_length
        self.f_start, self.f_max, self.f_min = f_start, f_max, f_min

    def __call__(self, n: int) -> float:
        """Factor at step ``n`` (0-based count of completed optimiser steps)."""
        if n < self.warmup_steps:
            return self.f_start + (self.f_max - self.f_start) * n / self.warmup_steps
        n = min(n, self.cycle_length)
        return self.f_min + (self.f_max - self.f_min) * (self.cycle_length - n) / self.cycle_length


def build_optimizer(params, config: TrainConfig) -> tuple[torch.optim.AdamW, LambdaLR]:
    """AdamW over ``params`` (trainable only) and its ``LambdaLR`` schedule.

    Args:
        params: iterable of parameters; those with ``requires_grad=False`` are skipped.
        config: lr, betas, weight decay and schedule factors.

    Returns:
        ``(optimizer, scheduler)``; call ``scheduler.step()`` after every ``optimizer.step()``.
    """
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("params: no trainable parameters")
    opt = torch.optim.AdamW(
        trainable, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    factor = WarmupLinearDecay(
        config.warmup_steps, config.cycle_length, config.f_start, config.f_max, config.f_min
    )
    return opt, LambdaLR(opt, factor)
