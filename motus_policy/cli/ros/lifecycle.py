"""Drive a lifecycle node from the command line (no `ros2 lifecycle` in pip installs).

``python -m motus_policy.cli.ros.lifecycle activate`` (default node ``/motus_policy``);
transitions: configure, activate, deactivate, cleanup, shutdown; ``get`` prints the state.
Exit code 0 when the transition succeeded (or ``get`` answered), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState

TRANSITIONS = {
    "configure": Transition.TRANSITION_CONFIGURE,
    "activate": Transition.TRANSITION_ACTIVATE,
    "deactivate": Transition.TRANSITION_DEACTIVATE,
    "cleanup": Transition.TRANSITION_CLEANUP,
    "shutdown": Transition.TRANSITION_INACTIVE_SHUTDOWN,
}


def main(argv: list[str] | None = None) -> int:
    """See the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=[*TRANSITIONS, "get"])
    ap.add_argument(
        "--node", default="/motus_policy", help="lifecycle node (default /motus_policy)"
    )
    ap.add_argument("--timeout-s", type=float, default=120.0, help="wait this long for an answer")
    ns = ap.parse_args(argv)
    rclpy.init()
    node = rclpy.create_node("motus_lifecycle_cli")
    try:
        if ns.command == "get":
            client, req = node.create_client(GetState, f"{ns.node}/get_state"), GetState.Request()
        else:
            client = node.create_client(ChangeState, f"{ns.node}/change_state")
            req = ChangeState.Request(transition=Transition(id=TRANSITIONS[ns.command]))
        if not client.wait_for_service(timeout_sec=10.0):
            print(f"{client.srv_name} not available", file=sys.stderr)
            return 1
        future = client.call_async(req)
        rclpy.spin_until_future_complete(node, future, timeout_sec=ns.timeout_s)
        res = future.result()
        if res is None:
            print(f"no answer from {client.srv_name} in {ns.timeout_s} s", file=sys.stderr)
            return 1
        if ns.command == "get":
            print(res.current_state.label)
            return 0
        print(f"{ns.command}: {'ok' if res.success else 'FAILED (see the node log)'}")
        return 0 if res.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
