"""Frozen-encoder features of a training batch, with an optional per-sample disk cache.

Per sample (reference §2.1, §4.2, §4.5):

* clip latents: the condition frame + F future frames (pad-to-fit H x W, [0, 1]) encoded by the
  frozen Wan2.2 VAE -> (C, T', h, w). The condition latent is the clip's latent frame 0 (the
  causal VAE encodes the first frame alone; the official code encodes it a second time).
* VLM features: Qwen3-VL last hidden states of (image, instruction), image per ``vlm_image``.
* T5 context: the dataset's UMT5 embedding, or the policy's text encoder (LRU per instruction).

VAE latents and VLM features depend only on (episode, condition index) for a fixed encoder and
geometry, so they are cached on disk under a key that includes a fingerprint of the encoder
weights and every setting that changes them. On CPU the VAE encode dominates a tiny step.
Samples are encoded one at a time so cached and fresh values are bit-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from motus_policy.model.pipeline import MotusPolicy


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
    """

    def __init__(
        self,
        policy: MotusPolicy,
        device: torch.device,
        text_source: str,
        vlm_image: str,
        cache_dir: str | os.PathLike[str] | None,
        geometry: dict,
    ) -> None:
        if text_source not in ("dataset", "encoder", "mixed"):
            raise ValueError(
                f"text_source: expected 'dataset', 'encoder' or 'mixed', got {text_source!r}"
            )
        self.policy, self.device = policy, device
        self.text_source, self.vlm_image = text_source, vlm_image
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.hits = self.misses = 0
        self._prefix = ""
        if self.cache_dir is not None:
            vlm_settings = {
                k: str(v) for k, v in vars(policy.vlm.config).items()
            }  # prompt order etc.
            self._prefix = module_fingerprint(
                policy.vae,
                policy.vlm.model,
                extra={**geometry, "vlm_image": vlm_image, "vlm": vlm_settings},
            )

    def _path(self, episode: str, c: int) -> Path:
        key = hashlib.blake2b(f"{self._prefix}|{episode}|{c}".encode(), digest_size=16)
        name = key.hexdigest()
        return self.cache_dir / name[:2] / f"{name}.pt"

    def _encode_one(self, batch: dict, i: int) -> dict[str, torch.Tensor]:
        clip = torch.cat([batch["first_frame"][i : i + 1], batch["video_frames"][i]], dim=0)
        pixels = clip.permute(1, 0, 2, 3)[None].to(self.device)  # (1, 3, 1+F, H, W)
        latents = self.policy.vae.encode(pixels)[0].float().cpu()
        if self.vlm_image == "model":
            image = to_uint8_hwc(batch["first_frame"][i])
        else:
            image = batch["composite"][i]
        feats, _ = self.policy.vlm.features([image], [batch["instruction"][i]], use_cache=False)
        return {"latents": latents, "vlm": feats[0].float().cpu()}

    def sample_features(self, batch: dict, i: int) -> dict[str, torch.Tensor]:
        """Latents (C, T', h, w) and VLM features (L, D) of item ``i`` (cached when enabled)."""
        path = None
        if self.cache_dir is not None:
            path = self._path(batch["episode"][i], int(batch["condition_index"][i]))
            if path.is_file():
                self.hits += 1
                return torch.load(path, map_location="cpu", weights_only=True)
        self.misses += 1
        out = self._encode_one(batch, i)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            torch.save(out, tmp)
            tmp.replace(path)  # atomic: concurrent ranks write identical content
        return out

    def text_context(self, batch: dict) -> torch.Tensor:
        """(B, text_len, text_dim) zero-padded T5 context, float32 on ``device``.

        Raises:
            ValueError: dataset embeddings whose width is not the config's ``text_dim``.
        """
        cfg = self.policy.model.config
        instructions = list(batch["instruction"])
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
            ``(clip_latents (B, C, T', h, w), vlm (B, L, D) zero-padded, text (B, Lt, Dt))``,
            float32 on ``device``.
        """
        per = [self.sample_features(batch, i) for i in range(len(batch["instruction"]))]
        latents = torch.stack([p["latents"] for p in per]).to(self.device)
        n_tok = max(p["vlm"].shape[0] for p in per)
        vlm = torch.zeros(len(per), n_tok, per[0]["vlm"].shape[-1])
        for i, p in enumerate(per):
            vlm[i, : p["vlm"].shape[0]] = p["vlm"]
        return latents, vlm.to(self.device), self.text_context(batch)
