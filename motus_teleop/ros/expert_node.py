"""expert_node: the scripted expert as the simulated operator (leader) of the sim robot.

Listens to the simulator's episode announcements (``extras.episode_topic``, std_msgs/String JSON
``{"seed", "start_ns", "task"}``), plans the episode with :mod:`motus_teleop.expert` from the
initial joint states and object poses stamped ``start_ns``, then answers every joint-state step
(both arms stamped t) with the plan's per-arm targets due at t on the arms' ``command_topic``. In
the sim's lockstep mode this ping-pong makes episodes exactly reproducible; in free-run mode the
same rule follows sim time.

Parameters: ``profile`` (robot profile name/path), ``task`` (transfer_cube | insertion),
``wait_for_go`` (act on an announced episode only after ``~/go``; for recording).
Services (std_srvs/Trigger): ``~/go`` releases the planned episode (success only once it is
planned, message JSON ``{"seed", "start_ns"}`` of the episode acted on, so a caller that reset the
sim can tell the new episode from one still running; otherwise the message names the missing
input, so a caller can retry; repeating ``~/go`` is harmless); ``~/ready``
succeeds once every subscribed topic has a matched publisher and every command topic a matched
subscriber (:mod:`motus_recorder.ros.matching`), naming each silent topic otherwise.
Threads: one SingleThreadedExecutor runs every callback.
"""

from __future__ import annotations

import functools
import json

import numpy as np
from geometry_msgs.msg import PoseArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from motus_recorder import schema
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import joint_state_to_msg, msg_to_positions, time_to_ns
from motus_recorder.ros.matching import readiness
from motus_recorder.ros.spin import run_node
from motus_teleop.expert import make_expert
from motus_teleop.operator import Episode, ScriptedOperator

HISTORY_STEPS = 50
"""Joint-state / pose messages remembered per stream (1 s at 50 Hz)."""

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def pose_array_to_numpy(msg: PoseArray) -> np.ndarray:
    """geometry_msgs/PoseArray -> float64 (N, 7) rows ``[x, y, z, qw, qx, qy, qz]``."""
    return np.array(
        [
            [
                p.position.x,
                p.position.y,
                p.position.z,
                p.orientation.w,
                p.orientation.x,
                p.orientation.y,
                p.orientation.z,
            ]
            for p in msg.poses
        ],  # fmt: skip
        dtype=np.float64,
    ).reshape(-1, 7)


class ExpertNode(Node):
    """Thin ROS wrapper around :class:`ScriptedOperator`."""

    def __init__(self) -> None:
        super().__init__("expert")
        self.declare_parameter("profile", "aloha_sim")
        self.declare_parameter("task", "transfer_cube")
        # wait_for_go: plan each announced episode but act only after ~/go (std_srvs/Trigger),
        # so a recorder can be started at the episode's first state (lockstep recording).
        self.declare_parameter("wait_for_go", False)
        self._wait_for_go = bool(self.get_parameter("wait_for_go").value)
        self._released = not self._wait_for_go
        # relative profile topics resolve in this node's namespace (-r __ns:=/robot1)
        self.profile = load_profile(
            self.get_parameter("profile").value, namespace=self.get_namespace()
        )
        task = str(self.get_parameter("task").value)
        period_ns = round(1e9 / self.profile.control_rate_hz)
        self.operator = ScriptedOperator(make_expert(task), period_ns)
        self.task = task
        extras = self.profile.extras
        self._states: dict[str, tuple[int, np.ndarray]] = {}
        self._history: dict[str, dict[int, np.ndarray]] = {a: {} for a in schema.ARM_NAMES}
        self._pose_history: dict[int, np.ndarray] = {}
        self._pending: Episode | None = None
        self._last_cmd_ns = -1
        self._pubs = {}
        # Created first on purpose: when an announcement and the new episode's first states are
        # ready together, rclpy's executor serves subscriptions in creation order, so the
        # announcement is seen before the states and no state of the new episode is answered
        # with the old plan.
        subs = [
            self.create_subscription(String, extras["episode_topic"], self._on_episode, LATCHED)
        ]
        for arm in self.profile.arms:
            names = list(arm.joint_state_names)
            subs.append(
                self.create_subscription(
                    JointState,
                    arm.state_topic,
                    functools.partial(self._on_state, arm.name, names),
                    10,
                )
            )
            self._pubs[arm.name] = (
                self.create_publisher(JointState, arm.command_topic, 10),
                names,
            )
        subs.append(
            self.create_subscription(PoseArray, extras["object_pose_topic"], self._on_poses, 10)
        )
        self._subs = subs
        self.create_service(Trigger, "~/go", self._on_go)
        self.create_service(Trigger, "~/ready", self._on_ready)
        self.get_logger().info(f"expert for {task} READY")

    def _on_episode(self, msg: String) -> None:
        data = json.loads(msg.data)
        if data.get("task", self.task) != self.task:
            self.get_logger().error(
                f"sim runs task {data.get('task')!r}, expert plans {self.task!r}"
            )
            return
        self._pending = Episode(int(data["seed"]), int(data["start_ns"]), self.task)
        self._released = not self._wait_for_go
        self._try_start()

    def _on_go(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self._released = True
        self._publish_due()
        ep = self.operator.episode
        response.success = ep is not None and self._pending is None
        if response.success:
            response.message = json.dumps({"seed": ep.seed, "start_ns": ep.start_ns})
        else:
            response.message = self._missing()
        return response

    def _missing(self) -> str:
        """Why no episode is planned: the input still missing, topic named."""
        ep, extras = self._pending, self.profile.extras
        if ep is None:
            return f"no planned episode yet: no announcement on {extras['episode_topic']}"
        missing = [
            a.state_topic for a in self.profile.arms if ep.start_ns not in self._history[a.name]
        ]
        if ep.start_ns not in self._pose_history:
            missing.append(extras["object_pose_topic"])
        return (
            f"episode seed={ep.seed} announced, not planned: no message stamped "
            f"{ep.start_ns} ns (its start) on {missing}"
        )

    def _on_ready(self, _request: Trigger.Request, response: Trigger.Response):
        pubs = [pub for pub, _names in self._pubs.values()]
        response.success, response.message = readiness(self._subs, pubs)
        return response

    @staticmethod
    def _remember(history: dict[int, np.ndarray], t_ns: int, value: np.ndarray) -> None:
        history[t_ns] = value
        while len(history) > HISTORY_STEPS:
            history.pop(next(iter(history)))

    def _on_poses(self, msg: PoseArray) -> None:
        self._remember(self._pose_history, time_to_ns(msg.header.stamp), pose_array_to_numpy(msg))
        self._try_start()

    def _on_state(self, arm: str, names: list[str], msg: JointState) -> None:
        t, q = time_to_ns(msg.header.stamp), msg_to_positions(msg, names)
        self._states[arm] = (t, q)
        self._remember(self._history[arm], t, q)
        if not self._try_start():
            self._publish_due()

    def _try_start(self) -> bool:
        """Plan the announced episode from the states and poses stamped at its start.

        Those come from a short history, so the order in which the announcement, the states
        and the poses arrive does not matter.
        """
        ep = self._pending
        if ep is None or ep.start_ns not in self._pose_history:
            return False
        parts = [self._history[a].get(ep.start_ns) for a in schema.ARM_NAMES]
        if any(p is None for p in parts):
            return False
        if self._last_cmd_ns >= ep.start_ns:
            self.get_logger().warning(
                f"episode seed={ep.seed}: its first state was answered before the announcement"
            )
        self._pending = None
        try:
            steps = self.operator.start(ep, np.concatenate(parts), self._pose_history[ep.start_ns])
        except ValueError as exc:
            self.get_logger().error(f"cannot plan episode seed={ep.seed}: {exc}")
            return False
        self.get_logger().info(f"episode seed={ep.seed}: planned {steps} steps")
        self._last_cmd_ns = -1
        self._publish_due()
        return True

    def _publish_due(self) -> None:
        ep = self.operator.episode
        if ep is None or not self._released or self._pending is not None:
            return
        stamps = {self._states[a][0] for a in schema.ARM_NAMES if a in self._states}
        if len(stamps) != 1:
            return  # wait until both arms reported the same step
        t = stamps.pop()
        if t < ep.start_ns or t == self._last_cmd_ns:
            return
        target = self.operator.command(t)
        for arm, (pub, names) in self._pubs.items():
            pub.publish(joint_state_to_msg(names, target[schema.ARM_SLICES[arm]], t))
        self._last_cmd_ns = t


def main(args=None) -> None:
    """Run the expert node until Ctrl-C."""
    run_node(ExpertNode, args)


if __name__ == "__main__":
    main()
