"""ROS 2 teleoperation node: leader joint states -> follower joint commands.

Subscribes the leader topics (default: each arm's profile ``driver.leader_topic``, i.e. the Piper
leader arms published by ``piper_arm_node leader:=true``; for the sim, a scripted expert
publishing 14-D or per-arm JointState on ``leader_topics``) and each arm's ``state_topic`` (to
start the rate limiter at the follower's measured position); publishes sensor_msgs/JointState
commands on each arm's ``command_topic`` at ``rate_hz`` (default: the profile's control rate).
The mapping itself is :class:`motus_teleop.mapping.TeleopMapper`, one per arm.

Leader messages are matched by name: ``leader_joint_names`` (14, default each arm's JointState
names) lists the leader's names in the 14-D order; a message may carry any subset of whole arms.
Names are looked up per topic: with one leader topic per arm (the default) a message on arm k's
topic feeds arm k only, so both leaders may use the same names (AgileX's ``joint0..joint6``); a
single leader topic for both arms needs distinct names per arm.
Service ``~/hold`` (std_srvs/SetBool): true holds the last command (deadman released), false
follows again, rate-limited from the follower's current measured position.
Service ``~/ready`` (std_srvs/Trigger): success once every leader and follower-state topic has a
matched publisher and every command topic a matched subscriber (DDS matching, not mere
discovery: :mod:`motus_recorder.ros.matching`); the message names each silent topic and the arms
whose follower position is still unknown.
``publish_on_leader:=true`` publishes one command per leader message instead of on a timer (for
a lockstep simulation, which advances only when commands arrive). The first follower state is
answered with a command only while following (not held) and once a leader sample exists, so a
held teleop never steps a lockstep simulation.

Threads: one SingleThreadedExecutor thread runs every callback (docs/platform.md §1.4).
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool, Trigger

from motus_policy.ros.params import POSITIVE, number_descriptor
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import joint_state_to_msg, msg_to_positions
from motus_recorder.ros.matching import readiness
from motus_recorder.ros.spin import run_node
from motus_teleop.mapping import TeleopMapper, TeleopMappingConfig

LOG_THROTTLE_S = 1.0
ARRAY_PARAMS = {
    "leader_topics": Parameter.Type.STRING_ARRAY,
    "leader_joint_names": Parameter.Type.STRING_ARRAY,
    "scale": Parameter.Type.DOUBLE_ARRAY,
    "offset": Parameter.Type.DOUBLE_ARRAY,
    "leader_gripper_min": Parameter.Type.DOUBLE_ARRAY,
    "leader_gripper_max": Parameter.Type.DOUBLE_ARRAY,
}
"""Array parameters and their types. Each is declared with its profile-derived default as the
value (see :func:`array_defaults`), so GetParameters and ``ros2 param dump`` show what the node
uses (issue #15 §7: declared by type only, they were unset and GetParameters returned nothing);
only ``leader_topics`` of a profile without ``driver.leader_topic`` stays unset (then required)."""


def array_defaults(prof) -> dict[str, list]:
    """Profile-derived value of each of :data:`ARRAY_PARAMS` (None: no default, must be set)."""
    topics = [str(a.driver.get("leader_topic", "")) for a in prof.arms]
    return {
        "leader_topics": topics if all(topics) else None,
        "leader_joint_names": [n for a in prof.arms for n in a.joint_state_names],
        "scale": [1.0] * 14,
        "offset": [0.0] * 14,
        "leader_gripper_min": [float(a.gripper.min) for a in prof.arms],
        "leader_gripper_max": [float(a.gripper.max) for a in prof.arms],
    }


class TeleopNode(Node):
    """Thin ROS wrapper: one :class:`TeleopMapper` per arm."""

    def __init__(self) -> None:
        super().__init__("teleop")
        scalars = {
            "profile": "aloha_agilex_2",
            "rate_hz": 0.0,
            "stale_timeout_s": 0.1,
            "require_follower_state": True,
            # True: publish one follower command per leader message instead of on a timer
            # (a lockstep simulation advances only on commands, so a timer would starve it)
            "publish_on_leader": False,
        }
        ranges = {  # TeleopMappingConfig's bounds (motus_teleop/mapping.py); 0 Hz = profile's
            "rate_hz": number_descriptor("command rate [Hz]; 0 = the profile's control rate", 0.0),
            "stale_timeout_s": number_descriptor(
                "hold when the newest leader sample is older than this [s]", POSITIVE
            ),
        }
        params = [self.declare_parameter(n, v, ranges.get(n)) for n, v in scalars.items()]
        get = {p.name: p.value for p in params}
        # relative profile topics resolve in this node's namespace (-r __ns:=/robot1)
        self.profile = prof = load_profile(get["profile"], namespace=self.get_namespace())
        defaults = array_defaults(prof)
        for name, ptype in ARRAY_PARAMS.items():  # unset (None) only without a default
            value = defaults[name]
            get[name] = self.declare_parameter(name, ptype if value is None else value).value
        n_arms = len(prof.arms)
        scale = get["scale"] or [1.0] * 14
        offset = get["offset"] or [0.0] * 14
        g_min = get["leader_gripper_min"] or [a.gripper.min for a in prof.arms]
        g_max = get["leader_gripper_max"] or [a.gripper.max for a in prof.arms]
        leader_names = list(
            get["leader_joint_names"] or [n for a in prof.arms for n in a.joint_state_names]
        )
        for name, value, size in (
            ("scale", scale, 14),
            ("offset", offset, 14),
            ("leader_joint_names", leader_names, 14),
            ("leader_gripper_min", g_min, n_arms),
            ("leader_gripper_max", g_max, n_arms),
        ):
            if len(value) != size:
                raise ValueError(f"parameter {name} must have {size} entries, got {list(value)}")
        self.require_follower_state = bool(get["require_follower_state"])
        self.publish_on_leader = bool(get["publish_on_leader"])
        self._follower: dict[int, object] = {}  # latest measured position per arm
        self._held = False
        self._subs, self._pubs = [], []  # for ~/ready

        self.arms = []
        for k, arm in enumerate(prof.arms):
            sl = slice(7 * k, 7 * k + 7)
            cfg = TeleopMappingConfig(
                scale=tuple(scale[sl]),
                offset=tuple(offset[sl]),
                position_min=tuple(prof.position_min[sl]),
                position_max=tuple(prof.position_max[sl]),
                velocity_max_per_s=tuple(prof.velocity_max[sl]),
                gripper_index=6,
                leader_gripper_min=g_min[k],
                leader_gripper_max=g_max[k],
                stale_timeout_s=get["stale_timeout_s"],
            )
            mapper = TeleopMapper(cfg, self._now_ns)
            names = arm.joint_state_names
            pub = self.create_publisher(JointState, arm.command_topic, 10)
            self._pubs.append(pub)
            # volatile on purpose: real drivers publish the follower state volatile, and a
            # transient-local subscription would not match them
            self._subs.append(
                self.create_subscription(
                    JointState, arm.state_topic, lambda m, i=k: self._on_follower(i, m), 10
                )
            )
            self.arms.append((arm, mapper, names, tuple(leader_names[sl]), pub))

        topics = list(get["leader_topics"] or [])
        if not topics:
            topics = [a.driver.get("leader_topic", "") for a in prof.arms]
            if not all(topics):
                raise ValueError(
                    f"profile {prof.name!r} has no driver.leader_topic for every arm; "
                    "set the leader_topics parameter"
                )
        # which arms each leader topic feeds: its own arm with one topic per arm, else all arms
        # (matched by name, so the names must then differ between the arms)
        per_arm = len(topics) == n_arms and len(set(topics)) == n_arms
        feeds = {t: [k for k, tk in enumerate(topics) if tk == t or not per_arm] for t in topics}
        for topic, arms in feeds.items():
            names = [n for k in arms for n in leader_names[7 * k : 7 * k + 7]]
            if len(set(names)) != len(names):
                raise ValueError(
                    f"leader topic {topic} feeds arms {[prof.arms[k].name for k in arms]} whose "
                    f"leader_joint_names repeat ({names}): give each arm its own leader topic "
                    "(leader_topics) or distinct leader_joint_names"
                )
            cb = lambda m, ks=tuple(arms): self._on_leader(m, ks)  # noqa: E731
            self._subs.append(self.create_subscription(JointState, topic, cb, 10))
        self.create_service(SetBool, "~/hold", self._on_hold)
        self.create_service(Trigger, "~/ready", self._on_ready)
        rate_hz = get["rate_hz"] or prof.control_rate_hz
        if not self.publish_on_leader:
            self.create_timer(1.0 / rate_hz, self._on_tick)
        self._reasons = [""] * n_arms
        self.get_logger().info(
            f"READY teleop {prof.name}: leaders {topics} -> "
            f"{[a.command_topic for a in prof.arms]} at {rate_hz:.0f} Hz"
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_leader(self, msg: JointState, arms: tuple[int, ...]) -> None:
        present = set(msg.name)
        for k, (arm, mapper, _names, leader_names, _pub) in enumerate(self.arms):
            if k not in arms or not present.issuperset(leader_names):
                continue
            try:
                q = msg_to_positions(msg, leader_names)
                mapper.update_leader(q)
                if not self.require_follower_state and not mapper.seeded:
                    mapper.seed(mapper.map(q))
                if self.publish_on_leader:
                    self._publish(k)
            except ValueError as e:
                self.get_logger().error(
                    f"{arm.name} leader sample dropped: {e}", throttle_duration_sec=LOG_THROTTLE_S
                )

    def _on_follower(self, k: int, msg: JointState) -> None:
        arm, mapper, names, _leader_names, _pub = self.arms[k]
        try:
            self._follower[k] = q = msg_to_positions(msg, names)
            if not mapper.seeded:
                mapper.seed(q)
                if self.publish_on_leader and not self._held and mapper.has_leader:
                    # a lockstep sim waits for a command: answer the first state (it may have
                    # arrived after the leader sample, which then produced nothing). Never while
                    # held: that would step the sim before the operator (or a recorder) is ready.
                    self._publish(k)
        except ValueError as e:
            self.get_logger().error(
                f"{arm.name} follower state unusable: {e}", throttle_duration_sec=LOG_THROTTLE_S
            )

    def _on_tick(self) -> None:
        for k in range(len(self.arms)):
            self._publish(k)

    def _publish(self, k: int) -> None:
        arm, mapper, names, _leader_names, pub = self.arms[k]
        out = mapper.step()
        if out.reason != self._reasons[k]:
            self._reasons[k] = out.reason
            self.get_logger().info(f"{arm.name}: {out.reason}")
        if out.command is not None:
            pub.publish(joint_state_to_msg(names, out.command, out.stamp_ns))

    def _on_hold(self, request: SetBool.Request, response: SetBool.Response):
        self._held = bool(request.data)
        for k, (_arm, mapper, *_) in enumerate(self.arms):
            if not request.data and k in self._follower:
                # Resume from where the follower is now (it may have been moved while held,
                # e.g. a simulator reset), not from the last command.
                mapper.reseed(self._follower[k])
            mapper.set_hold(request.data)
        response.success = True
        response.message = "holding" if request.data else "following the leader"
        return response

    def _on_ready(self, _request: Trigger.Request, response: Trigger.Response):
        response.success, response.message = readiness(self._subs, self._pubs)
        unknown = [a.state_topic for k, (a, *_) in enumerate(self.arms) if k not in self._follower]
        if unknown:
            response.message += f"; no follower position received yet on {unknown}"
        return response


def main(args=None) -> None:
    """Entry point ``teleop_node``."""
    run_node(TeleopNode, args)


if __name__ == "__main__":
    main()
