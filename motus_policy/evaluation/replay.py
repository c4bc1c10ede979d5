"""Open-loop bag replay: rebuild observations from a bag, predict, compare with the future.

At the policy rate (``profile.record_rate_hz``) from the first time every stream has a sample,
each tick ``t`` feeds the latest joint state per arm and the latest frame per camera (stamps
<= t) into the same :class:`~motus_policy.runtime.observation.ObservationAssembler` the policy
node uses,
assembles the observation at ``now = t`` (so its staleness rules apply), asks the backend for a
chunk and compares action k with the recorded joint positions at its due time
``obs.stamp_ns + (k + 1) * period`` (linear interpolation between recorded joint states).

Ticks are skipped, counted and reported, never silently: when the assembler refuses (a stale or
invalid stream, with its reason) and when the chunk's horizon runs past the end of the recording.
A bag with no complete chunk raises :class:`~motus_policy.evaluation.bag_reader.BagError`.

Frame modes (joint / wm / vgm): each predicted frame is compared (PSNR, SSIM) with the recorded
T-layout composite at the tick nearest its due time, resized with the model's pad-to-fit to the
predicted frame's size (docs/motus.md §3.4); a predicted frame larger than the model's frame size
(``metrics.FRAME_METRIC_MAX_HW``, 384 x 320: e.g. the baselines' full-resolution copy of the
observation) is first pad-resized to it, once per chunk, so frame metrics are always at the
model's resolution at most (issue #15 §9). The recorded side of SSIM is computed once per tick
and shared by every frame due then (:class:`~motus_policy.evaluation.metrics.SsimImage`).

Images are decoded while streaming the bag in file order (only the frames a tick uses), so memory
stays bounded for long recordings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from motus_policy.backends.base import (
    FRAME_MODES,
    MODES,
    PolicyBackend,
    check_mode,
    video_frame_offsets_ns,
)
from motus_policy.evaluation import metrics
from motus_policy.evaluation.bag_reader import BagError, BagIndex, StreamMap, iter_frames
from motus_policy.runtime.observation import (
    CameraSpec,
    ObservationAssembler,
    ObservationConfig,
    ObservationUnavailable,
)
from motus_recorder import schema
from motus_recorder.composite import compose_t_layout, resize_pad

DEFAULT_CAMERA_STALENESS_S = 0.2

FramePairSink = Callable[[np.ndarray, np.ndarray, int], None]
"""Called with (predicted frame, recorded composite, due time ns) for each compared frame."""


@dataclass(frozen=True)
class ReplayConfig:
    """How to replay.

    Each field's ``metadata["description"]`` is its help text (``motus-eval replay --help`` is
    generated from it).

    Raises:
        ValueError: a field out of range, or mode ``vgm`` (no actions to compare).
    """

    rate_hz: float = field(
        metadata={
            "description": "observation / prediction rate [Hz], normally the profile's "
            "record_rate_hz"
        }
    )
    mode: str = field(
        default="vla",
        metadata={
            "description": "Motus inference mode: joint | vla | wm | idm (not vgm: it predicts "
            "no actions to compare); in idm the backend gets the recorded future composites at "
            "its video_frame_offsets_ns",
            "choices": tuple(m for m in MODES if m != "vgm"),
        },
    )
    num_steps: int = field(
        default=10,
        metadata={"description": "denoising steps per chunk (10 in shipped configs)"},
    )
    instruction: str = field(
        default="", metadata={"description": "task instruction passed to the backend"}
    )
    every_n_ticks: int = field(
        default=1, metadata={"description": "predict on every n-th tick (1 = every tick)"}
    )
    max_chunks: int = field(
        default=0,
        metadata={"description": "stop after this many compared chunks (0 = no limit)"},
    )
    joint_state_staleness_s: float = field(
        default=0.05,
        metadata={"description": "the assembler's joint staleness bound [s] (profile value)"},
    )
    camera_staleness_s: tuple[tuple[str, float], ...] = field(
        default=(),
        metadata={
            "description": "(camera name, bound [s]) pairs (profile values); other cameras "
            "get DEFAULT_CAMERA_STALENESS_S"
        },
    )

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz: expected > 0, got {self.rate_hz}")
        check_mode(self.mode)
        if self.mode == "vgm":
            raise ValueError(
                "mode: 'vgm' replay is not supported (it predicts no actions to compare)"
            )
        if self.num_steps < 1:
            raise ValueError(f"num_steps: expected >= 1, got {self.num_steps}")
        if self.every_n_ticks < 1:
            raise ValueError(f"every_n_ticks: expected >= 1, got {self.every_n_ticks}")
        if self.max_chunks < 0:
            raise ValueError(f"max_chunks: expected >= 0, got {self.max_chunks}")


@dataclass
class ReplayResult:
    """Everything a replay produced (arrays over the N compared chunks)."""

    t0_ns: list[int] = field(default_factory=list)
    start_states: list[np.ndarray] = field(default_factory=list)  # (14,) each
    predicted: list[np.ndarray] = field(default_factory=list)  # (A, 14) each
    recorded: list[np.ndarray] = field(default_factory=list)  # (A, 14) each
    latencies_ns: list[int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (tick ns, reason)
    frame_scores: list[tuple[int, float, float]] = field(default_factory=list)  # (ns, psnr, ssim)
    frames_unmatched: int = 0
    period_ns: int = 0
    ticks: int = 0
    image_hw: dict[str, tuple[int, int]] = field(default_factory=dict)


def tick_times(index: BagIndex, rate_hz: float) -> np.ndarray:
    """int64 tick times: from the first time every stream has a sample to the last joint state."""
    firsts = [int(j.stamps_ns[0]) for j in index.joints.values()]
    firsts += [int(c.stamps_ns[0]) for c in index.cameras.values()]
    start = max(firsts)
    end = min(int(j.stamps_ns[-1]) for j in index.joints.values())
    n = int(np.floor((end - start) * rate_hz / 1e9)) + 1 if end >= start else 0
    return start + np.round(np.arange(n) * 1e9 / rate_hz).astype(np.int64)


class _FrameStore:
    """Decoded frames per camera, filled in file order, dropped when no later tick needs them."""

    def __init__(self, reader, index: BagIndex, needed: dict[str, list[int]]):
        self.frames: dict[str, dict[int, np.ndarray]] = {c: {} for c in index.cameras}
        self._it = iter_frames(reader, index, {c: set(v) for c, v in needed.items()})

    def get(self, cam: str, i: int) -> np.ndarray:
        while i not in self.frames[cam]:
            try:
                name, j, img = next(self._it)
            except StopIteration:
                raise BagError(f"{cam}: frame {i} not found on the second read") from None
            self.frames[name][j] = img
        return self.frames[cam][i]

    def drop_before(self, cam: str, i: int) -> None:
        for j in [j for j in self.frames[cam] if j < i]:
            del self.frames[cam][j]


def run_replay(
    reader,
    index: BagIndex,
    streams: StreamMap,
    backend: PolicyBackend,
    config: ReplayConfig,
    on_frame_pair: FramePairSink | None = None,
    progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Replay ``index``'s bag through ``backend``; see the module docstring.

    Args:
        reader: the open ``AnyReader`` the index was built from.
        index: from :func:`~motus_policy.evaluation.bag_reader.index_bag`.
        streams: the stream map the index was built with.
        backend: a loaded :class:`PolicyBackend`.
        config: replay settings.
        on_frame_pair: optional sink for compared frames (e.g. the side-by-side video).
        progress: called with the number of ticks done after each tick.

    Raises:
        BagError: no tick could be compared (episode shorter than one chunk, or every tick
            refused by the assembler; the message says which).
        ValueError: the backend returned a chunk of the wrong length or non-finite actions.
    """
    ticks = tick_times(index, config.rate_hz)
    period_ns = round(1e9 / backend.action_rate_hz)
    horizon_ns = backend.chunk_size * period_ns
    end_ns = min(int(j.stamps_ns[-1]) for j in index.joints.values())
    res = ReplayResult(period_ns=period_ns)
    needed = {c: [int(ci.latest_index(t)) for t in ticks] for c, ci in index.cameras.items()}
    # idm: the recorded frames at the backend's video-frame times are inputs (inverse dynamics)
    offsets = video_frame_offsets_ns(backend) if config.mode == "idm" else ()
    future = {
        c: [[int(ci.latest_index(int(t) + o)) for o in offsets] for t in ticks]
        for c, ci in index.cameras.items()
    }
    wanted = {c: needed[c] + [i for row in future[c] for i in row] for c in needed}
    store = _FrameStore(reader, index, wanted)
    assembler: ObservationAssembler | None = None
    pending: list[tuple[int, np.ndarray]] = []  # predicted frames awaiting their tick
    tick_period = 1e9 / config.rate_hz
    stale = dict(config.camera_staleness_s)
    for n, t in enumerate(ticks):
        t = int(t)
        res.ticks = n + 1
        images = {c: store.get(c, needed[c][n]) for c in index.cameras}
        for c in index.cameras:
            store.drop_before(c, needed[c][n])
        if assembler is None:
            res.image_hw = {c: img.shape[:2] for c, img in images.items()}
            cams = tuple(
                CameraSpec(c, *images[c].shape[:2], stale.get(c, DEFAULT_CAMERA_STALENESS_S))
                for c in index.cameras
            )
            arms = tuple((a, names) for a, _, names in streams.arms)
            assembler = ObservationAssembler(
                ObservationConfig(cams, arms, config.joint_state_staleness_s)
            )
        for c, ci in index.cameras.items():
            assembler.update_image(c, images[c], int(ci.stamps_ns[needed[c][n]]), "rgb8")
        for arm, track in index.joints.items():
            i = track.latest_index(t)
            assembler.update_joints(arm, track.positions[i], int(track.stamps_ns[i]))
        if pending:
            pending = _score_due_frames(pending, t, tick_period, images, res, on_frame_pair)
        if progress:
            progress(n + 1)
        if n % config.every_n_ticks or (config.max_chunks and len(res.t0_ns) >= config.max_chunks):
            continue
        try:
            obs = assembler.assemble(t, config.instruction)
        except ObservationUnavailable as exc:
            res.skipped.append((t, f"observation unavailable: {exc}"))
            continue
        if obs.stamp_ns + max(horizon_ns, *offsets, 0) > end_ns:
            res.skipped.append((t, "horizon beyond the end of the recording"))
            continue
        future_frames = None
        if offsets:
            future_frames = np.stack(
                [
                    compose_t_layout(*(store.get(c, future[c][n][j]) for c in schema.CAMERA_NAMES))
                    for j in range(len(offsets))
                ]
            )  # (F, H + H/2, W, 3) uint8
        t_start = time.perf_counter_ns()
        chunk = backend.infer(
            obs,
            mode=config.mode,
            num_steps=config.num_steps,
            action_prefix=None,
            instruction=config.instruction,
            future_frames=future_frames,
        )
        wall_ns = time.perf_counter_ns() - t_start
        _check_chunk(chunk, backend.chunk_size, t)
        rec = np.concatenate(
            [index.joints[a].interpolate(chunk.stamps_ns) for a, _, _ in streams.arms], axis=1
        )
        res.t0_ns.append(chunk.t0_ns)
        res.start_states.append(np.asarray(obs.state, dtype=np.float64))
        res.predicted.append(np.asarray(chunk.actions, dtype=np.float64))
        res.recorded.append(rec)
        res.latencies_ns.append(chunk.latency_ns or wall_ns)
        if config.mode in FRAME_MODES and chunk.frames is not None:
            stamps = chunk.frame_stamps_ns or ()
            pending.extend(
                zip((int(s) for s in stamps), _at_metric_size(chunk.frames), strict=True)
            )
    res.frames_unmatched += len(pending)
    if not res.t0_ns:
        _raise_nothing_compared(res, ticks, index, horizon_ns, backend.chunk_size, period_ns)
    return res


def _at_metric_size(frames) -> list[np.ndarray]:
    """Each predicted frame, pad-resized to ``metrics.FRAME_METRIC_MAX_HW`` when larger.

    Done once per chunk, when it arrives, so pending frames hold at most the model's size. A
    frame equal to the one before it (the baselines' copies of the observation) is resized
    once and shared.
    """
    mh, mw = metrics.FRAME_METRIC_MAX_HW
    out: list[np.ndarray] = []
    prev = None
    for frame in frames:
        if prev is not None and frame.shape == prev.shape and np.array_equal(frame, prev):
            out.append(out[-1])
            continue
        h, w = frame.shape[:2]
        out.append(frame if h <= mh and w <= mw else resize_pad(frame, (mh, mw)))
        prev = frame
    return out


def _score_due_frames(pending, t, tick_period, images, res, on_frame_pair):
    """Score the pending (due ns, frame) pairs due at tick ``t``; returns those still pending.

    A frame is due at the tick nearest its due time (within half a tick period); one whose tick
    has passed counts as unmatched. The recorded composite is built, resized and given its half
    of SSIM (:class:`metrics.SsimImage`) once per tick and frame size, only when a frame is due.
    """
    targets: dict[tuple[int, int], tuple[np.ndarray, metrics.SsimImage]] = {}
    real = None
    keep = []
    for due, frame in pending:
        if due < t - tick_period / 2:
            res.frames_unmatched += 1
        elif due < t + tick_period / 2:
            hw = frame.shape[:2]
            if hw not in targets:
                if real is None:
                    real = compose_t_layout(*(images[c] for c in schema.CAMERA_NAMES))
                target = resize_pad(real, hw)
                targets[hw] = (target, metrics.SsimImage(target))
            target, target_half = targets[hw]
            metrics.check_pair(frame, target)
            score = metrics.ssim_pair(metrics.SsimImage(frame), target_half)
            res.frame_scores.append((due, metrics.psnr(frame, target), score))
            if on_frame_pair:
                on_frame_pair(frame, target, due)
        else:
            keep.append((due, frame))
    return keep


def _check_chunk(chunk, chunk_size: int, t: int) -> None:
    a = np.asarray(chunk.actions)
    if a.shape != (chunk_size, schema.STATE_DIM):
        raise ValueError(f"backend chunk at {t} ns: expected ({chunk_size}, 14), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"backend chunk at {t} ns: non-finite actions")


def _raise_nothing_compared(res, ticks, index, horizon_ns, a, period_ns) -> None:
    joints = index.joints.values()
    span_s = min(int(j.stamps_ns[-1]) for j in joints) - (int(ticks[0]) if len(ticks) else 0)
    if not len(ticks) or all(r.startswith("horizon") for _, r in res.skipped):
        raise BagError(
            f"{index.path}: episode shorter than one chunk: {max(span_s, 0) / 1e9:.3f} s of "
            f"joint states after the first complete observation, one chunk needs "
            f"{a} x {period_ns / 1e6:.1f} ms = {horizon_ns / 1e9:.3f} s"
        )
    reasons = sorted({r for _, r in res.skipped})
    raise BagError(f"{index.path}: no tick could be compared; reasons: {reasons[:3]}")
