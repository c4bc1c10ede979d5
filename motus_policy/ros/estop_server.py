"""The policy node's ``~/estop`` and ``~/reset_estop`` services on a thread of their own.

rclpy runs a lifecycle transition inside the executor callback that received it, and the
policy node's executor is single-threaded (docs/platform.md §1.4). Loading a model in
``configure`` therefore keeps that executor busy for seconds to minutes, and a service hosted on
it could not answer. The e-stop must answer within 100 ms in every state (issue #14), so its two
services live on a small hidden node (``_<node>_estop``, hidden from ``ros2 node list`` by the
leading underscore) spun by its own single-threaded executor on the ``motus_estop`` thread. The
services keep the policy node's private names (``<node namespace>/<node name>/estop``), so
callers see no difference.

Threads: ``motus_estop`` runs the two handlers; they must be short and thread-safe (the policy
node takes its runtime lock, which the control tick holds for well under a control period).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from std_srvs.srv import Trigger

Handler = Callable[[], tuple[bool, str]]
"""A service handler: returns (success, message) for the Trigger response."""


class EStopServer:
    """Hosts ``<owner>/estop`` and ``<owner>/reset_estop`` (std_srvs/Trigger) on its own thread.

    Args:
        owner: the node whose private names the services take (its context is used).
        on_estop, on_reset: the handlers, called on the ``motus_estop`` thread.
    """

    def __init__(self, owner: Node, on_estop: Handler, on_reset: Handler) -> None:
        fqn = owner.get_fully_qualified_name()  # e.g. /robot1/motus_policy
        self.node = Node(
            f"_{owner.get_name()}_estop",
            namespace=owner.get_namespace(),
            context=owner.context,
            start_parameter_services=False,
            enable_rosout=False,
        )
        self.node.create_service(Trigger, f"{fqn}/estop", _trigger(on_estop))
        self.node.create_service(Trigger, f"{fqn}/reset_estop", _trigger(on_reset))
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="motus_estop", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(ExternalShutdownException):
            self._executor.spin()

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop the thread and destroy the hidden node (idempotent)."""
        if self._thread is None:
            return
        self._executor.shutdown(timeout_sec=timeout_s)
        self._thread.join(timeout_s)
        self._thread = None
        self.node.destroy_node()


def _trigger(handler: Handler):
    def callback(request, response):
        response.success, response.message = handler()
        return response

    return callback
