"""Latent actions from optical flow (paper §4.2) for stage-2 pretraining.

Flow images, the latent-action VAE, its trainer, and the labels it writes beside episodes.

Modules: :mod:`flow` (flow estimation and flow -> RGB), :mod:`vae` (DC-AE + 14-D bottleneck,
eq. 2 loss), :mod:`trainer` (90 % unlabeled / 10 % labeled training), :mod:`layout` (where
labels live, which episodes have them), :mod:`labels` (the crash-safe label writer).
"""
