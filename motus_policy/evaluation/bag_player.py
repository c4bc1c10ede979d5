"""Live replay core (ROS-free): when each recorded message is due, with rate scaling and looping.

The ROS node (:mod:`motus_policy.ros.bag_player_node`) streams a bag's raw CDR messages through a
:class:`BagPlayer` and publishes what :meth:`BagPlayer.due` returns, so the policy node can run on
recorded inputs. Message times are the bag's receive (log) times; message ``i`` is due at wall
time ``w0 + (t_i - t_first) / rate``. When looping, pass ``p`` starts ``p * (span + gap)`` after
the first, where ``gap`` is the first inter-message interval (so a loop does not replay two
messages at one instant). A message that arrives with a log time earlier than the previous one
is published at once and counted in :attr:`BagPlayer.out_of_order`.

Threads: one thread (the node's player thread) calls every method.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

Message = tuple[str, int, bytes]
"""(topic, log time ns, raw CDR bytes)."""


@dataclass(frozen=True)
class BagPlayerConfig:
    """Playback settings.

    Attributes:
        rate: playback speed factor (1.0 = recorded timing, 2.0 = twice as fast), > 0.
        loop: start over after the last message.
        remap: (bag topic, published topic) pairs; other topics keep their names.
    """

    rate: float = 1.0
    loop: bool = False
    remap: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate: expected > 0, got {self.rate}")
        for src, dst in self.remap:
            if not (src.startswith("/") and dst.startswith("/")):
                raise ValueError(f"remap: expected absolute topic names, got {src!r} -> {dst!r}")


class BagPlayer:
    """Yields messages as they fall due on an injected clock.

    Args:
        open_messages: returns a fresh iterator of :data:`Message` in bag order (called again
            for each loop pass).
        config: playback settings.
        clock: monotonic wall clock, int ns.
    """

    def __init__(
        self,
        open_messages: Callable[[], Iterator[Message]],
        config: BagPlayerConfig,
        clock: Callable[[], int],
    ):
        self.config = config
        self._open = open_messages
        self._clock = clock
        self._remap = dict(config.remap)
        self._it: Iterator[Message] | None = None
        self._next: Message | None = None
        self._t_first: int | None = None
        self._t_last_seen: int | None = None  # latest log time of the first pass
        self._gap_ns = 0
        self._span_ns = 0
        self._pass = 0
        self._w0: int | None = None
        self.published = 0
        self.out_of_order = 0
        self.finished = False

    def start(self) -> None:
        """Start playback now (wall time of the first message)."""
        self._w0 = self._clock()
        self._it = self._open()
        self._advance()

    def _advance(self) -> None:
        assert self._it is not None
        nxt = next(self._it, None)
        if nxt is None and self.config.loop and self._t_first is not None:
            self._span_ns = max(self._span_ns, (self._t_last_seen or 0) - self._t_first)
            self._pass += 1
            self._it = self._open()
            nxt = next(self._it, None)
        if nxt is None:
            self.finished = True
        elif self._t_first is None:
            self._t_first = nxt[1]
        elif self._pass == 0 and self._gap_ns == 0 and nxt[1] > self._t_first:
            self._gap_ns = nxt[1] - self._t_first
        self._next = nxt

    def _bag_offset_ns(self, msg: Message) -> int:
        """Bag-time offset of ``msg`` from the first message, including loop passes."""
        assert self._t_first is not None
        return msg[1] - self._t_first + self._pass * (self._span_ns + self._gap_ns)

    def due_wall_ns(self, msg: Message) -> int:
        """Wall time at which ``msg`` is due."""
        assert self._w0 is not None
        return self._w0 + round(self._bag_offset_ns(msg) / self.config.rate)

    def due(self) -> list[tuple[str, bytes, int]]:
        """Messages due now, in bag order: (published topic, raw bytes, bag time ns).

        Raises:
            RuntimeError: :meth:`start` was not called.
        """
        if self._w0 is None:
            raise RuntimeError("BagPlayer.due() before start()")
        now = self._clock()
        out = []
        while self._next is not None and self.due_wall_ns(self._next) <= now:
            topic, t, raw = self._next
            if self._pass == 0:
                if self._t_last_seen is not None and t < self._t_last_seen:
                    self.out_of_order += 1
                self._t_last_seen = max(t, self._t_last_seen or t)
            out.append((self._remap.get(topic, topic), raw, t))
            self.published += 1
            self._advance()
        return out

    def wait_ns(self) -> int | None:
        """Nanoseconds until the next message is due (0 if overdue), None when finished."""
        if self._next is None or self._w0 is None:
            return None
        return max(0, self.due_wall_ns(self._next) - self._clock())

    def bag_time_ns(self) -> int:
        """Bag time corresponding to now (for /clock): first log time + elapsed * rate."""
        if self._w0 is None or self._t_first is None:
            raise RuntimeError("BagPlayer.bag_time_ns() before start()")
        return self._t_first + round((self._clock() - self._w0) * self.config.rate)


def profile_remap(source, target) -> tuple[tuple[str, str], ...]:
    """Topic remapping from a bag's profile to the graph's: cameras by name, arm state by arm.

    Args:
        source: :class:`~motus_recorder.profile.RobotProfile` describing the bag's topics.
        target: profile whose topic names the graph (policy node) expects.

    Raises:
        ValueError: both source arms share one state topic but the target has two (a combined
            JointState cannot be split by remapping).
    """
    pairs = {c.topic: target.camera(c.name).topic for c in source.cameras}
    for arm in source.arms:
        dst = target.arm(arm.name).state_topic
        if pairs.get(arm.state_topic, dst) != dst:
            raise ValueError(
                f"source arms share {arm.state_topic}, target has separate state topics: "
                "cannot remap a combined JointState"
            )
        pairs[arm.state_topic] = dst
    return tuple((s, d) for s, d in pairs.items() if s != d)
