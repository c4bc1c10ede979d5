"""One ``main()`` for every node of the stack: init, spin on one thread, clean shutdown.

Every node runs on a :class:`rclpy.executors.SingleThreadedExecutor` (rclpy's multi-threaded
executor dropped most camera-rate messages on 2 cores, docs/platform.md §1.4). Ctrl-C and an
external shutdown end the spin quietly; the node's own clean-up runs before ``destroy_node``.
A node that cannot start (no robot on the CAN bus, no bag, a bad parameter) prints one line
naming the node and the reason and exits with status 1; ``MOTUS_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    *,
    on_exit: Callable[[Node], None] | None = None,
) -> None:
    """Initialise rclpy, build the node, spin it until shutdown, then tear down.

    Args:
        make_node: builds the node (after ``rclpy.init``). If it raises, one line
            ``[ERROR] <program>: cannot start: <Type>: <message>`` goes to stderr and the process
            exits with status 1 (``SystemExit(1)``); with ``MOTUS_DEBUG=1`` the exception
            propagates with its traceback instead.
        args: command-line arguments for ``rclpy.init`` (``--ros-args ...``); None = sys.argv.
        on_exit: clean-up run before ``destroy_node`` (stop threads, close files, end a
            backend process); runs even when spinning ended with an error.
    """
    rclpy.init(args=args)
    node = None
    executor = SingleThreadedExecutor()
    try:
        try:
            node = make_node()
        except (KeyboardInterrupt, ExternalShutdownException):
            raise
        except Exception as exc:
            if os.environ.get("MOTUS_DEBUG") == "1":
                raise
            program = os.path.basename(sys.argv[0]) or "node"
            print(
                f"[ERROR] {program}: cannot start: {type(exc).__name__}: {exc} "
                "(MOTUS_DEBUG=1 shows the traceback)",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1) from None
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if on_exit is not None:
                on_exit(node)
            executor.shutdown()
            node.destroy_node()
        rclpy.try_shutdown()
