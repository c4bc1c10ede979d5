"""Deterministic, resumable sampling over :class:`~motus_policy.training.data.MotusEpisodeDataset`.

Item ``idx`` of epoch ``e`` is a pure function of ``(seed, e, idx)``: the dataset's generator
(condition index, choice among alternative embeddings) is re-seeded per item, so the data a step
sees does not depend on worker count, process boundaries or resumption. The order of items is
``DistributedSampler``'s (seeded permutation per epoch, one shard per rank); resumption skips the
batches already consumed in the current epoch without loading them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from motus_policy.training.data import MotusEpisodeDataset, collate


def keep_raw_composite(text: str, image: np.ndarray) -> dict[str, torch.Tensor]:
    """``vlm_fn`` of the dataset: pass the raw-resolution composite (uint8 HWC) through."""
    return {"composite": torch.from_numpy(np.ascontiguousarray(image))}


class EpisodeSamples(Dataset):
    """``samples_per_episode`` items per episode of a subset of episodes.

    Args:
        base: the episode dataset (its ``vlm_fn`` should be :func:`keep_raw_composite`).
        episodes: episode numbers (positions in ``base.episodes``) this view draws from.
        samples_per_episode: items per episode and epoch.
        seed: seed of the per-item generators.
        stream: extra seed word separating e.g. training (0) and validation (1) draws.
    """

    def __init__(
        self,
        base: MotusEpisodeDataset,
        episodes: Sequence[int],
        samples_per_episode: int,
        seed: int,
        stream: int = 0,
    ) -> None:
        if not episodes:
            raise ValueError("episodes: expected at least one episode, got none")
        self.base = base
        self.episodes = list(episodes)
        self.samples_per_episode = samples_per_episode
        self.seed, self.stream, self.epoch = seed, stream, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the draws of ``epoch`` (call before creating the epoch's iterator)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.episodes) * self.samples_per_episode

    def __getitem__(self, idx: int) -> dict[str, Any]:
        self.base.rng = np.random.default_rng([self.seed, self.stream, self.epoch, idx])
        return self.base.sample(self.episodes[idx % len(self.episodes)])


def collate_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """docs/motus.md §4.5 batch plus the raw composites for the VLM.

    The batch is :func:`~motus_policy.training.data.collate`'s, with ``composite``: a list of
    the uint8 (h, w, 3) raw-resolution composites (None when the dataset has no ``vlm_fn``).
    """
    raw = None
    if "vlm_inputs" in items[0]:
        raw = [it.pop("vlm_inputs")["composite"].numpy() for it in items]
    batch = collate(items)
    batch["composite"] = raw
    return batch


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that can start an epoch part-way (after ``start_index`` items).

    ``start_index`` applies to the next iteration only and is then reset to 0.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start_index = 0

    def __iter__(self):
        indices = list(super().__iter__())[self.start_index :]
        self.start_index = 0
        return iter(indices)

    def __len__(self) -> int:
        return self.num_samples - self.start_index
