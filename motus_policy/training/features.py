"""Frozen-encoder features of a training batch, with an optional per-sample disk cache.

Per sample (docs/motus.md §2.1, §4.2, §4.5):

* clip latents: the condition frame + F future frames (pad-to-fit H x W, [0, 1]) encoded by the
  frozen Wan2.2 VAE -> (C, T', h, w). The condition latent is the clip's latent frame 0 (the
  causal VAE encodes the first frame alone; the official code encodes it a second time).
* VLM features: Qwen3-VL last hidden states of (image, instruction), image per ``vlm_image``,
  and the prompt's pad state; a batch pads shorter prompts with their pad state, as the official
  batch of id-0-padded input ids does (:func:`~motus_policy.model.encoders.vlm.pad_features`).
* T5 context: the dataset's UMT5 embedding, or the policy's text encoder (LRU per instruction).

The instruction given to T5 and the VLM is ``policy.model_instruction(instruction)``: the
preset's ``instruction_prefix`` in front, bounded to the official 512 UMT5 tokens.

VAE latents and VLM features depend only on (episode, condition index) for a fixed encoder and
geometry, so they are cached on disk under a key that includes a fingerprint of the encoder
weights and every setting that changes them. On CPU the VAE encode dominates a tiny step.
Samples are encoded one at a time so cached and fresh values are bit-identical.

:meth:`FeatureEncoder.precompute` instead encodes every (episode, condition index) the sampler
can draw in a first pass, ``vae_batch`` clips per VAE call (about 3x faster per clip on CPU than
one at a time), and keeps the result in RAM: every training step is then a hit. Batched CPU
convolutions round differently from single-clip ones (max |diff| ~1.5e-6 on the tiny VAE), so
the chunks are fixed (consecutive condition indices of one episode, from 0) and ``vae_batch``
is part of the cache key: a run's features do not depend on what the cache held before, and
``vae_batch=1`` reproduces the on-the-fly values bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from motus_policy.model.encoders.vlm import pad_features
from motus_policy.model.policy import MotusPolicy
from motus_policy.training.data import MotusEpisodeDataset

FEATURE_FORMAT = "vlm-pad-state/1"
"""Part of the cache key: entries hold ``vlm`` (L, D) and ``vlm_pad`` (D,)."""


def module_fingerprint(*modules: torch.nn.Module, extra: dict | None = None) -> str:
    """blake2b over every tensor of ``modules`` (names, shapes, bytes) and ``extra`` (JSON)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(extra or {}, sort_keys=True).encode())
    for m in modules:
        for name, t in m.state_dict().items():
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def to_uint8_hwc(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> uint8 (H, W, 3) (exact inverse of the dataset's /255)."""
    return (image.permute(1, 2, 0) * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()


class FeatureEncoder:
    """Batch -> (clip latents, VLM features, T5 context) for :func:`training_loss`.

    Thread-safety: none; the training loop's thread only.

    Args:
        policy: holds the frozen VAE / T5 / VLM (on ``device``).
        device: where the outputs go.
        text_source: "dataset" (the episode's UMT5 ``.pt``), "encoder" (the policy's T5) or
            "mixed" (the ``.pt`` where the episode has one, i.e. a non-zero row, else T5).
        vlm_image: "model" or "composite".
        cache_dir: folder of the per-sample cache, or None.
        geometry: settings that change the cached values besides the weights (g, r, F, H, W).
        vae_batch: clips per VAE call in :meth:`precompute` (1 = bit-identical to on-the-fly).
    """

    def __init__(
        self,
        policy: MotusPolicy,
        device: torch.device,
        text_source: str,
        vlm_image: str,
        cache_dir: str | os.PathLike[str] | None,
        geometry: dict,
        vae_batch: int = 1,
    ) -> None:
        if not isinstance(vae_batch, int) or vae_batch < 1:
            raise ValueError(f"vae_batch: expected a positive int, got {vae_batch!r}")
        if text_source not in ("dataset", "encoder", "mixed"):
            raise ValueError(
                f"text_source: expected 'dataset', 'encoder' or 'mixed', got {text_source!r}"
            )
        self.policy, self.device = policy, device
        self.text_source, self.vlm_image = text_source, vlm_image
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.hits = self.misses = 0
        self.vae_batch = vae_batch
        self._memory: dict[tuple[str, int], dict[str, torch.Tensor]] = {}
        self._prefix = ""
        if self.cache_dir is not None:
            if vae_batch != 1:  # batched encodes round differently (module docstring)
                geometry = {**geometry, "vae_batch": vae_batch}
            vlm_settings = {
                k: str(v) for k, v in vars(policy.vlm.config).items()
            }  # prompt order etc.
            self._prefix = module_fingerprint(
                policy.vae,
                policy.vlm.model,
                extra={
                    **geometry,
                    "vlm_image": vlm_image,
                    "vlm": vlm_settings,
                    "format": FEATURE_FORMAT,
                    "instruction_prefix": policy.model.config.instruction_prefix,
                    "text_max_length": policy.text_encoder.config.max_length,
                },
            )

    def _path(self, episode: str, c: int) -> Path:
        key = hashlib.blake2b(f"{self._prefix}|{episode}|{c}".encode(), digest_size=16)
        name = key.hexdigest()
        return self.cache_dir / name[:2] / f"{name}.pt"

    def _encode_clips(self, first: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        """(n, 3, H, W) + (n, F, 3, H, W) in [0, 1] -> (n, C, T', h, w) float32 on the CPU."""
        clip = torch.cat([first[:, None], video], dim=1)  # (n, 1+F, 3, H, W)
        pixels = clip.permute(0, 2, 1, 3, 4).to(self.device)  # (n, 3, 1+F, H, W)
        return self.policy.vae.encode(pixels).float().cpu()

    def _vlm_one(self, first: torch.Tensor, composite, instruction: str) -> dict:
        """``{"vlm": (L, D), "vlm_pad": (D,)}`` float32 on the CPU for one sample."""
        image = to_uint8_hwc(first) if self.vlm_image == "model" else composite
        if image is None:
            raise ValueError("vlm_image='composite' needs the raw composite in the batch")
        text = self.policy.model_instruction(instruction)
        rows, pad = self.policy.vlm.pair_features(image, text, use_cache=False)
        return {"vlm": rows.float().cpu(), "vlm_pad": pad.float().cpu()}

    def _encode_one(self, batch: dict, i: int) -> dict[str, torch.Tensor]:
        first, video = batch["first_frame"][i : i + 1], batch["video_frames"][i : i + 1]
        composite = batch["composite"][i] if batch.get("composite") is not None else None
        return {
            "latents": self._encode_clips(first, video)[0],
            **self._vlm_one(first[0], composite, batch["instruction"][i]),
        }

    def _load(self, path: Path | None) -> dict[str, torch.Tensor] | None:
        if path is None or not path.is_file():
            return None
        return torch.load(path, map_location="cpu", weights_only=True)

    def _store(self, path: Path | None, out: dict[str, torch.Tensor]) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save(out, tmp)
        tmp.replace(path)  # atomic: concurrent ranks write identical content

    def sample_features(self, batch: dict, i: int) -> dict[str, torch.Tensor]:
        """Latents (C, T', h, w) and VLM features (L, D) of item ``i`` (cached when enabled)."""
        key = (batch["episode"][i], int(batch["condition_index"][i]))
        out = self._memory.get(key)
        if out is not None:
            self.hits += 1
            return out
        path = self._path(*key) if self.cache_dir is not None else None
        out = self._load(path)
        if out is not None:
            self.hits += 1
            return out
        self.misses += 1
        out = self._encode_one(batch, i)
        self._store(path, out)
        return out

    @torch.no_grad()
    def precompute(self, dataset: MotusEpisodeDataset, progress: bool = True) -> int:
        """Encode every (episode, condition index) ``dataset`` can draw; keep them in RAM.

        Condition indices are those of :meth:`MotusEpisodeDataset.condition_indices` (all
        episodes, validation ones included). Chunks of ``vae_batch`` consecutive indices of one
        episode go through the VAE together; a chunk found complete in the disk cache is read
        instead. Call :meth:`MotusEpisodeDataset.preload` first (else every clip is decoded
        from video). Tiny preset: 60 episodes x 107 indices x ~52 kB = ~330 MB of RAM.

        Returns:
            Number of (episode, condition index) entries held.
        """
        todo = [(ep, dataset.condition_indices(ep)) for ep in range(len(dataset.episodes))]
        bar = tqdm(
            total=sum(len(cs) for _, cs in todo),
            desc="features",
            unit="clip",
            disable=not progress,
        )
        n = self.vae_batch
        for ep, cs in todo:
            for start in range(0, len(cs), n):
                chunk = list(cs[start : start + n])
                items = [dataset.sample(ep, c) for c in chunk]
                keys = [(it["episode"], c) for it, c in zip(items, chunk, strict=True)]
                paths = [self._path(*k) if self.cache_dir is not None else None for k in keys]
                outs = [self._load(p) for p in paths]
                if any(o is None for o in outs):
                    latents = self._encode_clips(
                        torch.stack([it["first_frame"] for it in items]),
                        torch.stack([it["video_frames"] for it in items]),
                    )
                    for k, it in enumerate(items):
                        raw = it.get("vlm_inputs", {}).get("composite")
                        raw = raw.numpy() if raw is not None else None
                        vlm = self._vlm_one(it["first_frame"], raw, it["instruction"])
                        outs[k] = {"latents": latents[k].clone(), **vlm}
                        self._store(paths[k], outs[k])
                self._memory.update(zip(keys, outs, strict=True))
                bar.update(len(chunk))
        bar.close()
        return len(self._memory)

    def text_context(self, batch: dict) -> torch.Tensor:
        """(B, text_len, text_dim) zero-padded T5 context, float32 on ``device``.

        Raises:
            ValueError: dataset embeddings whose width is not the config's ``text_dim``.
        """
        cfg = self.policy.model.config
        instructions = [self.policy.model_instruction(t) for t in batch["instruction"]]
        if self.text_source == "encoder":
            return self.policy.text_encoder.encode(instructions).float().to(self.device)
        ctx = batch["language_embedding"].float()[:, : cfg.text_len]
        if ctx.shape[-1] != cfg.text_dim:
            raise ValueError(
                f"language_embedding: width {ctx.shape[-1]} != config.text_dim {cfg.text_dim}; "
                "use text_source='encoder' to embed the instructions with the policy's T5"
            )
        if self.text_source == "mixed":
            missing = [i for i in range(ctx.shape[0]) if not bool(ctx[i].any())]
            if missing:
                enc = self.policy.text_encoder.encode([instructions[i] for i in missing])
                ctx[missing] = enc.float().cpu()[:, : cfg.text_len]
        return ctx.to(self.device)

    @torch.no_grad()
    def __call__(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of a whole batch.

        Returns:
            ``(clip_latents (B, C, T', h, w), vlm (B, L, D), text (B, Lt, Dt))``, float32 on
            ``device``; a shorter prompt's VLM rows past its length hold its pad state, as the
            official batch (:func:`~motus_policy.model.encoders.vlm.pad_features`).
        """
        per = [self.sample_features(batch, i) for i in range(len(batch["instruction"]))]
        latents = torch.stack([p["latents"] for p in per]).to(self.device)
        vlm, _ = pad_features([p["vlm"] for p in per], [p["vlm_pad"] for p in per])
        return latents, vlm.to(self.device), self.text_context(batch)
