"""One ``main()`` for every node of the stack: init, spin on one thread, clean shutdown.

Every node runs on a :class:`rclpy.executors.SingleThreadedExecutor` (rclpy's multi-threaded
executor dropped most camera-rate messages on 2 cores, docs/platform.md §1.4). Ctrl-C and an
external shutdown end the spin quietly; the node's own clean-up runs before ``destroy_node``.
"""

from __future__ import annotations

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
        make_node: builds the node (after ``rclpy.init``); exceptions it raises propagate after
            rclpy is shut down.
        args: command-line arguments for ``rclpy.init`` (``--ros-args ...``); None = sys.argv.
        on_exit: clean-up run before ``destroy_node`` (stop threads, close files, end a
            backend process); runs even when spinning ended with an error.
    """
    rclpy.init(args=args)
    node = None
    executor = SingleThreadedExecutor()
    try:
        node = make_node()
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
