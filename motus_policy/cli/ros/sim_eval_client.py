"""Drives closed-loop episodes on the running aloha_sim_node over ROS.

For each seed: set the simulator's ``seed`` parameter (rcl_interfaces SetParameters), call its
reset service, then watch the success topic and /clock until success or the episode time limit
(in sim time). The agent under test (expert_node, policy_node) is whatever else runs in the graph.

Per episode it also records the reward curve (reward messages stamped with the latest /clock),
optionally an MP4 of one camera topic (PyAV, :class:`~motus_policy.evaluation.video.Mp4Writer`),
and keeps every JSON message of an optional status topic (the policy node's ``~/status``) for
latency statistics.

Threads: the caller's thread spins this node with a private SingleThreadedExecutor.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import SetBool, Trigger

from motus_policy.evaluation.sim_eval import EpisodeOutcome
from motus_policy.evaluation.video import Mp4Writer
from motus_recorder.profile import RobotProfile
from motus_recorder.ros.conversions import msg_to_image, time_to_ns

SERVICE_TIMEOUT_S = 30.0
GRAPH_SETTLE_S = 1.0
"""Extra wait after this node sees the whole graph, for the other nodes' own discovery."""
DRAIN_SPINS = 10
"""spin_once calls (10 ms each) after an episode ends, to take messages still in flight."""


class SimEvalClient:
    """Runs episodes against ``/<sim_node>`` and returns :class:`EpisodeOutcome` per seed.

    Args:
        profile: robot profile (topics and service names from ``extras``).
        sim_node: the simulator's node name (parameter service ``/<sim_node>/set_parameters``).
        context: rclpy context to use (default: the global one, which must be initialised).
        video_topic: camera topic (sensor_msgs/Image rgb8/bgr8) to record per episode.
        video_dir: folder for the episode videos (``seed_<seed>.mp4``); needs ``video_topic``.
        status_topic: std_msgs/String JSON topic to collect (e.g. ``/policy/status``).
    """

    def __init__(
        self,
        profile: RobotProfile,
        sim_node: str = "aloha_sim",
        context=None,
        *,
        video_topic: str | None = None,
        video_dir: str | Path | None = None,
        status_topic: str | None = None,
        policy_node: str | None = None,
    ):
        if bool(video_topic) != bool(video_dir):
            raise ValueError("video_topic and video_dir: give both or neither")
        self.profile = profile
        self.node = Node("motus_sim_eval", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        ex = profile.extras
        self._params = self.node.create_client(SetParameters, f"/{sim_node}/set_parameters")
        self._reset = self.node.create_client(Trigger, ex["reset_service"])
        self._triggers: dict = {}
        self._lifecycle = None
        self._policy_active = True  # assumed active (autostart) until we deactivate it
        if policy_node:
            # The policy is deactivated (holds) across each reset and re-activated afterwards,
            # so it ramps in from the new initial pose instead of chasing its old plan.
            self._lifecycle = self.node.create_client(ChangeState, f"/{policy_node}/change_state")
            self._get_state = self.node.create_client(GetState, f"/{policy_node}/get_state")
        self._success = False
        self._reward = 0.0
        self._clock_ns = 0
        self.node.create_subscription(Bool, ex["success_topic"], self._on_success, 10)
        self.node.create_subscription(Float64, ex["reward_topic"], self._on_reward, 10)
        self.node.create_subscription(Clock, profile.clock_topic, self._on_clock, 10)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self._episode: dict = {}
        self.node.create_subscription(String, ex["episode_topic"], self._on_episode, latched)
        self._curve: list[tuple[float, float]] = []
        self._start_ns: int | None = None  # set while an episode runs
        self._video: Mp4Writer | None = None
        self._video_dir = Path(video_dir) if video_dir else None
        self.video_errors: list[str] = []
        if video_topic:
            self.node.create_subscription(
                Image, video_topic, self._on_image, qos_profile_sensor_data
            )
        self.statuses: list[dict] = []
        if status_topic:
            self.node.create_subscription(String, status_topic, self._on_status, 10)

    def _on_image(self, msg: Image) -> None:
        if self._video is None or self._start_ns is None:
            return
        try:
            self._video.add(msg_to_image(msg))
        except ValueError as exc:  # wrong encoding / size: keep evaluating, report it
            self.video_errors.append(str(exc))

    def _on_status(self, msg: String) -> None:
        try:
            status = json.loads(msg.data)
        except json.JSONDecodeError:
            return
        if isinstance(status, dict):
            self.statuses.append(status)

    def _on_episode(self, msg: String) -> None:
        episode = json.loads(msg.data)
        # A late latched (older) announcement must not replace a newer one.
        if episode.get("start_ns", -1) >= self._episode.get("start_ns", -1):
            self._episode = episode

    def _on_success(self, msg: Bool) -> None:
        # The simulator's flag is sticky within an episode (reward reached its maximum at some
        # step), so the latest value is the episode's outcome so far.
        self._success = bool(msg.data)

    def _on_reward(self, msg: Float64) -> None:
        if self._start_ns is not None and self._clock_ns < self._start_ns:
            return  # published before this episode's reset (the clock has not reached it yet)
        self._reward = max(self._reward, float(msg.data))
        if self._start_ns is not None:
            self._curve.append(((self._clock_ns - self._start_ns) / 1e9, float(msg.data)))

    def _on_clock(self, msg: Clock) -> None:
        self._clock_ns = time_to_ns(msg.clock)

    def _call(self, client, request, what: str):
        if not client.wait_for_service(timeout_sec=SERVICE_TIMEOUT_S):
            raise TimeoutError(f"{what}: service {client.srv_name} not available")
        future = client.call_async(request)
        self.executor.spin_until_future_complete(future, timeout_sec=SERVICE_TIMEOUT_S)
        if not future.done() or future.result() is None:
            raise TimeoutError(f"{what}: no response from {client.srv_name}")
        return future.result()

    def reset(self, seed: int) -> int:
        """Reset the simulator with ``seed``; returns the sim time (ns) of the reset.

        Raises:
            RuntimeError: the parameter was refused or the reset failed.
            TimeoutError: a service did not answer.
        """
        # Read before the calls: the announcement may arrive while waiting for the reply.
        previous = self._episode.get("start_ns", -1)
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=int(seed))
        req = SetParameters.Request(parameters=[Parameter(name="seed", value=value)])
        res = self._call(self._params, req, "set seed")
        if not res.results[0].successful:
            raise RuntimeError(f"simulator refused seed={seed}: {res.results[0].reason}")
        res = self._call(self._reset, Trigger.Request(), "reset")
        if not res.success:
            raise RuntimeError(f"simulator reset failed: {res.message}")
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while self._episode.get("start_ns", -1) <= previous or self._episode.get("seed") != seed:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no episode announcement for seed {seed} after reset")
            self.executor.spin_once(timeout_sec=0.05)
        self._success, self._reward = False, 0.0
        return int(self._episode["start_ns"])

    def run_episode(
        self,
        seed: int,
        episode_length_s: float,
        wall_timeout_s: float,
        after_reset: Callable[[], None] | None = None,
    ) -> EpisodeOutcome:
        """Reset with ``seed`` and wait for success or ``episode_length_s`` of sim time.

        ``after_reset`` runs once the new episode is announced (and the policy re-activated),
        before waiting: e.g. start a recorder, then release a waiting expert.

        Raises:
            TimeoutError: sim time did not reach the limit within ``wall_timeout_s`` (the agent
                or the simulator stalled).
        """
        t_wall = time.monotonic()
        if self._lifecycle is not None and self._policy_active:
            self._transition(Transition.TRANSITION_DEACTIVATE, "deactivate")
            self._policy_active = False
        start_ns = self.reset(seed)
        if self._lifecycle is not None:
            self._transition(Transition.TRANSITION_ACTIVATE, "activate")
            self._policy_active = True
        if after_reset is not None:
            after_reset()
        limit_ns = start_ns + round(episode_length_s * 1e9)
        self._curve, self._start_ns = [], start_ns
        if self._video_dir is not None:
            fps = self.profile.cameras[0].rate_hz
            self._video = Mp4Writer(self._video_dir / f"seed_{seed}.mp4", fps)
        try:
            while not (self._success and self._clock_ns > start_ns) and self._clock_ns < limit_ns:
                if time.monotonic() - t_wall > wall_timeout_s:
                    sim_s = (self._clock_ns - start_ns) / 1e9
                    raise TimeoutError(
                        f"seed {seed}: episode stalled at {sim_s:.2f} s sim time after "
                        f"{wall_timeout_s:.0f} s wall time"
                    )
                self.executor.spin_once(timeout_sec=0.1)
            end_ns = self._clock_ns
            # Success and reward of one step are separate messages: take the ones in flight.
            for _ in range(DRAIN_SPINS):
                self.executor.spin_once(timeout_sec=0.01)
        except BaseException:
            if self._video is not None:
                self._video.abort()
            raise
        finally:
            self._start_ns = None
        video = self._video.close() if self._video is not None else None
        self._video = None
        return EpisodeOutcome(
            seed=int(seed),
            success=self._success,
            max_reward=self._reward,
            sim_duration_s=max(0.0, (end_ns - start_ns) / 1e9),
            wall_duration_s=time.monotonic() - t_wall,
            reward_curve=tuple(self._curve),
            video=str(video) if video else None,
        )

    def wait_policy_active(self, timeout_s: float = 180.0) -> None:
        """Block until the policy node's lifecycle state is ``active`` (model loaded).

        Raises:
            TimeoutError: not active in time (the message gives the last state).
        """
        deadline, label = time.monotonic() + timeout_s, "?"
        while time.monotonic() < deadline:
            label = self._call(
                self._get_state, GetState.Request(), "get_state"
            ).current_state.label
            if label == "active":
                return
            self.executor.spin_once(timeout_sec=0.5)
        raise TimeoutError(f"policy not active after {timeout_s} s (state {label!r})")

    def _transition(self, transition_id: int, what: str) -> None:
        req = ChangeState.Request(transition=Transition(id=transition_id))
        res = self._call(self._lifecycle, req, what)
        if not res.success:
            raise RuntimeError(f"policy lifecycle {what} failed (see the policy node log)")

    def run_for(self, sim_s: float, wall_timeout_s: float) -> None:
        """Keep the graph running for ``sim_s`` more seconds of sim time.

        Raises:
            TimeoutError: sim time stalled.
        """
        t_wall, until = time.monotonic(), self._clock_ns + round(sim_s * 1e9)
        while self._clock_ns < until:
            if time.monotonic() - t_wall > wall_timeout_s:
                raise TimeoutError(f"sim time stalled at {self._clock_ns} ns")
            self.executor.spin_once(timeout_sec=0.05)

    def call_trigger(self, service: str, timeout_s: float = SERVICE_TIMEOUT_S) -> tuple[bool, str]:
        """Call a std_srvs/Trigger service by name; returns (success, message)."""
        client = self._triggers.get(service)
        if client is None:
            client = self._triggers[service] = self.node.create_client(Trigger, service)
        res = self._call(client, Trigger.Request(), service)
        return bool(res.success), str(res.message)

    def wait_for_graph(
        self, publishers: dict[str, int], subscribers: dict[str, int], timeout_s: float = 60.0
    ) -> None:
        """Block until each topic has at least the given numbers of publishers / subscribers.

        A lockstep graph advances only on messages; one published before the receiving node
        discovered its publisher is lost and stalls the chain, so wait for discovery first.

        Raises:
            TimeoutError: the graph did not connect in time (the message lists what is missing).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            missing = [
                f"{t}: {self.node.count_publishers(t)}/{n} publishers"
                for t, n in publishers.items()
                if self.node.count_publishers(t) < n
            ]
            missing += [
                f"{t}: {self.node.count_subscribers(t)}/{n} subscribers"
                for t, n in subscribers.items()
                if self.node.count_subscribers(t) < n
            ]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise TimeoutError("graph not connected: " + "; ".join(missing))
            self.executor.spin_once(timeout_sec=0.1)
        # the other nodes discover each other at about the same time as this one does
        t_end = time.monotonic() + GRAPH_SETTLE_S
        while time.monotonic() < t_end:
            self.executor.spin_once(timeout_sec=0.05)

    def call_set_bool(self, service: str, value: bool) -> str:
        """Call a std_srvs/SetBool service by name; returns its message.

        Raises:
            RuntimeError: the service answered success = False.
        """
        client = self._triggers.get(service)
        if client is None:
            client = self._triggers[service] = self.node.create_client(SetBool, service)
        res = self._call(client, SetBool.Request(data=bool(value)), service)
        if not res.success:
            raise RuntimeError(f"{service}({value}) failed: {res.message}")
        return str(res.message)

    def close(self) -> None:
        """Destroy the node and executor."""
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()


def init_context():
    """A private rclpy context (so callers need not touch the global one)."""
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx)
    return ctx
