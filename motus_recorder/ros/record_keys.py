"""record_keys: drive a running recorder_node from the keyboard.

Keys: ``s`` start an episode, ``e`` or space end and save it, ``d`` discard it, ``q`` quit.
On a terminal keys act at once (raw mode); from a pipe, one key per line. Every service
answer and, once a second, the recorder's ``~/status`` are printed.

Parameters: ``recorder`` (node name, default ``/recorder``).
Threads: the main thread spins the node on a SingleThreadedExecutor and makes the service
calls; a daemon thread only reads keys into a queue. q, end of input, Ctrl-C and SIGTERM all
end the program with status 0 after a clean rclpy shutdown (issue #15 §7: with the executor on
a daemon thread, every exit aborted with "terminate called without an active exception").
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

KEYS = {"s": "start", "e": "stop", " ": "stop", "d": "discard"}
"""Key -> recorder service."""


def key_action(key: str) -> str | None:
    """Service for ``key`` (``start``/``stop``/``discard``), ``quit`` for q, else None."""
    if key in ("q", "\x03", "\x04"):
        return "quit"
    return KEYS.get(key.lower() if key.strip() else key)


class RecordKeys(Node):
    """Service clients of one recorder node plus a status printer."""

    def __init__(self) -> None:
        super().__init__("record_keys")
        name = str(self.declare_parameter("recorder", "/recorder").value).rstrip("/")
        self.clients_ = {a: self.create_client(Trigger, f"{name}/{a}") for a in set(KEYS.values())}
        self.status: dict | None = None
        self._last_print = 0.0
        self.create_subscription(String, f"{name}/status", self._on_status, 10)
        self.get_logger().info("record_keys READY: s=start, e/space=save, d=discard, q=quit")

    def _on_status(self, msg: String) -> None:
        self.status = json.loads(msg.data)
        if time.monotonic() - self._last_print > 1.0:
            self._last_print = time.monotonic()
            print(f"status {msg.data}", flush=True)

    def call(
        self, action: str, spin_once: Callable[[float], None], timeout_s: float = 30.0
    ) -> str:
        """Call ``<recorder>/<action>`` and return the answer as one line.

        ``spin_once(timeout_s)`` spins the node's executor (this runs on the spinning thread).
        """
        client = self.clients_[action]
        deadline = time.monotonic() + 5.0
        while not client.service_is_ready():
            if time.monotonic() > deadline:
                return f"{action}: recorder service {client.srv_name} not available"
            spin_once(0.05)
        fut = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not fut.done() and time.monotonic() < deadline:
            spin_once(0.02)
        if not fut.done():
            return f"{action}: no answer in {timeout_s} s"
        r = fut.result()
        return f"{action}: {'ok' if r.success else 'FAILED'}: {r.message}"


def _keys() -> Iterator[str]:
    """Yield keys, then ``q`` at end of input.

    On a terminal (set to cbreak by the caller) single characters, otherwise the first
    character of each line.
    """
    if sys.stdin.isatty():
        while True:
            ch = sys.stdin.read(1)
            if not ch:
                break
            yield ch
    else:
        for line in sys.stdin:
            yield line[:1] if line.strip() else " " if line.startswith(" ") else ""
    yield "q"


def _read_keys(out: queue.Queue) -> None:
    with contextlib.suppress(Exception):  # a closed stdin ends the input
        for key in _keys():
            out.put(key)
    out.put("q")


def main(args: list[str] | None = None) -> None:
    """Run the key loop until q / end of input / Ctrl-C / SIGTERM; exits with status 0."""
    rclpy.init(args=args)
    # SIGTERM ends the loop like q (rclpy's own handler shuts the context down first)
    prev_term = signal.getsignal(signal.SIGTERM)
    stop = threading.Event()

    def _on_term(signum, frame):
        stop.set()
        if callable(prev_term):
            with contextlib.suppress(Exception):
                prev_term(signum, frame)

    signal.signal(signal.SIGTERM, _on_term)
    old_tty = None
    if sys.stdin.isatty():
        old_tty = termios.tcgetattr(sys.stdin.fileno())
        tty.setcbreak(sys.stdin.fileno())
    node = RecordKeys()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    keys: queue.Queue = queue.Queue()
    threading.Thread(target=_read_keys, args=(keys,), daemon=True, name="keys").start()

    def spin_once(timeout_s: float) -> None:
        executor.spin_once(timeout_sec=timeout_s)

    try:
        while not stop.is_set():
            try:
                key = keys.get_nowait()
            except queue.Empty:
                spin_once(0.05)
                continue
            action = key_action(key)
            if action == "quit":
                break
            if action is not None:
                print(node.call(action, spin_once), flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if old_tty is not None:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSADRAIN, old_tty)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
