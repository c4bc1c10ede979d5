"""`MotusConfig`: every hyper-parameter of the Motus network, sampler and training objective.

The config travels with checkpoints (``to_dict`` / ``from_dict`` are JSON-safe). Presets
follow the official YAML files (docs/motus.md §1, §3.1); ``tiny`` keeps the architecture and
shrinks every width so that tests and the shipped demo checkpoint run on a laptop CPU.

Sources: docs/motus.md (the Motus facts, each with its source in the paper and the
official code) and docs/checkpoint-format.md (the official checkpoint layout).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

TRAINING_MODES = ("finetune", "pretrain")
ACTION_NORMALIZATIONS = ("none", "min_max")
_POSITIVE_INT_FIELDS = (
    "num_video_frames",
    "video_action_freq_ratio",
    "global_downsample_rate",
    "image_height",
    "image_width",
    "action_dim",
    "state_dim",
    "latent_channels",
    "vae_spatial_factor",
    "vae_temporal_factor",
    "num_layers",
    "num_heads",
    "head_dim",
    "wan_ffn_dim",
    "freq_dim",
    "text_dim",
    "text_len",
    "rope_max_seq_len",
    "action_hidden_size",
    "action_ffn_dim",
    "und_hidden_size",
    "und_ffn_dim",
    "vlm_hidden_size",
    "num_train_timesteps",
    "num_inference_steps",
)


@dataclass(frozen=True)
class MotusConfig:
    """Validated Motus hyper-parameters (frozen; derive variants with ``dataclasses.replace``).

    Dimension letters: ``F`` predicted video frames, ``r`` actions per video frame, ``A = F·r``
    actions per chunk, ``T' = 1 + F/4`` latent frames, ``H, W`` image pixels.

    Raises:
        ValueError: naming the field and the bad value, from ``__post_init__``.
    """

    # --- identity / data sampling (docs/motus.md §3.1) -------------------------------------------
    preset: str = "custom"  # name of the preset this config was built from (informational)
    training_mode: str = (
        "finetune"  # "finetune" (state + actions + registers) | "pretrain" (docs/motus.md §1.3)
    )
    num_video_frames: int = 8  # F, predicted future frames (all shipped configs: 8)
    video_action_freq_ratio: int = 2  # r, actions per predicted video frame
    global_downsample_rate: int = 3  # g, raw frames between consecutive actions (dataset stride)
    image_height: int = 384  # H in pixels of the T-layout composite (docs/motus.md §3.3)
    image_width: int = 320  # W in pixels
    action_dim: int = 14  # joint vector width (docs/motus.md §4.1, 14-D layout)
    state_dim: int = 14  # state vector width (finetune mode only)
    num_registers: int = (
        4  # learnable register tokens after the actions (finetune: 4, pretrain: 0)
    )
    action_normalization: str = (
        "none"  # "none" (RoboTwin raw qpos) | "min_max" to [0, 1] (docs/motus.md §4.2)
    )
    normalization_key: str = ""  # stat.json key for min_max ("ac_one", "aloha_agilex_2")
    # text put in front of every instruction, for both T5 and the VLM (the checkpoint was
    # trained and deployed with it): RoboTwin's fixed scene description
    # (ROBOTWIN_INSTRUCTION_PREFIX), empty for the other presets (docs/motus.md §6.2)
    instruction_prefix: str = ""

    # --- VAE geometry (docs/motus.md §3.3; the VAE itself lives in encoders/) --------------------
    latent_channels: int = 48  # Wan2.2 VAE z_dim
    vae_spatial_factor: int = 16  # pixels per latent cell (2x2 unshuffle + 8x conv)
    vae_temporal_factor: int = 4  # frames per latent frame after the first (causal)

    # --- video expert: Wan2.2-TI2V-5B DiT (docs/motus.md §1.2, docs/checkpoint-format.md §2.1) ---
    num_layers: int = 30  # shared by all three experts (layer-synchronous MoT)
    num_heads: int = 24  # Wan heads; the joint attention runs in this head space
    head_dim: int = 128  # per-head width; Wan dim = num_heads * head_dim = 3072
    wan_ffn_dim: int = 14336  # Wan FFN inner width
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (t, h, w) latent patch
    freq_dim: int = 256  # sinusoidal timestep width (video and action experts)
    text_dim: int = 4096  # UMT5-XXL hidden size
    text_len: int = 512  # T5 context rows after zero padding (docs/motus.md §1.2, §9.3)
    wan_eps: float = 1e-6  # Wan LayerNorm / RMSNorm epsilon
    rope_max_seq_len: int = 1024  # RoPE table length (docs/motus.md §1.2)

    # --- action expert (docs/motus.md §1.3, docs/checkpoint-format.md §3) ------------------------
    action_hidden_size: int = 1024
    action_ffn_dim: int = 4096
    action_eps: float = 1e-5  # training YAMLs; RoboTwin deploy uses 1e-6 (docs/motus.md §9.8)

    # --- understanding expert + VLM (docs/motus.md §1.4, docs/checkpoint-format.md §4) -----------
    und_hidden_size: int = 512
    und_ffn_dim: int = 2048
    und_eps: float = 1e-5
    vlm_hidden_size: int = 2048  # Qwen3-VL-2B text hidden size (last hidden state width)

    # --- diffusion (docs/motus.md §2) ------------------------------------------------------------
    num_train_timesteps: int = 1000  # t = 1000·σ
    train_shift: float = 5.0  # training σ table shift (docs/motus.md §2.1)
    num_inference_steps: int = 10  # Euler steps over linspace(1, 0, N+1) (docs/motus.md §2.2)
    # round the sampling grid through bf16 like the official code when the network runs in bf16
    # (the upstream grid is a linspace in the model dtype; an fp32 network gets the exact grid)
    bf16_schedule: bool = True
    video_loss_weight: float = 1.0
    action_loss_weight: float = 1.0

    extras: dict[str, Any] = field(default_factory=dict)  # free-form notes (JSON-safe)

    def __post_init__(self) -> None:
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))
        if self.training_mode not in TRAINING_MODES:
            raise ValueError(
                f"training_mode: expected one of {TRAINING_MODES}, got {self.training_mode!r}"
            )
        if self.action_normalization not in ACTION_NORMALIZATIONS:
            raise ValueError(
                f"action_normalization: expected one of {ACTION_NORMALIZATIONS}, "
                f"got {self.action_normalization!r}"
            )
        for name in _POSITIVE_INT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.num_registers < 0:
            raise ValueError(f"num_registers: expected >= 0, got {self.num_registers}")
        if self.training_mode == "pretrain" and self.num_registers != 0:
            raise ValueError(
                f"num_registers: pretrain mode has no registers, got {self.num_registers}"
            )
        if self.num_video_frames % self.vae_temporal_factor:
            raise ValueError(
                f"num_video_frames: expected a multiple of {self.vae_temporal_factor}, "
                f"got {self.num_video_frames}"
            )
        if len(self.patch_size) != 3 or self.patch_size[0] != 1:
            raise ValueError(f"patch_size: expected (1, ph, pw), got {self.patch_size}")
        cell_h = self.vae_spatial_factor * self.patch_size[1]
        cell_w = self.vae_spatial_factor * self.patch_size[2]
        if self.image_height % cell_h or self.image_width % cell_w:
            raise ValueError(
                f"image_height/image_width: expected multiples of ({cell_h}, {cell_w}) px, "
                f"got ({self.image_height}, {self.image_width})"
            )
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(
                f"head_dim: expected an even value >= 6 (RoPE split), got {self.head_dim}"
            )
        if self.freq_dim % 2:
            raise ValueError(f"freq_dim: expected even, got {self.freq_dim}")
        if self.action_hidden_size % 2:
            raise ValueError(f"action_hidden_size: expected even, got {self.action_hidden_size}")
        for name in ("wan_eps", "action_eps", "und_eps", "train_shift"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)}")
        if self.action_normalization == "min_max" and not self.normalization_key:
            raise ValueError("normalization_key: required when action_normalization is 'min_max'")

    # --- derived quantities (docs/motus.md §3.3) -------------------------------------------------
    @property
    def action_chunk_size(self) -> int:
        """A = F·r actions per chunk (docs/motus.md §3.1)."""
        return self.num_video_frames * self.video_action_freq_ratio

    @property
    def has_state(self) -> bool:
        """Finetune mode feeds a clean state token; pretrain mode has none (docs/motus.md §1.3)."""
        return self.training_mode == "finetune"

    @property
    def wan_dim(self) -> int:
        """Wan hidden width = num_heads·head_dim (3072 for the 5B model)."""
        return self.num_heads * self.head_dim

    @property
    def num_latent_frames(self) -> int:
        """T' = 1 + F/4: the condition latent frame plus the future latent frames."""
        return 1 + self.num_video_frames // self.vae_temporal_factor

    @property
    def latent_hw(self) -> tuple[int, int]:
        """Latent (h, w) = (H/16, W/16)."""
        return (
            self.image_height // self.vae_spatial_factor,
            self.image_width // self.vae_spatial_factor,
        )

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        """Video latent shape without batch: (C, T', h, w)."""
        return (self.latent_channels, self.num_latent_frames, *self.latent_hw)

    @property
    def token_grid(self) -> tuple[int, int, int]:
        """Video token grid (T', H/32, W/32) = the official ``grid_sizes`` row."""
        h, w = self.latent_hw
        return (self.num_latent_frames, h // self.patch_size[1], w // self.patch_size[2])

    @property
    def num_video_tokens(self) -> int:
        """Video tokens per sample (360 for 384×320, F=8)."""
        t, h, w = self.token_grid
        return t * h * w

    @property
    def num_condition_tokens(self) -> int:
        """Video tokens of the condition latent frame."""
        return self.token_grid[1] * self.token_grid[2]

    @property
    def num_action_tokens(self) -> int:
        """Action-expert sequence length: [state, A actions, registers] or [A actions]."""
        return int(self.has_state) + self.action_chunk_size + self.num_registers

    @property
    def action_pos_embedding_rows(self) -> int:
        """Rows of the persistent ``pos_embedding`` buffer: A+6 finetune, A pretrain.

        Source: docs/checkpoint-format.md §3.
        """
        if self.has_state:
            return self.action_chunk_size + self.num_registers + 2
        return self.action_chunk_size

    # --- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["patch_size"] = list(self.patch_size)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MotusConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: on unknown keys (naming them) or invalid values.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"MotusConfig.from_dict: unknown keys {unknown}")
        return cls(**data)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> MotusConfig:
        """Build a preset (see :data:`PRESETS`), optionally overriding fields.

        Raises:
            ValueError: if ``name`` is not a preset.
        """
        if name not in PRESETS:
            raise ValueError(f"preset: expected one of {sorted(PRESETS)}, got {name!r}")
        return cls(**{"preset": name, **PRESETS[name], **overrides})


ROBOTWIN_INSTRUCTION_PREFIX = (
    "The whole scene is in a realistic, industrial art style with three views: "
    "a fixed rear camera, a movable left arm camera, and a movable right arm camera. "
    "The aloha robot is currently performing the following task: "
)
"""RoboTwin's scene description, verbatim from the official
``inference/robotwin/Motus/deploy_policy.py`` (``get_action``: ``scene_prefix``), which puts it
in front of every instruction for both T5 and the VLM."""

_REAL_ROBOT = dict(
    training_mode="finetune",
    num_video_frames=8,
    video_action_freq_ratio=6,
    global_downsample_rate=1,
    action_normalization="min_max",
)

PRESETS: dict[str, dict[str, Any]] = {
    # Motus_robotwin2 (robotwin.yaml): A = 16, raw qpos (docs/motus.md §3.1, §4.1).
    "robotwin": dict(
        training_mode="finetune",
        num_video_frames=8,
        video_action_freq_ratio=2,
        global_downsample_rate=3,
        action_normalization="none",
        instruction_prefix=ROBOTWIN_INSTRUCTION_PREFIX,
    ),
    # Real robots (aloha_agilex_2.yaml / ac_one.yaml): A = 48 at 30 Hz, min-max stats
    # (docs/motus.md §4.2).
    "aloha_agilex_2": dict(**_REAL_ROBOT, normalization_key="aloha_agilex_2"),
    "ac_one": dict(**_REAL_ROBOT, normalization_key="ac_one"),
    # Stage-2 latent-action pretraining (latent_action.yaml): A = 8, no state, no registers.
    "latent_action": dict(
        training_mode="pretrain",
        num_video_frames=8,
        video_action_freq_ratio=1,
        global_downsample_rate=6,
        num_registers=0,
    ),
    # Same architecture, small widths: CPU tests and the demo checkpoint. 128×96 (H×W) keeps the
    # T-layout's portrait aspect; token grid 3×4×3 = 36 video tokens.
    "tiny": dict(
        training_mode="finetune",
        num_video_frames=8,
        video_action_freq_ratio=2,
        global_downsample_rate=3,
        image_height=128,
        image_width=96,
        num_layers=2,
        num_heads=2,
        head_dim=32,
        wan_ffn_dim=128,
        freq_dim=32,
        text_dim=64,
        text_len=32,
        action_hidden_size=64,
        action_ffn_dim=128,
        und_hidden_size=32,
        und_ffn_dim=64,
        vlm_hidden_size=64,
    ),
}
# tiny_f8: the tiny widths with an 8x (instead of 16x) tiny VAE ("f8" as in the latent-diffusion
# naming): 128x96 images -> 16x12 latent cells -> 8x6 tokens per latent frame (144 video tokens
# instead of 36): a sim candidate with 4x the tokens per frame (the embedded checkpoint is
# `tiny`; see its model card for the measured comparison).
PRESETS["tiny_f8"] = dict(PRESETS["tiny"], vae_spatial_factor=8)
# tiny_wide: the tiny video / und experts with a 4x wider action expert (256, FFN 1024): the
# action tokens are few (state + A + registers), so this adds capacity for precise joint
# trajectories at little cost per step (a sim candidate; see the embedded model card).
PRESETS["tiny_wide"] = dict(PRESETS["tiny"], action_hidden_size=256, action_ffn_dim=1024)
# latent_action_tiny: stage-2 latent-action pretraining (the latent_action geometry: A = 8
# latent actions at stride g = 6, F = 8 frames, no state, no registers) at the tiny widths, so a
# stage-2 run on CPU initialises a `tiny` stage-3 fine-tune (docs/motus.md §5.1 transition).
PRESETS["latent_action_tiny"] = dict(
    PRESETS["tiny"], **PRESETS["latent_action"], action_normalization="none"
)
