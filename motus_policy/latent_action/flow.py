"""Optical flow between consecutive frames and its RGB image (paper §4.2).

Paper §4.2, "Optical Flow Based Representation".

The paper computes flow with DPFlow and converts it to an RGB image that the latent-action VAE
reconstructs. Here the flow estimator is pluggable:

* ``dis`` (default): OpenCV's DIS optical flow (``cv2.DISOpticalFlow_create``), no weights, CPU;
* ``raft``: torchvision's RAFT (``torchvision.models.optical_flow.raft_large`` / ``raft_small``)
  with weights from a local ``.pth`` file (nothing is downloaded); torchvision is imported only
  when this backend is built.

Flow arrays are float32 (H, W, 2) in pixels of the input frames, ``[..., 0]`` = dx (to the right),
``[..., 1]`` = dy (down), so that ``frame1[y + dy, x + dx] ~ frame0[y, x]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

FLOW_BACKENDS = ("dis", "raft")
DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
RAFT_MODELS = ("raft_large", "raft_small")


@dataclass(frozen=True)
class FlowConfig:
    """How flow is estimated and rendered as an image.

    Attributes:
        backend: ``dis`` (OpenCV DIS, default) or ``raft`` (torchvision RAFT, needs
            ``raft_weights_path``).
        dis_preset: DIS speed/quality preset (``ultrafast``, ``fast``, ``medium``).
        raft_weights_path: local ``.pth`` state dict of the torchvision RAFT model.
        raft_model: ``raft_large`` or ``raft_small`` (must match the weights).
        raft_iterations: RAFT refinement iterations (torchvision's default is 12).
        device: torch device for RAFT (``cpu``, ``cuda``).
        max_magnitude_px: flow magnitude (px, at ``image_hw``) shown at full saturation in the
            RGB image; larger motions are clipped. 10 px suits 25-30 Hz robot video at the
            model resolutions here (an arm moves a few px per frame at 96-320 px wide).
        image_hw: (H, W) px the frames are resized to before flow estimation, so magnitudes
            are in a fixed resolution whatever the camera size; (0, 0) keeps the input size.
        output_hw: (H, W) px of the RGB flow image (resized from the flow resolution with
            area averaging); (0, 0) = the flow resolution.

    Raises:
        ValueError: an unknown backend / preset / model, ``raft`` without weights, a
            non-positive ``max_magnitude_px`` or iteration count, or a bad ``image_hw``.
    """

    backend: str = "dis"
    dis_preset: str = "medium"
    raft_weights_path: str | None = None
    raft_model: str = "raft_large"
    raft_iterations: int = 12
    device: str = "cpu"
    max_magnitude_px: float = 10.0
    image_hw: tuple[int, int] = (0, 0)
    output_hw: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if self.backend not in FLOW_BACKENDS:
            raise ValueError(f"backend: expected one of {FLOW_BACKENDS}, got {self.backend!r}")
        if self.dis_preset not in DIS_PRESETS:
            raise ValueError(
                f"dis_preset: expected one of {sorted(DIS_PRESETS)}, got {self.dis_preset!r}"
            )
        if self.raft_model not in RAFT_MODELS:
            raise ValueError(f"raft_model: expected one of {RAFT_MODELS}, got {self.raft_model!r}")
        if self.backend == "raft" and not self.raft_weights_path:
            raise ValueError(
                "raft_weights_path: the raft backend needs a local torchvision RAFT state dict "
                "(.pth), got none"
            )
        if not self.raft_iterations > 0:
            raise ValueError(f"raft_iterations: expected > 0, got {self.raft_iterations}")
        if not (np.isfinite(self.max_magnitude_px) and self.max_magnitude_px > 0):
            raise ValueError(f"max_magnitude_px: expected > 0, got {self.max_magnitude_px}")
        for name in ("image_hw", "output_hw"):
            hw = tuple(int(v) for v in getattr(self, name))
            if len(hw) != 2 or min(hw) < 0 or (0 in hw and hw != (0, 0)):
                raise ValueError(f"{name}: expected (H, W) > 0 or (0, 0), got {hw}")
            object.__setattr__(self, name, hw)


class FlowEstimator(Protocol):
    """Flow between two frames: uint8 (H, W, 3) RGB each -> float32 (H, W, 2) px."""

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """Flow from ``frame0`` to ``frame1``."""
        ...


def _check_pair(frame0: np.ndarray, frame1: np.ndarray) -> None:
    for name, f in (("frame0", frame0), ("frame1", frame1)):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ValueError(f"{name}: expected uint8 (H, W, 3) RGB, got {f.dtype} {f.shape}")
    if frame0.shape != frame1.shape:
        raise ValueError(f"frames: expected equal shapes, got {frame0.shape} and {frame1.shape}")


class DISFlow:
    """OpenCV DIS optical flow (Kroeger et al. 2016) on grayscale frames; not thread-safe."""

    def __init__(self, preset: str = "medium") -> None:
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """Flow from ``frame0`` to ``frame1``: float32 (H, W, 2) px.

        Raises:
            ValueError: frames not uint8 (H, W, 3) RGB, or of different shapes.
        """
        _check_pair(frame0, frame1)
        g0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
        g1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
        return self._dis.calc(g0, g1, None).astype(np.float32)


class RAFTFlow:
    """torchvision RAFT from a local state dict (``torchvision.models.optical_flow``).

    Frames are padded to multiples of 8 (RAFT's requirement) and scaled to [-1, 1] as
    torchvision's ``Raft_Large_Weights.transforms()`` does; the padding is cropped off the flow.

    Raises:
        ImportError: torchvision is not installed (``pip install torchvision``).
        FileNotFoundError: the weights file does not exist.
    """

    def __init__(self, weights_path: str, model: str, iterations: int, device: str) -> None:
        try:
            from torchvision.models import optical_flow
        except ImportError as exc:
            raise ImportError(
                "flow backend 'raft' needs the torchvision package (pip install torchvision, "
                "the build matching your torch); the default backend 'dis' needs nothing"
            ) from exc
        import torch

        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"raft_weights_path: no file {path}")
        net = getattr(optical_flow, model)(weights=None)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self._torch, self._net = torch, net.eval().to(device)
        self._device, self._iterations = torch.device(device), iterations

    def __call__(self, frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
        """Flow from ``frame0`` to ``frame1``: float32 (H, W, 2) px."""
        _check_pair(frame0, frame1)
        torch = self._torch
        h, w = frame0.shape[:2]
        ph, pw = (-h) % 8, (-w) % 8

        def prep(f: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None].float()
            t = t.div(127.5).sub(1.0)
            return torch.nn.functional.pad(t, (0, pw, 0, ph), mode="replicate").to(self._device)

        with torch.no_grad():
            flows = self._net(prep(frame0), prep(frame1), num_flow_updates=self._iterations)
        return flows[-1][0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)


def build_flow(config: FlowConfig) -> FlowEstimator:
    """The estimator ``config`` names (see :class:`FlowConfig` for the errors)."""
    if config.backend == "raft":
        return RAFTFlow(
            config.raft_weights_path or "",
            config.raft_model,
            config.raft_iterations,
            config.device,
        )
    return DISFlow(config.dis_preset)


def flow_to_rgb(flow: np.ndarray, max_magnitude_px: float) -> np.ndarray:
    """Colour-code a flow field: the standard Middlebury-style colour wheel, via HSV in OpenCV.

    Hue is the flow direction (0 deg = right, as ``cv2.cartToPolar`` measures angles), saturation
    the magnitude divided by ``max_magnitude_px`` and clipped to 1, value 1: zero motion is white
    and faster motion is more saturated, as in the Middlebury flow benchmark's colour coding
    (Baker et al. 2011) and torchvision's ``flow_to_image``. The magnitude is clipped, so the
    mapping is fixed (not normalised per image) and images of different clips compare.

    Args:
        flow: float (H, W, 2) px (dx, dy).
        max_magnitude_px: magnitude shown at full saturation (> 0).

    Returns:
        uint8 (H, W, 3) RGB.

    Raises:
        ValueError: ``flow`` not (H, W, 2), non-finite values, or ``max_magnitude_px`` <= 0.
    """
    flow = np.asarray(flow, np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow: expected (H, W, 2), got {flow.shape}")
    if not np.isfinite(flow).all():
        raise ValueError("flow: expected finite values, got NaN/inf")
    if not max_magnitude_px > 0:
        raise ValueError(f"max_magnitude_px: expected > 0, got {max_magnitude_px}")
    mag, ang = cv2.cartToPolar(flow[..., 0], flow[..., 1], angleInDegrees=True)
    hsv = np.empty((*flow.shape[:2], 3), np.float32)
    hsv[..., 0] = ang  # float HSV: H in degrees [0, 360)
    hsv[..., 1] = np.clip(mag / max_magnitude_px, 0.0, 1.0)
    hsv[..., 2] = 1.0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


class FlowImages:
    """Frames -> flow images of consecutive pairs, as the latent-action VAE sees them.

    Args:
        config: the flow settings.
    """

    def __init__(self, config: FlowConfig) -> None:
        self.config = config
        self.estimator = build_flow(config)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        if self.config.image_hw == (0, 0) or frame.shape[:2] == self.config.image_hw:
            return frame
        h, w = self.config.image_hw
        return cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)

    def flows(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Flow of every consecutive pair: uint8 (T, H, W, 3) -> float32 (T-1, H', W', 2) px.

        (H', W') = ``image_hw`` (the input size when (0, 0)). Raises ValueError for T < 2.
        """
        if len(frames) < 2:
            raise ValueError(f"frames: expected at least 2 frames, got {len(frames)}")
        small = [self._resize(np.asarray(f)) for f in frames]
        return np.stack([self.estimator(a, b) for a, b in zip(small[:-1], small[1:], strict=True)])

    def images(self, frames: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """RGB flow images of every consecutive pair: uint8 (T-1, h, w, 3) at ``output_hw``."""
        rgb = [flow_to_rgb(f, self.config.max_magnitude_px) for f in self.flows(frames)]
        if self.config.output_hw != (0, 0) and rgb[0].shape[:2] != self.config.output_hw:
            h, w = self.config.output_hw
            rgb = [cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in rgb]
        return np.stack(rgb)
