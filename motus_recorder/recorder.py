"""The recorder core (ROS-free): streams -> sync -> validated frames -> Motus-format writer.

The node converts messages and calls :meth:`Recorder.on_image`, :meth:`Recorder.on_joints`,
:meth:`Recorder.on_raw` (bag) and :meth:`Recorder.on_bad_message`, calls :meth:`Recorder.tick`
on a timer at the profile's ``record_rate_hz`` and forwards the start / stop / discard services.

An episode is *failed* (discarded at once, its reason kept in ``last_error``, reported by the
next ``stop`` and appended to ``<variant>/discarded.log``) on: a bad frame (NaN or out-of-limit
joints, wrong image size), an undecodable message (wrong encoding, missing joint names), a sync
fault (clock jump, a stream stopped / too many drops) or encoder back-pressure. A failed episode
never reaches the disk and does not consume an index.

Threads: every method from one thread (the node's executor thread); video encoding runs on the
writer's worker thread.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from motus_recorder import schema
from motus_recorder.episode import Frame
from motus_recorder.profile import RobotProfile
from motus_recorder.sync import SyncConfig, SyncCore
from motus_recorder.writers import torch_io
from motus_recorder.writers.motus_format import MotusFormatWriter, WriterConfig
from motus_recorder.writers.raw_bag import RawBagWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecorderConfig:
    """Recorder settings (the node's ROS parameters are a projection of these fields)."""

    profile: str = "aloha_sim"
    root: str = "data"
    task: str = "task"
    variant: str = "default"
    instruction: str = ""
    operator_notes: str = ""
    write_bag: bool = False
    record_commands: bool = False
    """Also write the arms' command topics into the raw bag (needs write_bag)."""
    sensor_reliability: str = "best_effort"
    """QoS reliability of the camera / joint subscriptions (depth 10). ``best_effort`` connects
    to every publisher (the sim's cameras publish sensor-data QoS); ``reliable`` only to
    reliable ones; ``best_available`` is fixed when the subscription is created (reliable if
    no publisher exists yet), so it misses best-effort publishers that start later."""
    tolerance_s: float = 0.0
    """Largest |stamp - target| accepted; 0 = half a record period."""
    lag_s: float = -1.0
    """Sample target = now - lag; negative = one record period."""
    max_consecutive_drops: int = 15
    max_drop_fraction: float = 0.2
    queue_size: int = 64
    crf: int = 23
    preset: str = "veryfast"
    """x264 preset; ``ultrafast`` encodes ~4x faster (bigger files) on a weak recording PC."""
    image_height: int = 0
    """Expected camera height in pixels; 0 = the profile's (set with image_width)."""
    image_width: int = 0
    """Expected camera width in pixels; 0 = the profile's."""
    qpos_source: str = "command"
    """What ``qpos/<i>.pt`` holds (:data:`schema.QPOS_SOURCES`): ``command`` records each arm's
    command topic (leader / teleop targets, the official format's ``joint_action``) as qpos and
    the measured joint states into ``state/<i>.pt``; ``state`` records the measured joint states
    as qpos (for robots whose commands are not on the graph)."""
    t5_path: str = ""
    """Local folder of a UMT5 encoder (Hugging Face ``save_pretrained`` of umt5-xxl's encoder,
    with its tokenizer): when set, every saved episode also gets ``instructions/<i>.pt``, the
    bf16 [L, 4096] embedding the official trainer needs (each distinct instruction is encoded
    once). Empty = no embedding at save time (``motus-dataset embed`` adds them later)."""
    t5_device: str = "cpu"
    """Torch device of the UMT5 encoder (``cpu``, ``cuda``); umt5-xxl needs ~11 GB there."""

    def __post_init__(self) -> None:
        if self.qpos_source not in schema.QPOS_SOURCES:
            raise ValueError(
                f"RecorderConfig.qpos_source: expected one of {schema.QPOS_SOURCES}, "
                f"got {self.qpos_source!r}"
            )
        for name in ("profile", "root", "task", "variant"):
            if not getattr(self, name):
                raise ValueError(f"RecorderConfig.{name}: expected a non-empty string")
        if self.sensor_reliability not in ("best_available", "reliable", "best_effort"):
            raise ValueError(
                "RecorderConfig.sensor_reliability: expected best_available, reliable or "
                f"best_effort, got {self.sensor_reliability!r}"
            )
        if self.tolerance_s < 0:
            raise ValueError(f"RecorderConfig.tolerance_s: expected >= 0, got {self.tolerance_s}")


def cached_embedder(
    embed: Callable[[str], np.ndarray], size: int = 16
) -> Callable[[str], np.ndarray]:
    """``embed`` with an LRU cache of ``size`` instructions.

    An operator records one text many times; each distinct text is encoded once. A repeated
    text returns the same array object.
    """
    return functools.lru_cache(maxsize=size)(embed)


def state_stream(arm: str) -> str:
    """Sync stream name of an arm's measured joint states when qpos holds commands."""
    return f"{arm}.state"


class Recorder:
    """See module docstring.

    Args:
        config: settings.
        profile: the loaded robot profile (``config.profile`` names it).
        clock: the recording clock, int ns (the node's clock: sim time under ``use_sim_time``).
        embed_fn: optional UMT5 encoder ``text -> [L, 4096]`` for ``instructions/<i>.pt``;
            default: one loaded from ``config.t5_path`` when that is set.

    Raises:
        FileNotFoundError: ``config.t5_path`` is not a UMT5 folder with its tokenizer.
        RuntimeError: another writer holds the variant folder.
    """

    def __init__(
        self,
        config: RecorderConfig,
        profile: RobotProfile,
        clock: Callable[[], int],
        embed_fn: Callable[[str], np.ndarray] | None = None,
    ):
        self.config = config
        self.profile = profile
        self.streams = (*profile.camera_names, *(a.name for a in profile.arms))
        if config.qpos_source == "command":
            self.streams += tuple(state_stream(a.name) for a in profile.arms)
        sync_cfg = SyncConfig(
            record_rate_hz=profile.record_rate_hz,
            tolerance_s=config.tolerance_s,
            lag_s=config.lag_s,
            max_consecutive_drops=config.max_consecutive_drops,
            max_drop_fraction=config.max_drop_fraction,
        )
        self.sync = SyncCore(sync_cfg, self.streams, clock)
        if embed_fn is None and config.t5_path:
            embed_fn = cached_embedder(
                torch_io.UMT5Embedder(config.t5_path, device=config.t5_device)
            )
        self.writer = MotusFormatWriter(
            WriterConfig(
                root=config.root,
                task=config.task,
                variant=config.variant,
                crf=config.crf,
                preset=config.preset,
                queue_size=config.queue_size,
                qpos_source=config.qpos_source,
            ),
            profile,
            embed_fn=embed_fn,
        )
        self._bag: RawBagWriter | None = None
        self.last_error: str | None = None
        self.last_saved: int | None = None
        self._failed: str | None = None

    # -- inputs -----------------------------------------------------------------------------------
    def on_image(self, camera: str, stamp_ns: int, rgb: np.ndarray) -> None:
        """A converted camera frame, uint8 (H, W, 3) RGB (size is checked per frame)."""
        self.sync.push(camera, stamp_ns, rgb)

    def on_joints(
        self, arm: str, stamp_ns: int, positions: np.ndarray, source: str = "state"
    ) -> None:
        """One arm's 7 positions (6 joints + gripper, profile order).

        Args:
            arm: profile arm name.
            stamp_ns: the message's header stamp, int ns.
            positions: float (7,).
            source: ``state`` (measured joint states) or ``command`` (the arm's command topic).
                The stream named by ``config.qpos_source`` becomes qpos; measured states are
                also kept as ``state`` when qpos holds commands; commands are ignored when
                qpos holds states.

        Raises:
            ValueError: unknown ``source``.
        """
        if source not in schema.QPOS_SOURCES:
            raise ValueError(
                f"on_joints: source must be one of {schema.QPOS_SOURCES}, got {source!r}"
            )
        q = np.asarray(positions, dtype=np.float64)
        if source == self.config.qpos_source:
            self.sync.push(arm, stamp_ns, q)
        elif source == "state":
            self.sync.push(state_stream(arm), stamp_ns, q)

    def on_raw(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        """A serialized message for the raw bag (ignored unless recording with a bag)."""
        if self._bag is not None:
            try:
                self._bag.write(topic, msgtype, stamp_ns, data)
            except (OSError, ValueError) as exc:
                self._fail(f"raw bag: {exc}")

    def on_bad_message(self, stream: str, error: Exception | str) -> None:
        """A message that could not be converted (wrong encoding, missing joints)."""
        reason = f"{stream}: bad message: {error}"
        if self.writer.recording:
            self._fail(reason)
        else:
            self.last_error = reason

    # -- control ----------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        """True while an episode is open."""
        return self.writer.recording

    def start(
        self, instruction: str | None = None, operator_notes: str | None = None
    ) -> tuple[bool, str]:
        """Open an episode (text and notes default to the config's); returns (ok, message)."""
        if self.writer.recording:
            return False, "already recording"
        text = instruction if instruction is not None else self.config.instruction
        notes = operator_notes if operator_notes is not None else self.config.operator_notes
        try:
            self.writer.start_episode(text, notes)
            if self.config.write_bag:
                self._bag = RawBagWriter(self.writer.bag_dir)
        except (OSError, ValueError, RuntimeError) as exc:
            self.writer.discard_episode(str(exc))
            self.last_error = f"start failed: {exc}"
            return False, self.last_error
        self.sync.reset()
        self._failed = None
        return True, f"recording episode {self.writer.next_index}"

    def stop(self) -> tuple[bool, str]:
        """Save the open episode; returns (ok, message naming the index or the failure)."""
        if self._failed is not None and not self.writer.recording:
            reason, self._failed = self._failed, None
            return False, f"episode was discarded: {reason}"
        if not self.writer.recording:
            return False, "not recording"
        fault = self.sync.fault
        if fault is not None:
            self._fail(fault)
            return self.stop()
        try:
            if self._bag is not None:
                self._bag.close()
                self._bag = None
            idx = self.writer.save_episode({"sync": self.sync.stats()})
        except Exception as exc:  # noqa: BLE001 - reported to the operator, episode gone
            self._bag = None
            self.writer.discard_episode(str(exc))
            self._log_discard(str(exc))
            self.last_error = str(exc)
            return False, f"save failed: {exc}"
        self.last_saved = idx
        return True, f"saved episode {idx} in {self.writer.dir}"

    def discard(self, reason: str = "operator discard") -> tuple[bool, str]:
        """Drop the open episode; returns (ok, message)."""
        if not self.writer.recording:
            self._failed = None
            return False, "not recording"
        self._close_bag()
        self.writer.discard_episode(reason)
        return True, "episode discarded"

    def tick(self) -> None:
        """Record every due grid frame (timer at the record rate): sample, validate, queue."""
        while self.writer.recording and self.sync.due() and self.sync.fault is None:
            self._record_one()
        if self.writer.recording and self.sync.fault is not None:
            self._fail(self.sync.fault)

    def _record_one(self) -> None:
        sample = self.sync.sample()
        if self.sync.fault is not None:
            self._fail(self.sync.fault)
            return
        if sample is None:
            return
        v = sample.values
        frame = Frame(
            t_ns=sample.t_ns,
            images={n: v[n] for n in self.profile.camera_names},
            qpos=np.concatenate([v[a.name] for a in self.profile.arms]),
            stamps_ns=sample.stamps_ns,
            state=(
                np.concatenate([v[state_stream(a.name)] for a in self.profile.arms])
                if self.config.qpos_source == "command"
                else None
            ),
        )
        try:
            self.writer.add_frame(frame)
        except (ValueError, RuntimeError) as exc:  # FrameError, BackPressureError, encoder
            self._fail(str(exc))

    def status(self) -> dict[str, Any]:
        """JSON-ready status for ``~/status``."""
        st = self.sync.stats()
        return {
            "recording": self.writer.recording,
            "episode": self.writer.next_index if self.writer.recording else None,
            "frames": st["recorded"] if self.writer.recording else 0,
            "drops": st["dropped"],
            "queue_depth": self.writer.queue_depth,
            "last_saved": self.last_saved,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        """Discard any open episode and release the dataset folder."""
        self._close_bag()
        self.writer.close()

    # -- internals ------------------------------------------------------------------------------
    def _close_bag(self) -> None:
        if self._bag is not None:
            try:
                self._bag.close()
            except Exception:  # noqa: BLE001 - the episode is being dropped anyway
                log.exception("closing the raw bag failed")
            self._bag = None

    def _fail(self, reason: str) -> None:
        if not self.writer.recording:
            return
        log.error("episode failed, discarding: %s", reason)
        self._close_bag()
        self.writer.discard_episode(reason)
        self._failed = self.last_error = reason
        self._log_discard(reason)

    def _log_discard(self, reason: str) -> None:
        line = {"time_unix_ns": time.time_ns(), "reason": reason, "sync": self.sync.stats()}
        with open(self.writer.dir / "discarded.log", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
