"""record_keys: drive a running recorder_node from the keyboard.

Keys: ``s`` start an episode, ``e`` or space end and save it, ``d`` discard it, ``q`` quit.
On a terminal keys act at once (raw mode); from a pipe, one key per line. Every service
answer and, once a second, the recorder's ``~/status`` are printed.

Parameters: ``recorder`` (node name, default ``/recorder``).
Threads: the main thread reads keys; a SingleThreadedExecutor thread spins the node.
"""

from __future__ import annotations

import contextlib
import json
import sys
import termios
import threading
import time
import tty

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

    def call(self, action: str, timeout_s: float = 30.0) -> str:
        """Call ``~/<action>`` and return the answer as one line."""
        client = self.clients_[action]
        if not client.wait_for_service(timeout_sec=5.0):
            return f"{action}: recorder service {client.srv_name} not available"
        fut = client.call_async(Trigger.Request())
        deadline = time.monotonic() + timeout_s
        while not fut.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not fut.done():
            return f"{action}: no answer in {timeout_s} s"
        r = fut.result()
        return f"{action}: {'ok' if r.success else 'FAILED'}: {r.message}"


def _keys():
    """Yield keys: raw single characters on a terminal, first character per line otherwise."""
    if sys.stdin.isatty():
        fd = sys.stdin.fileno()
        old = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            while True:
                yield sys.stdin.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
    else:
        for line in sys.stdin:
            yield line[:1] if line.strip() else " " if line.startswith(" ") else ""
        yield "q"


def main(args: list[str] | None = None) -> None:
    """Run the key loop until q / end of input."""
    rclpy.init(args=args)
    node = RecordKeys()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    try:
        for key in _keys():
            action = key_action(key)
            if action == "quit":
                break
            if action is not None:
                print(node.call(action), flush=True)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        with contextlib.suppress(Exception):
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
