"""numpy-in / numpy-out Motus inference: ``MotusPolicy.predict(observation) -> ActionChunk``.

One call (docs/motus.md §2.2, §3.4, §4.2, §6), in the steps of ``MotusPolicy.predict_batch``:

1. prepare: T-layout composite of ``cam_high`` / ``cam_left_wrist`` / ``cam_right_wrist``
   (:func:`motus_recorder.composite.compose_t_layout`), pad-to-fit to the config's H x W;
   state and joint inputs min-max normalised with the checkpoint's stats
   (:class:`~motus_policy.model.normalization.NormalizationStats`).
2. encode: condition frame -> VAE latent; instruction -> T5 context (LRU per instruction);
   composite + instruction -> Qwen3-VL features (once per observation).
3. sample: text cross-attention K/V precomputed once per call; Euler sampling in the requested
   mode (:class:`~motus_policy.model.sampler.MotusSampler`).
4. decode: VAE decode only when frames are requested.
5. to_chunks: actions de-normalised with ``y (max - min) + min``; one ``ActionChunk`` per
   observation.

``use_caches=False`` reproduces the official loop's redundancy (VLM + und adapter re-run at
every step, T5 re-encoded per call, no text K/V cache) and ``always_decode`` its unconditional
VAE decode; the benchmark times both paths. Results are identical up to float rounding.

Threads: one call at a time (the encoders keep caches and the VAE a conv cache); run it on the
inference worker thread, never in a control callback.
"""

from __future__ import annotations

import dataclasses
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
from motus_policy.model.modeling_motus import MotusConditioning, MotusModel
from motus_policy.model.normalization import MIN_NORMALIZATION_RANGE, NormalizationStats
from motus_policy.model.pretrained import PretrainedParts, load_pretrained, save_pretrained
from motus_policy.model.sampler import MODES, MotusSampler, SampleOutput
from motus_policy.types import ActionChunk, Observation
from motus_recorder import schema
from motus_recorder.composite import compose_t_layout, resize_pad

STAGES = ("preprocess", "vae_encode", "text", "vlm", "denoise", "decode")


@dataclass(frozen=True)
class PolicyConfig:
    """Runtime settings of :class:`MotusPolicy`.

    Attributes:
        action_rate_hz: rate of the predicted actions (30 for the real-robot configs).
        use_caches: T5 LRU, VLM once per observation and text K/V cache (False = official path).
        always_decode: decode the predicted video even when frames are not requested (official).
        vlm_image: "model" = the padded H x W frame (official deployment) or "composite" = the
            original-resolution composite (official ac_one/aloha training; docs/motus.md §9.6).
        stats_key: entry of stats.json used for normalisation.
        qpos_source: what the training data's qpos held, from the recorder's episode metadata:
            "command" (commanded joint positions) or "state" (measured joint states); None when
            unknown (official checkpoints). The policy node's ``state_source: auto`` follows it.
        recommended_n_action_steps: actions per chunk to execute before re-planning that this
            checkpoint recommends (1..A; None: no recommendation, e.g. official checkpoints).
            The runtime's ``n_action_steps: 0`` uses it (the whole chunk when None).
        normalization_min_range: per-dimension ``max - min`` below which the range is replaced
            by 1 (besides an exact zero). 0 = the official rule (official checkpoints,
            docs/motus.md §4.2); checkpoints trained here record
            :data:`~motus_policy.model.normalization.MIN_NORMALIZATION_RANGE` (1e-3), and our
            folders from before this field are read with it too (``from_pretrained``).
    """

    action_rate_hz: float = 30.0
    use_caches: bool = True
    always_decode: bool = False
    vlm_image: str = "model"
    stats_key: str = "default"
    qpos_source: str | None = None
    recommended_n_action_steps: int | None = None
    normalization_min_range: float = 0.0

    def __post_init__(self) -> None:
        if not self.action_rate_hz > 0:
            raise ValueError(
                f"PolicyConfig.action_rate_hz: expected > 0, got {self.action_rate_hz}"
            )
        if self.vlm_image not in ("model", "composite"):
            raise ValueError(
                f"PolicyConfig.vlm_image: expected 'model' or 'composite', got {self.vlm_image!r}"
            )
        n = self.recommended_n_action_steps
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(
                f"PolicyConfig.recommended_n_action_steps: expected an int >= 1 or None, got {n!r}"
            )
        r = self.normalization_min_range
        if isinstance(r, bool) or not isinstance(r, int | float) or not 0 <= r < float("inf"):
            raise ValueError(
                f"PolicyConfig.normalization_min_range: expected a finite number >= 0, got {r!r}"
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

    @property
    def compute_dtype(self) -> torch.dtype:
        """The wrapped network's run dtype (the sampler's grid follows it)."""
        return self.model.compute_dtype

    def forward(self, video, actions, t_v, t_a, state, conditioning):
        return self.model(video, actions, t_v, t_a, state, self._make())


class _StageTimer:
    """Wall time per stage of :data:`STAGES`: :meth:`lap` adds the time since the last lap."""

    def __init__(self, sync) -> None:
        self._sync = sync
        self.timings: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Synchronise the device, then add the seconds since the previous lap to ``stage``."""
        self._sync()
        now = time.perf_counter()
        self.timings[stage] += now - self._t
        self._t = now


@dataclass
class _Prepared:
    """Inputs of one :meth:`MotusPolicy.predict_batch` call as the encoders and sampler take them.

    Attributes:
        frames0: uint8 (B, H, W, 3) condition composites, pad-fitted to the model size.
        vlm_images: B uint8 (h, w, 3) images for Qwen3-VL (``PolicyConfig.vlm_image``).
        instructions: B instructions.
        state: float32 (B, 14) normalised state on the model device; None for pretrain models.
        action_prefix: float32 (B, d, 14) normalised actions to inpaint, or None.
        actions: float32 (B, A, 14) normalised given actions (``wm``), or None.
        clip: uint8 (B, 1 + F, H, W, 3) condition + observed future frames (``idm``), or None.
    """

    frames0: np.ndarray
    vlm_images: list[np.ndarray]
    instructions: list[str]
    state: torch.Tensor | None
    action_prefix: torch.Tensor | None
    actions: torch.Tensor | None
    clip: np.ndarray | None


@dataclass
class _Encoded:
    """Frozen-encoder outputs of one call.

    Attributes:
        cond_latent: (B, C, 1, h, w) normalised VAE latent of the condition frame.
        clip_latents: (B, C, T', h, w) latents of ``_Prepared.clip``, or None.
        text: (B, text_len, text_dim) T5 context in the model dtype.
        vlm_features: (B, L, vlm_hidden_size) Qwen3-VL features, right-padded to the longest
            prompt with each row's pad state (official batching; ``encoders/vlm.py``).
    """

    cond_latent: torch.Tensor
    clip_latents: torch.Tensor | None
    text: torch.Tensor
    vlm_features: torch.Tensor


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
        if self.stats.min.shape[0] != cfg.action_dim:
            raise ValueError(
                f"normalisation stats ({self.config.stats_key!r}): expected {cfg.action_dim} "
                f"dimensions (action_dim), got {self.stats.min.shape[0]}"
            )
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

    def to_runtime(
        self, device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto"
    ) -> MotusPolicy:
        """Move to ``device`` in the official run precision, in place.

        The network goes through :meth:`MotusModel.to_runtime` (bf16 matrices with fp32 time
        MLPs and AdaLN tables and float64 RoPE when ``dtype`` is bf16); T5 and Qwen3-VL take
        ``dtype`` (the official deployment runs both in bf16); the VAE stays fp32. The sampling
        grid follows the network dtype (:class:`~motus_policy.model.sampler.MotusSampler`).

        Args:
            device: ``cpu``, ``cuda[:i]``.
            dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``float32``, ``bfloat16`` or one of
                those torch dtypes.

        Returns:
            ``self``.

        Raises:
            ValueError: an unknown dtype name.
        """
        from motus_policy.model.modeling_motus import resolve_dtype

        run = resolve_dtype(dtype, device)
        self.model.to_runtime(device, run)
        self.text_encoder.model.to(device=device, dtype=run)
        self.vlm.model.to(device=device, dtype=run)
        self.vae.to(device=device, dtype=torch.float32)
        self.text_encoder.clear_cache()
        self.vlm.clear_cache()
        return self

    @property
    def normalization(self) -> NormalizationStats:
        """``stats`` with the checkpoint's range rule (``config.normalization_min_range``)."""
        return dataclasses.replace(self.stats, min_range=self.config.normalization_min_range)

    def model_instruction(self, instruction: str) -> str:
        """The text both T5 and the VLM see.

        The preset's ``instruction_prefix`` + instruction, bounded to the official text length
        (:meth:`T5TextEncoder.fit`: 512 UMT5 tokens, truncated with a warning).

        The one place the prefix and the bound are applied, for inference and training
        (``MotusConfig.instruction_prefix``: RoboTwin's fixed scene description,
        docs/motus.md §6.2).
        """
        return self.text_encoder.fit(self.model.config.instruction_prefix + instruction)

    @property
    def period_ns(self) -> int:
        """Spacing of consecutive actions, int ns."""
        return round(1e9 / self.config.action_rate_hz)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _composites(self, obs: Observation) -> tuple[np.ndarray, np.ndarray]:
        """(raw T-layout composite, composite pad-fitted to H x W), uint8 (h, w, 3) each."""
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
            mode: "joint" | "vla" | "wm" | "idm" | "vgm" (docs/motus.md §2.3).
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
            ``t0 + j r period`` (it coincides with action j r; docs/motus.md §3.2).

        Raises:
            ValueError: unknown mode, missing mode input, bad shapes.
        """
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        t_start = time.perf_counter_ns()
        timer = _StageTimer(self._sync)
        inputs = self._prepare(observations, action_prefix, actions, future_frames)
        timer.lap("preprocess")
        encoded = self._encode(inputs, timer)
        out = self._sample(mode, inputs, encoded, num_steps, seed)
        timer.lap("denoise")
        frames = self._decode(out, return_frames)
        timer.lap("decode")
        chunks = self._to_chunks(observations, out, frames if return_frames else None, t_start)
        self.last_timings_s = timer.timings
        return chunks

    def _prepare(
        self,
        observations: Sequence[Observation],
        action_prefix: np.ndarray | None,
        actions: np.ndarray | None,
        future_frames: np.ndarray | None,
    ) -> _Prepared:
        """Step 1: numpy inputs -> composites and normalised tensors (shapes checked).

        Raises:
            ValueError: a missing camera, or ``action_prefix`` / ``actions`` / ``future_frames``
                of the wrong shape (or dtype).
        """
        cfg, dev = self.model.config, self.device
        B, A, F = len(observations), cfg.action_chunk_size, cfg.num_video_frames
        comps, frames0 = zip(*(self._composites(o) for o in observations), strict=True)
        state = None
        if cfg.has_state:
            norm = self.normalization
            s = np.stack([norm.normalize(o.state) for o in observations])  # (B, 14)
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
            return torch.from_numpy(self.normalization.normalize(x)).to(dev)

        clip = None
        if future_frames is not None:
            ff = np.asarray(future_frames)
            if ff.ndim != 5 or ff.shape[0] != B or ff.shape[1] != F or ff.dtype != np.uint8:
                raise ValueError(
                    f"future_frames: expected uint8 ({B}, {F}, h, w, 3), got {ff.dtype} {ff.shape}"
                )
            hw = (cfg.image_height, cfg.image_width)
            # B x [condition frame, F future frames] -> (B, 1 + F, H, W, 3)
            clip = np.stack(
                [
                    [f0, *(resize_pad(f, hw) for f in fb)]
                    for f0, fb in zip(frames0, ff, strict=True)
                ]
            )
        return _Prepared(
            frames0=np.stack(frames0),  # B x (H, W, 3) -> (B, H, W, 3)
            vlm_images=list(frames0) if self.config.vlm_image == "model" else list(comps),
            instructions=[self.model_instruction(o.instruction) for o in observations],
            state=state,
            action_prefix=joint_tensor(action_prefix, "action_prefix", None),
            actions=joint_tensor(actions, "actions", A),
            clip=clip,
        )

    def _encode(self, inputs: _Prepared, timer: _StageTimer) -> _Encoded:
        """Step 2: the frozen encoders (VAE, T5, Qwen3-VL; T5 / VLM caches when enabled)."""
        caches = self.config.use_caches
        # (B, H, W, 3) -> (B, 1, H, W, 3): the condition frame as a one-frame clip
        cond_latent = self.vae.encode(self._pixels(inputs.frames0[:, None]))
        clip_latents = None if inputs.clip is None else self.vae.encode(self._pixels(inputs.clip))
        timer.lap("vae_encode")
        text = self.text_encoder.encode(inputs.instructions, use_cache=caches)
        timer.lap("text")
        vlm_feats, _ = self.vlm.features(inputs.vlm_images, inputs.instructions, use_cache=caches)
        timer.lap("vlm")
        return _Encoded(cond_latent, clip_latents, text, vlm_feats)

    def _sample(
        self,
        mode: str,
        inputs: _Prepared,
        encoded: _Encoded,
        num_steps: int | None,
        seed: int | None,
    ) -> SampleOutput:
        """Step 3: per-call conditioning (text K/V cache) and the Euler sampler in ``mode``."""
        model: nn.Module = self.model
        if self.config.use_caches:
            cond = self.model.prepare_conditioning(
                encoded.text, encoded.vlm_features, cache_text_kv=True
            )
        else:
            cond = self.model.prepare_conditioning(
                encoded.text, encoded.vlm_features, cache_text_kv=False
            )

            def per_step() -> MotusConditioning:
                feats, _ = self.vlm.features(
                    inputs.vlm_images, inputs.instructions, use_cache=False
                )
                return MotusConditioning(cond.text_context, self.model.encode_und(feats), None)

            model = _PerStepConditioning(self.model, per_step)
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(int(seed))
        return MotusSampler(model, num_steps=num_steps).sample(
            mode,
            encoded.cond_latent,
            cond,
            inputs.state,
            actions=inputs.actions,
            video_latents=encoded.clip_latents,
            action_prefix=inputs.action_prefix,
            generator=gen,
        )

    def _decode(self, out: SampleOutput, return_frames: bool) -> np.ndarray | None:
        """Step 4: predicted latents -> uint8 (B, F, H, W, 3) frames when requested (or always)."""
        if out.video_latents is None or not (return_frames or self.config.always_decode):
            return None
        video = self.vae.decode(out.video_latents)[:, :, 1:]  # (B, 3, F, H, W): drop condition
        return (video.permute(0, 2, 3, 4, 1) * 255.0).round().to(torch.uint8).cpu().numpy()

    def _to_chunks(
        self,
        observations: Sequence[Observation],
        out: SampleOutput,
        frames: np.ndarray | None,
        t_start_ns: int,
    ) -> list[ActionChunk]:
        """Step 5: de-normalise the actions (NaN when none) and stamp one chunk per observation.

        Args:
            observations: the B observations (stamps).
            out: the sampler's result; actions (B, A, 14) normalised or None.
            frames: uint8 (B, F, H, W, 3) to return, or None.
            t_start_ns: ``perf_counter_ns`` at the start of the call (for ``latency_ns``).
        """
        cfg = self.model.config
        B, A, F = len(observations), cfg.action_chunk_size, cfg.num_video_frames
        if out.actions is None:
            acts = np.full((B, A, cfg.action_dim), np.nan, np.float32)
        else:
            acts = self.normalization.denormalize(out.actions.float().cpu().numpy())  # (B,A,14)
        latency = time.perf_counter_ns() - t_start_ns
        period = self.period_ns
        r = cfg.video_action_freq_ratio
        chunks = []
        for b, obs in enumerate(observations):
            fr = frames[b] if frames is not None else None
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
        """Write this policy as a folder (:func:`motus_policy.model.pretrained.save_pretrained`).

        Raises:
            FileExistsError: the folder already exists.
        """
        parts = PretrainedParts(
            model=self.model,
            vae=self.vae,
            text_encoder=self.text_encoder,
            vlm=self.vlm,
            policy_config=dataclasses.asdict(self.config),
            stats=self.stats.to_json(self.config.stats_key),
        )
        return save_pretrained(parts, directory)

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        device: str | torch.device = "cpu",
        dtype: str | torch.dtype | None = None,
    ) -> MotusPolicy:
        """Load a folder written by :meth:`save_pretrained`.

        Args:
            directory: the folder.
            device: where to put every model.
            dtype: run dtype (``auto``, ``float32``, ``bfloat16`` or a torch dtype), applied
                with :meth:`to_runtime` (fp32 time tables and RoPE kept); None: as stored.

        Raises:
            CheckpointMismatchError / KeyError: weights do not fit the stored configs.
            KeyError: ``stats.json`` has no entry for the stored ``stats_key``.
            ValueError: unknown format.
        """
        parts = load_pretrained(directory, device=device, dtype=dtype)
        stored = dict(parts.policy_config)
        # our folders from before the field were all trained here, with the 1e-3 floor
        stored.setdefault("normalization_min_range", MIN_NORMALIZATION_RANGE)
        config = PolicyConfig(**stored)
        where = Path(directory) / "stats.json"
        try:
            stats = NormalizationStats.from_json(parts.stats, config.stats_key)
        except (KeyError, ValueError) as e:
            raise type(e)(f"{where}: {e}") from e
        dim = parts.model.config.action_dim
        if stats.min.shape[0] != dim:
            raise ValueError(
                f"{where}: entry {config.stats_key!r} has {stats.min.shape[0]} dimensions, "
                f"expected {dim} (the model's action_dim)"
            )
        return cls(parts.model, parts.vae, parts.text_encoder, parts.vlm, stats, config)


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
