"""ROS 2 node for the simulated ALOHA: same topics as the real robot, sim time on /clock.

Thin wrapper around :class:`motus_policy.robots.aloha_sim.runner.SimRunner` (ROS-free). Topics,
joint names
and services come from the robot profile (``config/robots/aloha_sim.yaml``); the parameters are
the fields of :class:`~motus_policy.robots.aloha_sim.runner.AlohaSimNodeConfig`.

Threading: one dedicated stepping thread owns MuJoCo (reset, step, render: the OpenGL context
stays on that thread) and publishes everything. The main thread spins a SingleThreadedExecutor
for command subscriptions, services and parameters; command callbacks only update the runner's
targets (under its lock); the reset/step services queue a request for the stepping thread and
wait for it (at most 10 s).
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time

import numpy as np
from geometry_msgs.msg import PoseArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from motus_policy.robots.aloha_sim.runner import AlohaSimNodeConfig, Pacer, SimRunner, StepResult
from motus_policy.robots.aloha_sim.sim import CONTROL_PERIOD_NS, AlohaSim
from motus_policy.ros.sim_messages import camera_msg, clock_msg, pose_array_msg, trajectory_arrays
from motus_recorder import schema
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import joint_state_to_msg, msg_to_positions, time_to_ns
from motus_recorder.ros.spin import run_node

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
LIVE_PARAMETERS = ("seed", "real_time_factor")
"""Parameters that may change while running; the others are read at startup only."""
RTF_LOG_PERIOD_S = 5.0
SERVICE_WAIT_S = 10.0


class AlohaSimNode(Node):
    """Simulated bimanual ALOHA (gym-aloha / MuJoCo): cameras, joint states, reward, /clock."""

    def __init__(self, **kwargs):
        super().__init__("aloha_sim", **kwargs)
        fields = dataclasses.fields(AlohaSimNodeConfig)
        for f in fields:
            self.declare_parameter(f.name, f.default)
        self.cfg = AlohaSimNodeConfig(**{f.name: self.get_parameter(f.name).value for f in fields})
        # relative profile topics resolve in this node's namespace (-r __ns:=/robot1)
        self.profile = p = load_profile(self.cfg.profile, namespace=self.get_namespace())
        self.runner = SimRunner(AlohaSim(self.cfg.sim_config(), p), p, self.cfg.publish_images)
        self.pacer = Pacer(CONTROL_PERIOD_NS, self.cfg.real_time_factor)
        self._names = {a.name: a.joint_state_names for a in p.arms}
        ex = p.extras
        pub = self.create_publisher
        self._pub_clock = pub(Clock, p.clock_topic, RELIABLE)
        self._pub_js = {a.name: pub(JointState, a.state_topic, RELIABLE) for a in p.arms}
        self._pub_cam = {c.name: pub(Image, c.topic, qos_profile_sensor_data) for c in p.cameras}
        self._pub_reward = pub(Float64, ex["reward_topic"], RELIABLE)
        self._pub_success = pub(Bool, ex["success_topic"], RELIABLE)
        self._pub_poses = pub(PoseArray, ex["object_pose_topic"], LATCHED)
        self._pub_episode = pub(String, ex["episode_topic"], LATCHED)
        for a in p.arms:
            self.create_subscription(
                JointState, a.command_topic, lambda m, n=a.name: self._on_command(n, m), RELIABLE
            )
            self.create_subscription(
                JointTrajectory,
                a.trajectory_topic,
                lambda m, n=a.name: self._on_trajectory(n, m),
                RELIABLE,
            )
        self.create_service(Trigger, ex["reset_service"], self._on_reset)
        self.create_service(Trigger, ex["step_service"], self._on_step)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._requests: queue.Queue[dict] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._rejected = 0
        first = self._request("reset", self.cfg.seed)
        self._thread = threading.Thread(target=self._loop, name="aloha_sim_stepping", daemon=True)
        self._thread.start()
        if not first["done"].wait(60.0) or first.get("error"):
            raise RuntimeError(f"first reset failed: {first.get('error', 'timed out')}")
        cams = list(self.runner.sim.camera_names) if self.cfg.publish_images else []
        self.get_logger().info(
            f"READY aloha_sim: task={self.cfg.task} mode={self.cfg.mode} seed={self.cfg.seed} "
            f"cameras={cams}"
        )

    # -- executor thread: commands, services, parameters ------------------------------------
    def _reject(self, what: str, exc: Exception) -> None:
        self._rejected += 1
        self.get_logger().warning(
            f"rejected {what}: {exc}; holding the last valid target "
            f"({self._rejected} rejected so far)",
            throttle_duration_sec=1.0,
        )

    def _on_command(self, arm: str, msg: JointState) -> None:
        try:
            q = msg_to_positions(msg, self._names[arm])
            self.runner.command(arm, q, time_to_ns(msg.header.stamp))
        except ValueError as exc:
            return self._reject(f"{arm} JointState command", exc)
        self._wake.set()

    def _on_trajectory(self, arm: str, msg: JointTrajectory) -> None:
        try:
            self.runner.trajectory(arm, *trajectory_arrays(msg, self._names[arm]))
        except ValueError as exc:
            return self._reject(f"{arm} JointTrajectory", exc)
        self._wake.set()

    def _request(self, kind: str, seed: int | None = None) -> dict:
        req = {"kind": kind, "seed": seed, "done": threading.Event()}
        self._requests.put(req)
        self._wake.set()
        return req

    def _on_reset(self, _request, response):
        seed = int(self.get_parameter("seed").value)
        return self._answer(self._request("reset", seed), response, seed=seed)

    def _on_step(self, _request, response):
        if self.cfg.mode != "lockstep":
            response.success, response.message = False, "the step service needs mode lockstep"
            return response
        return self._answer(self._request("step"), response)

    def _answer(self, req: dict, response, **extra):
        if not req["done"].wait(SERVICE_WAIT_S) or req.get("error"):
            response.success = False
            response.message = f"{req['kind']} failed: {req.get('error', 'timed out')}"
            return response
        res: StepResult = req["result"]
        info = {**extra, "task": self.cfg.task, "sim_time_ns": res.sim_time_ns}
        info["object_poses"] = np.round(res.object_poses, 6).tolist()
        response.success, response.message = True, json.dumps(info)
        return response

    def _on_set_parameters(self, params) -> SetParametersResult:
        for prm in params:
            if prm.name not in LIVE_PARAMETERS:
                reason = f"{prm.name} is read at startup; restart the node to change it"
                return SetParametersResult(successful=False, reason=reason)
            try:
                dataclasses.replace(self.cfg, **{prm.name: prm.value})
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        for prm in params:
            if prm.name == "real_time_factor":
                self.pacer.real_time_factor = float(prm.value)
        return SetParametersResult(successful=True)

    # -- stepping thread --------------------------------------------------------------------
    def _loop(self) -> None:
        last_log = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    self._serve(self._requests.get_nowait())
                    continue
                except queue.Empty:
                    pass
                if self.cfg.mode == "free_run":
                    if self.pacer.wait():
                        self._publish(self.runner.step())
                        self.pacer.stepped()
                    if time.monotonic() - last_log > RTF_LOG_PERIOD_S:
                        last_log = time.monotonic()
                        rtf = self.pacer.achieved_rtf()
                        self.get_logger().info(
                            f"free_run: achieved real-time factor {rtf:.2f} "
                            f"(target {self.pacer.real_time_factor:.2f})"
                        )
                elif self.runner.both_arms_commanded:
                    self._publish(self.runner.step())
                else:
                    self._wake.wait(0.05)
                    self._wake.clear()
        except Exception as exc:
            if self.context.ok():
                self.get_logger().error(f"stepping thread stopped: {exc!r}")
                raise
        finally:
            self.runner.sim.close()  # frees the OpenGL context on the thread that owns it

    def _serve(self, req: dict) -> None:
        try:
            if req["kind"] == "reset":
                req["result"] = res = self.runner.reset(req["seed"])
                info = {"seed": req["seed"], "start_ns": res.sim_time_ns, "task": self.cfg.task}
                self._pub_episode.publish(String(data=json.dumps(info)))
                self.get_logger().info(f"reset: {info}")
            else:
                req["result"] = res = self.runner.step()
            self._publish(res)
        except Exception as exc:  # reported to the caller; the loop keeps running
            req["error"] = repr(exc)
        req["done"].set()

    def _publish(self, res: StepResult) -> None:
        t = res.sim_time_ns
        self._pub_clock.publish(clock_msg(t))
        for arm, sl in schema.ARM_SLICES.items():
            self._pub_js[arm].publish(
                joint_state_to_msg(self._names[arm], res.qpos[sl], t, velocity=res.qvel[sl])
            )
        self._pub_reward.publish(Float64(data=float(res.reward)))
        self._pub_success.publish(Bool(data=bool(res.success)))
        self._pub_poses.publish(pose_array_msg(res.object_poses, t))
        for name, img in res.images.items():
            enc = self.profile.camera(name).encoding
            self._pub_cam[name].publish(camera_msg(img, t, name, enc))

    def destroy_node(self) -> None:
        """Stop the stepping thread (it frees MuJoCo), then destroy the ROS entities."""
        self._stop.set()
        self._wake.set()
        if getattr(self, "_thread", None) is not None:
            self._thread.join(5.0)
        super().destroy_node()


def main(args=None) -> None:
    """Entry point: ``python -m motus_policy.ros.aloha_sim_node --ros-args -p mode:=lockstep``."""
    run_node(AlohaSimNode, args)


if __name__ == "__main__":
    main()
