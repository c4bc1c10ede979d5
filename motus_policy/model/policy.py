"""numpy-in / numpy-out Motus inference: ``MotusPolicy.predict(observation) -> ActionChunk``.

One call (reference §2.2, §3.4, §4.2, §6):

1. T-layout composite of ``cam_high`` / ``cam_left_wrist`` / ``cam_right_wrist``
   (:func:`motus_recorder.composite.compose_t_layout`), pad-to-fit to the config's H x W.
2. State min-max normalised with the checkpoint's stats, ``(x - min) / (max - min)`` (range 0
   replaced by 1; keys §8); outputs de-normalised with ``y (max - min) + min``.
3. Condition frame -> VAE latent; instruction -> T5 context (LRU per instruction); composite +
   instruction -> Qwen3-VL features (once per observation); text cross-attention K/V
   precomputed once per call.
4. Euler sampling in the requested mode (:class:`~motus_policy.model.sampler.MotusSampler`).
5. VAE decode only when frames are requested.

``use_caches=False`` reproduces the official loop's redundancy (VLM + und adapter re-run at
every step, T5 re-encoded per call, no text K/V cache) and ``always_decode`` its unconditional
VAE decode; the benchmark times both paths. Results are identical up to float rounding.

Threads: one call at a time (the encoders keep caches and the VAE a conv cache); run it on the
inference worker thread, never in a control callback.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from motus_policy.model.encoders.text import T5TextEncoder
from motus_policy.model.encoders.vae import MotusVAE
from motus_policy.model.encoders.vlm import VLMFeatureExtractor
from motus_policy.model.modeling_motus import MotusModel
from motus_policy.model.sampler import MODES, MotusSampler
from motus_policy.types import ActionChunk, Observation
from motus_recorder import schema
from motus_recorder.composite import compose_t_layout, resize_pad

STAGES = ("preprocess", "vae_encode", "text", "vlm", "denoise", "decode")


MIN_NORMALIZATION_RANGE = 1e-3
"""Smallest per-dimension ``max - min`` (rad, or normalised gripper) used as a divisor. The
official rule replaces only an exact 0 by 1 (reference §4.2); a joint that never moves in the
data (e.g. a waist held at 0) has a range of ~1e-15 from float noise, and dividing by it turns
a 1e-5 rad sensor wiggle into 1e10. Below 1 mrad the range is replaced by 1 as well (identical
to the official rule for every real range)."""


def safe_range(lo, hi) -> np.ndarray:
    """``hi - lo`` (float64, (D,)) with ranges below :data:`MIN_NORMALIZATION_RANGE` set to 1."""
    r = np.asarray(hi, np.float64) - np.asarray(lo, np.float64)
    return np.where(r < MIN_NORMALIZATION_RANGE, 1.0, r)


@dataclass(frozen=True)
class NormalizationStats:
    """Per-dimension min-max statistics (official ``stat.json`` entry; keys §8).

    Attributes:
        min: float64 (D,) per-dimension minimum.
        max: float64 (D,) per-dimension maximum (>= min).
    """

    min: np.ndarray
    max: np.ndarray

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.min, np.float64), np.asarray(self.max, np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape:
            raise ValueError(
                f"NormalizationStats: expected (D,) min/max, got {lo.shape}/{hi.shape}"
            )
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(hi >= lo)):
            raise ValueError(f"NormalizationStats: expected finite max >= min, got {lo} / {hi}")
        object.__setattr__(self, "min", lo)
        object.__setattr__(self, "max", hi)

    @property
    def range(self) -> np.ndarray:
        """``max - min``; ranges below :data:`MIN_NORMALIZATION_RANGE` replaced by 1."""
        return safe_range(self.min, self.max)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """``(x - min) / range`` for (..., D) arrays; float32."""
        return ((np.asarray(x, np.float64) - self.min) / self.range).astype(np.float32)

    def denormalize(self, y: np.ndarray) -> np.ndarray:
        """``y * range + min`` for (..., D) arrays; float32."""
        return (np.asarray(y, np.float64) * self.range + self.min).astype(np.float32)

    @classmethod
    def identity(cls, dim: int = schema.STATE_DIM) -> NormalizationStats:
        """Min 0, max 1: no normalisation (RoboTwin, ``action_normalization="none"``)."""
        return cls(np.zeros(dim), np.ones(dim))

    def to_json(self, key: str) -> dict:
        """``{key: {"min": [...], "max": [...]}}`` (stat.json style)."""
        return {key: {"min": self.min.tolist(), "max": self.max.tolist()}}

    @classmethod
    def from_json(cls, data: dict, key: str) -> NormalizationStats:
        """Read entry ``key`` of a stat.json-style dict.

        Raises:
            KeyError: ``key`` absent (names the keys present).
        """
        if key not in data:
            raise KeyError(f"stats: no entry {key!r}; entries: {sorted(data)}")
        return cls(np.asarray(data[key]["min"]), np.asarray(data[key]["max"]))


@dataclass(frozen=True)
class PolicyConfig:
    """Runtime settings of :class:`MotusPolicy`.

    Attributes:
        action_rate_hz: rate of the predicted actions (30 for the real-robot configs).
        use_caches: T5 LRU, VLM once per observation and text K/V cache (False = official path).
        always_decode: decode the predicted video even when frames are not requested (official).
        vlm_image: "model" = the padded H x W frame (official deployment) or "composite" = the
            original-resolution composite (official ac_one/aloha training; reference §9.6).
        stats_key: entry of stats.json used for normalisation.
        qpos_source: what the training data's qpos held, from the recorder's episode metadata:
            "command" (commanded joint positions) or "state" (measured joint states); None when
            unknown (official checkpoints). The policy node's ``state_source: auto`` follows it.
    """

    action_rate_hz: float = 30.0
    use_caches: bool = True
    always_decode: bool = False
    vlm_image: str = "model"
    stats_key: str = "default"
    qpos_source: str | None = None

    def __post_init__(self) -> None:
        if not self.action_rate_hz > 0:
            raise ValueError(
                f"PolicyConfig.action_rate_hz: expected > 0, got {self.action_rate_hz}"
            )
        if self.vlm_image not in ("model", "composite"):
            raise ValueError(
                f"PolicyConfig.vlm_image: expected 'model' or 'composite', got {self.vlm_image!r}"
            )
        if self.qpos_source not in (None, "command", "state"):
            raise ValueError(
                f"PolicyConfig.qpos_source: expected 'command', 'state' or None, "
                f"got {self.qpos_source!r}"
            )


class _PerStepConditioning(nn.Module):
    """Official-path adapter: rebuilds the conditioning at every network call."""

    def __init__(self, model: MotusModel, make_conditioning) -> None:
        super().__init__()
        self.model = model
        self.config = model.config
        self._make = make_conditioning

    def forward(self, video, actions, t_v, t_a, state, conditioning):
        return self.model(video, actions, t_v, t_a, state, self._make())


class MotusPolicy:
    """Motus model + encoders + normalisation behind a numpy API.

    Args:
        model: the network (eval mode is set here); its device/dtype are used for inference.
        vae: Wan2.2 VAE wrapper (kept fp32, same device).
        text_encoder: UMT5 encoder with cache (width = ``config.text_dim``).
        vlm: Qwen3-VL feature extractor (width = ``config.vlm_hidden_size``).
        stats: min-max stats for state/actions; identity when the model is un-normalised.
        config: runtime settings.

    Attributes:
        last_timings_s: stage -> seconds of the last call (:data:`STAGES`).
    """

    def __init__(
        self,
        model: MotusModel,
        vae: MotusVAE,
        text_encoder: T5TextEncoder,
        vlm: VLMFeatureExtractor,
        stats: NormalizationStats | None = None,
        config: PolicyConfig | None = None,
    ) -> None:
        self.model = model.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder
        self.vlm = vlm
        self.config = config or PolicyConfig()
        cfg = model.config
        self.stats = stats or NormalizationStats.identity(cfg.action_dim)
        if text_encoder.dim != cfg.text_dim:
            raise ValueError(
                f"text encoder width {text_encoder.dim} != config.text_dim {cfg.text_dim}"
            )
        if vlm.dim != cfg.vlm_hidden_size:
            raise ValueError(
                f"VLM width {vlm.dim} != config.vlm_hidden_size {cfg.vlm_hidden_size}"
            )
        if vae.config.z_dim != cfg.latent_channels:
            raise ValueError(
                f"VAE z_dim {vae.config.z_dim} != latent_channels {cfg.latent_channels}"
            )
        if vae.config.spatial_factor != cfg.vae_spatial_factor:
            raise ValueError(
                f"VAE spatial factor {vae.config.spatial_factor} != config.vae_spatial_factor "
                f"{cfg.vae_spatial_factor}"
            )
        self.last_timings_s: dict[str, float] = dict.fromkeys(STAGES, 0.0)

    @property
    def device(self) -> torch.device:
        """Device of the network parameters."""
        return next(self.model.parameters()).device

    @property
    def period_ns(self) -> int:
        """Spacing of consecutive actions, int ns."""
        return round(1e9 / self.config.action_rate_hz)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _composites(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        missing = [c for c in schema.CAMERA_NAMES if c not in obs.images]
        if missing:
            raise ValueError(
                f"observation.images: missing cameras {missing}; have {sorted(obs.images)}"
            )
        comp = compose_t_layout(*(obs.images[c] for c in schema.CAMERA_NAMES))
        cfg = self.model.config
        return comp, resize_pad(comp, (cfg.image_height, cfg.image_width))

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        # (B, F, H, W, 3) uint8 -> (B, 3, F, H, W) float in [0, 1]
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(self.device)
        return x.permute(0, 4, 1, 2, 3).float() / 255.0

    def predict(self, observation: Observation, mode: str = "joint", **kwargs) -> ActionChunk:
        """Predict one chunk (batch 1).

        Arguments as :meth:`predict_batch`, unbatched: ``action_prefix`` (d, 14), ``actions``
        (A, 14), ``future_frames`` (F, h, w, 3) uint8.
        """
        batched = {
            k: (None if kwargs.get(k) is None else np.asarray(kwargs[k])[None])
            for k in ("action_prefix", "actions", "future_frames")
        }
        rest = {k: v for k, v in kwargs.items() if k not in batched}
        return self.predict_batch([observation], mode=mode, **batched, **rest)[0]

    @torch.no_grad()
    def predict_batch(
        self,
        observations: Sequence[Observation],
        mode: str = "joint",
        num_steps: int | None = None,
        return_frames: bool = False,
        action_prefix: np.ndarray | None = None,
        actions: np.ndarray | None = None,
        future_frames: np.ndarray | None = None,
        seed: int | None = None,
    ) -> list[ActionChunk]:
        """Predict one chunk per observation.

        Args:
            observations: B observations (three cameras, state (14,), instruction).
            mode: "joint" | "vla" | "wm" | "idm" | "vgm" (reference §2.3).
            num_steps: Euler steps (default: the config's, 10).
            return_frames: decode and return the predicted frames (joint/wm/vgm).
            action_prefix: (B, d, 14) joint-space actions to inpaint (de-normalised units).
            actions: (B, A, 14) joint-space actions, required for ``wm``.
            future_frames: (B, F, h, w, 3) uint8 observed future composites, required for
                ``idm``; resized with pad-to-fit to H x W.
            seed: seeds the initial noise (same seed -> same result).

        Returns:
            B :class:`ActionChunk` s: ``actions`` float32 (A, 14) de-normalised (NaN in ``vgm``,
            which predicts no actions; the given actions in ``wm``), ``t0_ns`` = observation
            stamp, ``frames`` uint8 (F, H, W, 3) when requested, frame j (1-based) due at
            ``t0 + j r period`` (it coincides with action j r; reference §3.2).

        Raises:
            ValueError: unknown mode, missing mode input, bad shapes.
        """
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        t_start = time.perf_counter_ns()
        timings = dict.fromkeys(STAGES, 0.0)
        cfg, dev = self.model.config, self.device
        B, A, F = len(observations), cfg.action_chunk_size, cfg.num_video_frames
        caches = self.config.use_caches

        def lap(stage: str, t0: float) -> float:
            self._sync()
            now = time.perf_counter()
            timings[stage] += now - t0
            return now

        t = time.perf_counter()
        comps, frames0 = zip(*(self._composites(o) for o in observations), strict=True)
        instructions = [o.instruction for o in observations]
        vlm_images = list(frames0) if self.config.vlm_image == "model" else list(comps)
        state = None
        if cfg.has_state:
            s = np.stack([self.stats.normalize(o.state) for o in observations])
            state = torch.from_numpy(s).to(dev)

        def joint_tensor(
            x: np.ndarray | None, name: str, length: int | None
        ) -> torch.Tensor | None:
            if x is None:
                return None
            x = np.asarray(x, np.float64)
            if (
                x.ndim != 3
                or x.shape[0] != B
                or x.shape[2] != cfg.action_dim
                or (length is not None and x.shape[1] != length)
            ):
                want = f"({B}, {length if length else 'd'}, {cfg.action_dim})"
                raise ValueError(f"{name}: expected {want}, got {x.shape}")
            return torch.from_numpy(self.stats.normalize(x)).to(dev)

        prefix_t = joint_tensor(action_prefix, "action_prefix", None)
        actions_t = joint_tensor(actions, "actions", A)
        t = lap("preprocess", t)

        cond_latent = self.vae.encode(self._pixels(np.stack(frames0)[:, None]))
        clip_latents = None
        if future_frames is not None:
            ff = np.asarray(future_frames)
            if ff.ndim != 5 or ff.shape[0] != B or ff.shape[1] != F or ff.dtype != np.uint8:
                raise ValueError(
                    f"future_frames: expected uint8 ({B}, {F}, h, w, 3), got {ff.dtype} {ff.shape}"
                )
            hw = (cfg.image_height, cfg.image_width)
            clip = np.stack(
                [
                    [f0, *(resize_pad(f, hw) for f in fb)]
                    for f0, fb in zip(frames0, ff, strict=True)
                ]
            )
            clip_latents = self.vae.encode(self._pixels(clip))
        t = lap("vae_encode", t)

        text = self.text_encoder.encode(instructions, use_cache=caches)
        t = lap("text", t)
        vlm_feats, _ = self.vlm.features(vlm_images, instructions, use_cache=caches)
        t = lap("vlm", t)

        model: nn.Module = self.model
        if caches:
            cond = self.model.prepare_conditioning(text, vlm_feats, cache_text_kv=True)
        else:
            cond = self.model.prepare_conditioning(text, vlm_feats, cache_text_kv=False)

            def per_step():
                feats, _ = self.vlm.features(vlm_images, instructions, use_cache=False)
                return type(cond)(cond.text_context, self.model.encode_und(feats), None)

            model = _PerStepConditioning(self.model, per_step)
        sampler = MotusSampler(model, num_steps=num_steps)
        gen = None
        if seed is not None:
            gen = torch.Generator(device=dev).manual_seed(int(seed))
        out = sampler.sample(
            mode,
            cond_latent,
            cond,
            state,
            actions=actions_t,
            video_latents=clip_latents,
            action_prefix=prefix_t,
            generator=gen,
        )
        t = lap("denoise", t)

        frames = None
        if out.video_latents is not None and (return_frames or self.config.always_decode):
            video = self.vae.decode(out.video_latents)[:, :, 1:]  # drop the condition frame
            frames = (video.permute(0, 2, 3, 4, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
        lap("decode", t)

        if out.actions is None:
            acts = np.full((B, A, cfg.action_dim), np.nan, np.float32)
        else:
            acts = self.stats.denormalize(out.actions.float().cpu().numpy())
        latency = time.perf_counter_ns() - t_start
        self.last_timings_s = timings
        period = self.period_ns
        r = cfg.video_action_freq_ratio
        chunks = []
        for b, obs in enumerate(observations):
            fr = frames[b] if (frames is not None and return_frames) else None
            stamps = (
                tuple(obs.stamp_ns + j * r * period for j in range(1, F + 1))
                if fr is not None
                else None
            )
            chunks.append(
                ActionChunk(
                    actions=acts[b],
                    t0_ns=obs.stamp_ns,
                    period_ns=period,
                    frames=fr,
                    frame_stamps_ns=stamps,
                    latency_ns=latency,
                )
            )
        return chunks

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write this policy as a folder (see ``checkpoint.save_pretrained``)."""
        from motus_policy.model.checkpoint import save_pretrained

        return save_pretrained(self, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
    ) -> MotusPolicy:
        """Load a folder written by :meth:`save_pretrained`."""
        from motus_policy.model.checkpoint import load_pretrained

        return load_pretrained(directory, device=device, dtype=dtype)


def build_tiny_policy(
    seed: int = 0, stats: NormalizationStats | None = None, **policy_kwargs
) -> MotusPolicy:
    """Random-weight tiny policy (``MotusConfig`` preset ``tiny`` + tiny encoders), fp32 CPU."""
    from motus_policy.model.configuration_motus import MotusConfig
    from motus_policy.model.encoders.tiny import build_tiny_encoders

    cfg = MotusConfig.from_preset("tiny")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MotusModel(cfg)
    vae, text, vlm = build_tiny_encoders(
        seed=seed, text_dim=cfg.text_dim, vlm_dim=cfg.vlm_hidden_size, context_len=cfg.text_len
    )
    return MotusPolicy(model, vae, text, vlm, stats, PolicyConfig(**policy_kwargs))
