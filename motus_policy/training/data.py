"""PyTorch ``Dataset`` over Motus-format folders with the official sampling (docs/motus.md §3.2).

For an episode of T frames and parameters A (action chunk), g (global downsample rate),
r (video/action frequency ratio), F (video frames), H x W (model image size):

* condition index c ~ Uniform{0 .. T - A*g - 1} (0 when that is negative);
* action indices c + g*k, k = 1..A, clamped to T - 1 (the *next* A targets);
* video indices: the action indices at positions r, 2r, .., F*r, i.e. c + g*r*j, j = 1..F;
* state = qpos[c]; actions and state min-max normalised to [0, 1] with the given stats
  (``(x - min) / (max - min)``, a zero range replaced by 1; docs/motus.md §4.2), by the same
  :class:`~motus_policy.model.normalization.NormalizationStats` the policy uses at inference;
* images: the T-layout composite resized with the pad-to-fit rule (docs/motus.md §3.4), float in
  [0, 1], CHW; the UMT5 embedding zero-padded to ``text_len`` rows (docs/motus.md §4.5).

:func:`collate` builds the batch of docs/motus.md §4.5 (``first_frame`` [B,3,H,W], ``video_frames``
[B,F,3,H,W], ``action_sequence`` [B,A,14], ``initial_state`` [B,14], ``language_embedding``
[B,text_len,4096], ``vlm_inputs`` right-padded with 0 when a ``vlm_fn`` is given).

Stage 2 (``action_source="latent_action"``, docs/motus.md §4.4): the episodes are the video
episodes that have latent actions (``latent_action_dim14/<i>.pt``, float32 [T-1, 14], written by
``motus-dataset label-latent``; :mod:`motus_policy.latent_action.layout`) and an instruction; qpos
is not needed. The action targets are the latent-action rows at the ``latent_action`` indices
(c + g*i, clamped to T-2, the last row), not normalised (as upstream: its quantile scaling is
commented out), and ``initial_state`` is zeros (pretrain mode has no state token).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from motus_policy.latent_action.layout import latent_episodes, latent_path, read_latent_actions
from motus_policy.model.normalization import NormalizationStats
from motus_recorder.composite import resize_pad
from motus_recorder.dataset import (
    Episode,
    EpisodeFileError,
    TaskFolder,
    complete_episodes,
    decode_video,
    video_frame_count,
)
from motus_recorder.writers import torch_io


def sample_indices(n_frames: int, c: int, a: int, g: int, r: int, f: int) -> tuple[list, list]:
    """Action and video indices for condition index ``c`` (docs/motus.md §3.2), clamped to T-1."""
    last = n_frames - 1
    actions = [min(c + g * k, last) for k in range(1, a + 1)]
    video = [actions[r * j - 1] for j in range(1, f + 1)]
    return actions, video


def latent_action_indices(
    n_frames: int, c: int, a: int, g: int, r: int, f: int
) -> tuple[list, list]:
    """Stage-2 (``latent_action`` preset) indices for condition index ``c``.

    As the official latent-action loader (data/latent_action/latent_action_dataset.py,
    ``_select_indices``): actions at ``c + g*i``, i = 0..A-1 (from the condition frame on),
    clamped to T-2; video at ``c + g*r*j``, j = 1..F, clamped to T-1.
    """
    actions = [min(c + g * i, n_frames - 2) for i in range(a)]
    video = [min(c + g * r * j, n_frames - 1) for j in range(1, f + 1)]
    return actions, video


INDEX_RULES = {"stage3": sample_indices, "latent_action": latent_action_indices}
"""``index_rule`` of :class:`MotusEpisodeDataset`: the stage-3 rule (docs/motus.md §3.2) or the
stage-2 latent-action rule (``training_mode`` "pretrain")."""


ACTION_SOURCES = ("qpos", "latent_action")
"""``action_source`` of :class:`MotusEpisodeDataset`: recorded joint positions (stage 3) or the
latent actions beside each episode (stage 2)."""


@dataclass
class LatentEpisode:
    """A stage-2 episode: video, instruction and latent actions [T-1, 14] (no qpos).

    ``qpos`` is None; ``latent`` row t is the latent action of frames (t, t+1).
    """

    task_dir: Path
    index: int
    latent: np.ndarray
    instruction: str
    video_path: Path
    embedding: np.ndarray | list[np.ndarray] | None
    meta: dict[str, Any] | None = None
    qpos: None = None

    @property
    def n_frames(self) -> int:
        """T = latent rows + 1."""
        return self.latent.shape[0] + 1

    def frames(self, indices: list[int] | None = None) -> np.ndarray:
        """Decoded T-layout frames, uint8 [N, H, W, 3]."""
        return decode_video(self.video_path, indices)

    def check_video_length(self) -> int:
        """Check the video has one frame more than latent rows (header count, no decoding).

        Raises:
            EpisodeFileError: (naming the video) another frame count, or an unreadable video.
        """
        n = video_frame_count(self.video_path)
        if n != self.n_frames:
            raise EpisodeFileError(
                self.video_path,
                f"{n} video frames but {latent_path(self.task_dir, self.index)} has "
                f"{self.latent.shape[0]} rows (expected frames - 1: one per frame pair)",
            )
        return n


def read_latent_episode(task: TaskFolder, i: int, embedding: bool = True) -> LatentEpisode:
    """Load stage-2 episode ``i`` of ``task`` (video not decoded).

    Raises:
        FileNotFoundError: no instruction text for ``i``.
        EpisodeFileError: unreadable / malformed latent actions or embedding (file named).
    """
    latent = read_latent_actions(latent_path(task.path, i))
    txt = task.instruction_path(i)
    if txt is None:
        raise FileNotFoundError(f"{task.path}/instructions: no {i}.txt nor a shared .txt")
    emb = None
    emb_path = task.embedding_path(i) if embedding else None
    if emb_path is not None:
        try:
            emb = torch_io.load_tensor(emb_path)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
            raise EpisodeFileError(emb_path, f"cannot read the .pt file: {exc}") from exc
    return LatentEpisode(
        task_dir=task.path,
        index=i,
        latent=latent,
        instruction=txt.read_text(encoding="utf-8").strip(),
        video_path=task.path / "videos" / f"{i}.mp4",
        embedding=emb,
    )


def action_source_for_stage(stage: int, training_mode: str) -> str:
    """The ``action_source`` of training stage ``stage`` (paper §4.3) for ``training_mode``.

    2 -> "latent_action" (needs a "pretrain"-mode model), 3 -> "qpos" (needs "finetune").

    Raises:
        ValueError: the stage and the model's mode disagree (the message names the presets).
    """
    want = {2: "pretrain", 3: "finetune"}.get(stage)
    if want is None:
        raise ValueError(f"stage: expected 2 or 3, got {stage!r}")
    if training_mode != want:
        hint = "latent_action_tiny or latent_action" if stage == 2 else "tiny, aloha_agilex_2, ..."
        raise ValueError(
            f"stage {stage} trains a {want}-mode model ({hint}), got a {training_mode}-mode one"
        )
    return "latent_action" if stage == 2 else "qpos"


def _n_frames(ep: Episode | LatentEpisode) -> int:
    return ep.n_frames if isinstance(ep, LatentEpisode) else ep.qpos.shape[0]


def condition_range(n_frames: int, a: int, g: int) -> int:
    """Largest condition index: ``max(0, T - A*g - 1)`` (c is drawn from 0..this inclusive)."""
    return max(0, n_frames - a * g - 1)


def _chw01(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255.0)


class MotusEpisodeDataset(Dataset):
    """Samples (condition, actions, video frames, text) from every episode under ``roots``.

    Args:
        roots: dataset roots (task folders found recursively).
        stats: ``{"min": [14], "max": [14]}`` for normalisation (a ``stat.json`` entry), or None
            for raw values (the released RoboTwin model, docs/motus.md §4.1).
        action_chunk: A. downsample: g. video_ratio: r. video_frames: F (A must equal F*r).
        image_hw: model (H, W), e.g. (384, 320).
        text_len: rows the UMT5 embedding is zero-padded to (512 upstream).
        samples_per_episode: dataset length = episodes x this (one random c per item).
        seed: seed of the condition-index generator (re-seeded per DataLoader worker).
        vlm_fn: optional ``(text, uint8 HWC image at raw resolution) -> dict of tensors`` (the
            Qwen3-VL processor, owned by the model package); its output becomes ``vlm_inputs``.
        require_embedding: raise when an episode has no UMT5 embedding (else zeros).
        max_episodes: keep only the first N complete episodes (0 keeps all).
        index_rule: "stage3" (default) or "latent_action" (stage 2; :data:`INDEX_RULES`).
        action_source: "qpos" (default) or "latent_action" (stage 2: episodes with latent
            actions, qpos not needed; see the module docstring; :data:`ACTION_SOURCES`).

    Every episode is checked the first time it is used (and all of them by :meth:`preload`):
    qpos finite, one video frame per qpos row (the official loader counts video frames and
    indexes qpos with them). A bad episode raises
    :class:`~motus_recorder.dataset.EpisodeFileError` naming the file (and row and dimension
    for values); nothing is used silently. ``motus-dataset validate`` finds all of them at once.

    Items are read from disk per call (one PyAV seek + decode per item) unless :meth:`preload`
    was called, after which they come from RAM and are bit-identical.

    Attributes:
        normalization: the :class:`NormalizationStats` built from ``stats`` (None for raw).

    Raises:
        ValueError: A != F*r, invalid ``stats`` (min/max not (D,), not finite, max < min), no
            complete episode found, or fewer than ``max_episodes``.
        EpisodeFileError: (a ValueError, from :meth:`sample` / :meth:`preload`) an episode with
            NaN/inf qpos, a qpos / video length mismatch, or an unreadable file.
    """

    def __init__(
        self,
        roots: Sequence[str | os.PathLike[str]],
        stats: Mapping[str, Sequence[float]] | None,
        action_chunk: int,
        downsample: int,
        video_ratio: int,
        video_frames: int,
        image_hw: tuple[int, int],
        text_len: int = 512,
        samples_per_episode: int = 1,
        seed: int = 0,
        vlm_fn: Callable[[str, np.ndarray], dict[str, torch.Tensor]] | None = None,
        require_embedding: bool = True,
        max_episodes: int = 0,
        index_rule: str = "stage3",
        action_source: str = "qpos",
    ):
        if action_source not in ACTION_SOURCES:
            raise ValueError(
                f"action_source: expected one of {ACTION_SOURCES}, got {action_source!r}"
            )
        self.action_source = action_source
        if index_rule not in INDEX_RULES:
            raise ValueError(
                f"index_rule: expected one of {sorted(INDEX_RULES)}, got {index_rule!r}"
            )
        self.index_rule = INDEX_RULES[index_rule]
        if action_chunk != video_frames * video_ratio:
            raise ValueError(
                f"action_chunk: expected video_frames*video_ratio = "
                f"{video_frames * video_ratio}, got {action_chunk}"
            )
        self.a, self.g, self.r, self.f = action_chunk, downsample, video_ratio, video_frames
        self.hw = (int(image_hw[0]), int(image_hw[1]))
        self.stats, self.text_len, self.vlm_fn = stats, text_len, vlm_fn
        self.normalization = None if stats is None else NormalizationStats.from_entry(stats)
        self.require_embedding = require_embedding
        self.samples_per_episode = samples_per_episode
        latent = action_source == "latent_action"
        self.episodes = latent_episodes(roots) if latent else complete_episodes(roots)
        if not self.episodes:
            what = (
                "video episodes with latent actions (latent_action_dim14/<i>.pt: run "
                "motus-dataset label-latent) and an instruction"
                if latent
                else "complete episodes"
            )
            raise ValueError(f"no {what} under {list(map(str, roots))}")
        if max_episodes:
            if max_episodes > len(self.episodes):
                raise ValueError(
                    f"max_episodes: asked for {max_episodes}, but only {len(self.episodes)} "
                    f"{'labeled video' if latent else 'complete'} episodes are under "
                    f"{list(map(str, roots))}"
                )
            self.episodes = self.episodes[:max_episodes]
        self.seed, self._worker = seed, None
        self.rng = np.random.default_rng(seed)
        self._loaded: dict[int, tuple[Episode | LatentEpisode, np.ndarray, np.ndarray | None]] = {}
        self._checked: set[int] = set()

    def read(self, episode: int, embedding: bool = True) -> Episode | LatentEpisode:
        """Episode number ``episode`` from disk (EpisodeFileError on bad files).

        An :class:`Episode` for the qpos source, a :class:`LatentEpisode` for latent_action.
        """
        task, i = self.episodes[episode]
        if self.action_source == "latent_action":
            return read_latent_episode(task, i, embedding)
        return task.read_episode(i, embedding=embedding)

    def preload(self, keep_raw: bool = False, progress: bool = True) -> int:
        """Decode every episode once and keep it in RAM; later items index frames, not video.

        Per episode: the episode record (qpos, instruction, embedding) and its frames resized
        with :func:`resize_pad` to H x W, uint8 (T, H, W, 3) (tiny: 60 episodes x 155 frames x
        128 x 96 x 3 = 343 MB). ``keep_raw`` also keeps the raw-resolution composites the
        ``vlm_fn`` receives (about 9x more for 360 x 320 composites).

        Returns:
            Bytes of frames held.

        Raises:
            EpisodeFileError: a video whose frame count differs from its qpos rows, NaN/inf in
                a qpos (file, row and dimension named), an unreadable file.
        """
        total = 0
        for k in tqdm(range(len(self.episodes)), desc="preload", unit="ep", disable=not progress):
            ep = self.read(k)  # EpisodeFileError on NaN/inf qpos / latent actions
            raw = ep.frames()
            n = _n_frames(ep)
            if raw.shape[0] != n:
                rows = (
                    f"{latent_path(ep.task_dir, ep.index)} has {n - 1} rows (expected frames - 1)"
                    if isinstance(ep, LatentEpisode)
                    else f"{ep.qpos_path} has {n} rows (expected one row per frame)"
                )
                raise EpisodeFileError(ep.video_path, f"{raw.shape[0]} decoded frames but {rows}")
            self._checked.add(k)
            resized = np.stack([resize_pad(f, self.hw) for f in raw[:n]])
            kept = np.ascontiguousarray(raw[:n]) if keep_raw else None
            self._loaded[k] = (ep, resized, kept)
            total += resized.nbytes + (kept.nbytes if keep_raw else 0)
        return total

    @property
    def preloaded(self) -> bool:
        """True once :meth:`preload` has run."""
        return bool(self._loaded)

    def n_frames(self, episode: int) -> int:
        """T of episode number ``episode`` (reads its qpos unless preloaded)."""
        if episode in self._loaded:
            return _n_frames(self._loaded[episode][0])
        return _n_frames(self.read(episode, embedding=False))

    def condition_indices(self, episode: int) -> range:
        """Every condition index the sampler can draw for ``episode`` (docs/motus.md §3.2)."""
        return range(condition_range(self.n_frames(episode), self.a, self.g) + 1)

    def __len__(self) -> int:
        return len(self.episodes) * self.samples_per_episode

    def __getitem__(self, idx: int) -> dict[str, Any]:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:  # distinct draws per worker
            self._worker = info.id
            self.rng = np.random.default_rng([self.seed, info.id])
        return self.sample(idx % len(self.episodes))

    def sample(self, episode: int, c: int | None = None) -> dict[str, Any]:
        """The item of episode number ``episode`` (in :attr:`episodes`) at condition index c.

        ``c`` None draws it uniformly from ``0 .. max(0, T - A*g - 1)``; an explicit ``c`` must
        be in ``0 .. T-1`` (ValueError otherwise).
        """
        task, i = self.episodes[episode]
        loaded = self._loaded.get(episode)
        ep = loaded[0] if loaded is not None else self.read(episode)
        if episode not in self._checked:  # once per episode: the video header's frame count
            ep.check_video_length()
            self._checked.add(episode)
        n = _n_frames(ep)
        if c is None:
            c = int(self.rng.integers(0, condition_range(n, self.a, self.g) + 1))
        if not 0 <= c < n:
            raise ValueError(f"c: expected 0..{n - 1}, got {c}")
        act_idx, vid_idx = self.index_rule(n, c, self.a, self.g, self.r, self.f)
        if loaded is not None:
            resized, raw = loaded[1][[c, *vid_idx]], loaded[2]
            first_raw = raw[c] if raw is not None else None
        else:
            frames = ep.frames([c, *vid_idx])
            resized, first_raw = [resize_pad(f, self.hw) for f in frames], frames[0]
        if isinstance(ep, LatentEpisode):  # stage 2: raw latent actions, no state
            actions, state = ep.latent[act_idx], np.zeros(ep.latent.shape[1], np.float32)
        else:
            actions, state = ep.qpos[act_idx], ep.qpos[c]
        if self.normalization is not None and not isinstance(ep, LatentEpisode):
            actions = self.normalization.normalize(actions)  # (A, 14) float32
            state = self.normalization.normalize(state)  # (14,) float32
        item = {
            "first_frame": _chw01(resized[0]),
            "video_frames": torch.stack([_chw01(f) for f in resized[1:]]),
            "action_sequence": torch.from_numpy(np.asarray(actions, np.float32)),
            "initial_state": torch.from_numpy(np.asarray(state, np.float32)),
            "language_embedding": self._embedding(ep),
            "instruction": ep.instruction,
            "episode": f"{task.path}:{i}",
            "condition_index": c,
            "action_indices": act_idx,
            "video_indices": vid_idx,
        }
        if self.vlm_fn is not None:  # raw-resolution composite for the VLM (docs/motus.md §4.2)
            if first_raw is None:  # preloaded without raw frames: decode this one
                first_raw = ep.frames([c])[0]
            item["vlm_inputs"] = self.vlm_fn(ep.instruction, first_raw)
        return item

    def _embedding(self, ep) -> torch.Tensor:
        out = torch.zeros(self.text_len, 4096, dtype=torch.bfloat16)
        emb = ep.embedding
        if emb is None:
            if self.require_embedding:
                raise FileNotFoundError(f"{ep.task_dir}: episode {ep.index} has no UMT5 .pt")
            return out
        if isinstance(emb, list):  # a list of alternatives: one at random (docs/motus.md §4.1)
            emb = emb[int(self.rng.integers(0, len(emb)))]
        emb = emb[: self.text_len]
        out[: emb.shape[0]] = torch.from_numpy(np.asarray(emb, np.float32)).to(torch.bfloat16)
        return out


def _pad_right(tensors: list[torch.Tensor]) -> torch.Tensor:
    n = max(t.shape[-1] for t in tensors)
    return torch.stack([torch.nn.functional.pad(t, (0, n - t.shape[-1])) for t in tensors])


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items into the docs/motus.md §4.5 format.

    ``vlm_inputs``: ``input_ids``/``attention_mask`` ([1, L] or [L] each) are right-padded with
    0 to the longest; ``pixel_values`` and ``image_grid_thw`` (per-image patch rows, Qwen style)
    are concatenated along dim 0.
    """
    batch: dict[str, Any] = {
        k: torch.stack([it[k] for it in items])
        for k in (
            "first_frame",
            "video_frames",
            "action_sequence",
            "initial_state",
            "language_embedding",
        )
    }
    for k in ("instruction", "episode", "condition_index"):
        batch[k] = [it[k] for it in items]
    if "vlm_inputs" in items[0]:
        v = [it["vlm_inputs"] for it in items]
        batch["vlm_inputs"] = {
            "input_ids": _pad_right([x["input_ids"].reshape(-1) for x in v]),
            "attention_mask": _pad_right([x["attention_mask"].reshape(-1) for x in v]),
            "pixel_values": torch.cat([x["pixel_values"] for x in v]),
            "image_grid_thw": torch.cat([x["image_grid_thw"].reshape(-1, 3) for x in v]),
        }
    return batch
