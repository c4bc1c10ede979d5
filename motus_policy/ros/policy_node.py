"""``policy_node``: the Motus policy as a ROS 2 lifecycle node around :class:`PolicyRuntime`.

Lifecycle transitions (drive them with ``/<node>/change_state``, lifecycle_msgs):

* configure — load the profile, build the backend (parameter ``backend``: scripted | hold |
  motus; in a child process when ``backend_process`` says so, see
  :mod:`motus_policy.backends.remote`) and load the model (progress logged, also the child's),
  create subscriptions, publishers and the status timer. A missing backend or bad parameter
  fails the transition with the reason logged.
* activate — start the inference worker and the control loop; commands ramp in from the
  current joint state (nothing is published until every input stream is usable).
* deactivate — stop inference and the control loop, then publish one hold command.
* cleanup / shutdown — destroy the entities and free the backend (the child process exits).

Topics: subscribes to the profile's camera topics (sensor_msgs/Image, or CompressedImage for a
camera with ``transport: compressed``), per-arm ``state_topic`` (each arm's joint names looked up
in its own messages) and ``~/instruction`` (std_msgs/String); publishes per arm a JointState
command stream at the control rate on ``command_topic`` or JointTrajectory messages on
``trajectory_topic`` (profile ``command_interface``, or parameter ``output_interface``; with
``joint_trajectory_controller`` the trajectory names the 6 arm joints and the gripper streams as
Float64MultiArray on ``gripper_command_topic``, see :mod:`motus_policy.ros.policy_io`),
``~/imagined_frames``, ``~/status`` (JSON) and ``/diagnostics``. Relative profile topics resolve
in the node's namespace (``-r __ns:=/robot1``).
Services ``~/estop`` and ``~/reset_estop`` (std_srvs/Trigger),
answered on a thread of their own (:mod:`motus_policy.ros.estop_server`): an e-stop latches in
every state, also before or during configure, and only ``~/reset_estop`` clears it.

Threads:

* executor thread (one SingleThreadedExecutor, docs/platform.md §1.4): subscriptions (images, joint
  states, instruction), services, parameter changes, lifecycle transitions, the status timer,
  and with ``control_loop:=timer`` (the default) the control tick — runtime tick, gate,
  command publish — as a timer at the control rate;
* ``motus_control`` (only with ``control_loop:=thread``): the control tick on its own thread,
  woken at absolute deadlines on the node clock
  (:class:`~motus_policy.runtime.control_loop.ControlLoop`), independent of slow executor
  callbacks.
  Measured with ``benchmarks.node_timing`` on the 2-core dev box it was *not* better than the timer
  (p99 period error 1.2-1.6 vs 0.2-0.3 ms with a GIL-holding backend process, both SCHED_FIFO):
  waking a second Python thread costs a GIL hand-off with the executor thread;
* ``motus_estop``: ``~/estop`` and ``~/reset_estop`` (a hidden node with its own executor), so
  they answer while the executor thread loads a model in configure;
* ``motus_inference``: the runtime's worker thread, calling the backend (which, with
  ``backend_process``, only waits on the child process's socket: the model never holds this
  process's GIL).

With ``control_priority`` > 0 the node's threads but inference run SCHED_FIFO, so other
processes (a training job, the backend process) cannot delay a control tick; this, not the
choice of timer or thread, is what brought the p99 period error under 2 ms on the shared box.

A re-entrant lock serialises the control tick with every other call into the runtime
(parameter changes, e-stop, status, activate / deactivate), which matters with the thread.
Time is the node clock (``use_sim_time`` works: timer and thread both run on the ROS clock).

Nothing on the executor thread waits for an inference (issue #14, defect 2): the backend reset at
activation runs on the worker thread, between inferences; cleanup does not join an inference in
flight (a backend process is terminated under it). With the e-stop on its own thread, ``~/estop``
answers within a control period or so in every state, also during a seconds-long inference and
while configure loads the model.

Failures and logging: a control tick that raises is logged (the first time, then at most every
:data:`REMINDER_S`), publishes a hold and keeps ticking; ``~/status`` carries it in
``tick_error`` / ``tick_errors`` (issue #14, defect 5). A hold is logged once when its reason
changes (numbers, such as a stream's age, do not count as a change), then reminded every
:data:`REMINDER_S` while it lasts (issue #14, defect 8).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import Node as LifecycleNode
from rclpy.lifecycle import State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from rclpy.subscription import Subscription
from rclpy.time import Time
from rclpy.timer import Timer
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from motus_policy.backends import make_backend
from motus_policy.backends.remote import RemoteBackend
from motus_policy.ros import policy_io, policy_params
from motus_policy.ros.estop_server import EStopServer
from motus_policy.ros.params import dataclass_from_params
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.runtime.control_loop import ControlLoop, TimingStats
from motus_policy.runtime.policy_runtime import GIL_SWITCH_INTERVAL_S, PolicyRuntime
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import image_to_msg, image_type
from motus_recorder.ros.spin import run_node

REMINDER_S = 5.0
"""Period of the throttled reminder while a hold or a failing tick lasts [s] (rclpy
``throttle_duration_sec``)."""
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def reason_key(reason: str | None) -> str | None:
    """A hold reason with its numbers replaced by ``#``: what counts as a change of state.

    "cam_high: stale: 0.53 s > 0.50 s" and the same with 0.55 s are one state (one log line);
    "cam_high: stale ..." and "right: non-finite ..." are two. None stays None.
    """
    return None if reason is None else _NUMBER.sub("#", reason)


class PolicyNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs):
        super().__init__("motus_policy", **kwargs)
        policy_params.declare(self)
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self.runtime: PolicyRuntime | None = None
        self._entities: list = []
        self._gripper_pubs: list = []
        self._timer = None
        self._loop: ControlLoop | None = None
        self._active = False
        self._lock = threading.RLock()
        self._backend = None
        self._in_child = False
        self._loop_kind = "timer"
        self.timing: TimingStats | None = None
        self._tick_error: str | None = None
        self._tick_errors = 0
        self._last_reason: str | None = None
        self._last_reason_key: str | None = None
        self._estop_reason: str | None = None  # latched at node level: survives cleanup
        self._estop_server = EStopServer(self, self._on_estop, self._on_reset_estop)
        if self.get_parameter("autostart").value:
            # Launch-file convenience (nav2 lifecycle-manager style): configure + activate once
            # the executor runs. Without it the node waits for ~/change_state.
            self._autostart_timer = self.create_timer(0.1, self._autostart)
        self.get_logger().info("READY (unconfigured; configure via ~/change_state)")

    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error("autostart: configure failed; staying unconfigured")
            return
        if self.trigger_activate() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error("autostart: activate failed; staying inactive")

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    # -- lifecycle -----------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        """Build and load the backend, create the I/O entities."""
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - report any failure as a failed transition
            self.get_logger().error(f"configure failed: {type(exc).__name__}: {exc}")
            self._destroy_entities()
            self._close_backend()
            self.runtime = None
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("CONFIGURED")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        p = self.get_parameter
        policy_params.check_instruction(p("instruction").value, p("max_instruction_chars").value)
        # relative profile topics resolve in this node's namespace (-r __ns:=/robot1)
        self.profile = load_profile(p("profile").value, namespace=self.get_namespace())
        kind = p("backend").value
        kwargs = policy_params.backend_kwargs(self, kind, self.profile)
        self._loop_kind = policy_params.control_loop(self)
        self._in_child = policy_params.backend_in_process(self, kind)
        if self._in_child:
            self.get_logger().info(f"starting backend {kind!r} in a child process ...")
            self._backend = RemoteBackend(
                kind, kwargs, nice=p("backend_nice").value, threads=p("backend_threads").value
            )
            self.get_logger().info(f"backend process pid {self._backend.pid}")
        else:
            self._backend = make_backend(kind, **kwargs)
        backend = self._backend
        config = dataclass_from_params(self, PolicyRuntimeConfig)
        hw = (p("image_height").value, p("image_width").value)
        runtime = PolicyRuntime(
            self.profile, config, backend, self._now_ns, hw if all(hw) else None
        )
        with self._lock:  # an e-stop latched before (or while) configuring carries over
            self.runtime = runtime
            if self._estop_reason is not None:
                runtime.estop(self._estop_reason)
        self.get_logger().info(f"loading backend {kind!r} ...")
        self.runtime.load(progress=lambda line: self.get_logger().info(f"load: {line}"))
        self._create_entities(config)

    def _create_entities(self, config: PolicyRuntimeConfig) -> None:
        prof, e, qos = self.profile, self._entities, qos_profile_sensor_data
        asm = lambda: self.runtime.assembler  # noqa: E731
        for cam in prof.cameras:  # Image or CompressedImage (profile camera transport)
            cb = policy_io.image_callback(asm, cam.name)
            e.append(self.create_subscription(image_type(cam.compressed), cam.topic, cb, qos))
        for arm, names, _ in policy_io.arm_slices(prof):
            cb = policy_io.joints_callback(asm, arm.name, names)
            e.append(self.create_subscription(JointState, arm.state_topic, cb, qos))
        e.append(self.create_subscription(String, "~/instruction", self._on_instruction, 10))
        iface = config.output_interface
        self.interface = prof.command_interface if iface == "profile" else iface
        typ, attr = (JointState, "command_topic")
        if self.interface != "joint_state":  # joint_trajectory(_controller): JTC layouts
            typ, attr = (JointTrajectory, "trajectory_topic")
        missing = [a.name for a in prof.arms if not getattr(a, attr)]
        if missing:
            raise ValueError(
                f"output interface {self.interface}: profile {prof.name!r} has no {attr} for "
                f"arms {missing}"
            )
        self._cmd_pubs = [self.create_publisher(typ, getattr(a, attr), 10) for a in prof.arms]
        self._gripper_pubs = []  # joint_trajectory_controller: gripper on its own topic
        if self.interface == "joint_trajectory_controller":
            self._gripper_pubs = [
                self.create_publisher(Float64MultiArray, a.gripper_command_topic, 10)
                for a in prof.arms
            ]
            e += self._gripper_pubs
        self._frames_pub = self.create_publisher(Image, "~/imagined_frames", 10)
        self._status_pub = self.create_publisher(String, "~/status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        e += [*self._cmd_pubs, self._frames_pub, self._status_pub, self._diag_pub]
        e.append(
            self.create_timer(self.get_parameter("status_period_s").value, self._publish_status)
        )

    def _destroy_entities(self) -> None:
        for ent in self._entities:
            if isinstance(ent, Timer):
                self.destroy_timer(ent)
            elif isinstance(ent, Subscription):
                self.destroy_subscription(ent)
            else:
                self.destroy_publisher(ent)
        self._entities = []

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        """Start inference and the control loop (ramp-in from the current pose)."""
        try:
            with self._lock:
                self.runtime.activate(self._now_ns())
                self._active = True
        except RuntimeError as exc:
            self.get_logger().error(f"activate failed: {exc}")
            return TransitionCallbackReturn.FAILURE
        rate = self.runtime.control_rate_hz
        period_ns = int(round(1e9 / rate))
        self.timing = TimingStats(period_ns)
        self._rt_priority()
        if self._loop_kind == "thread":
            self._loop = ControlLoop(
                period_ns, self._now_ns, self._sleep_until, self._step, on_start=self._rt_self
            )
            self._loop.start()
        else:
            self._timer = self.create_timer(1.0 / rate, self._control_tick)
        self.get_logger().info(f"ACTIVE at {rate:.1f} Hz (control loop: {self._loop_kind})")
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        """Stop inference and the timer; publish one hold command."""
        self._stop_control()
        self.get_logger().info("INACTIVE (holding)")
        return TransitionCallbackReturn.SUCCESS

    def _stop_control(self) -> None:
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._loop is not None:
            if not self._loop.stop(timeout_s=2.0):
                self.get_logger().warning("control thread did not stop within 2 s")
            self._loop = None
        with self._lock:
            if self._active:
                self._active = False
                self.runtime.deactivate()
                if self.context.ok():  # not after Ctrl-C: the publishers are gone
                    hold = self.runtime.gate.hold("deactivated").command
                    try:
                        self._publish_command(hold, held=True)
                    except RuntimeError:  # rclpy's RCLError: Ctrl-C shut the context down
                        if self.context.ok():  # since the check above; anything else is real
                            raise

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        """Free the backend and the entities."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        """Same as cleanup, from any state."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self.runtime is not None:
            self._stop_control()
            self.runtime.close(wait_s=0.0)  # never wait for an inference in flight
            self.runtime = None
        self._destroy_entities()
        self._close_backend()

    def _close_backend(self) -> None:
        close = getattr(self._backend, "close", None)  # a RemoteBackend: stop the child
        if close is not None:
            close()
        self._backend = None

    # -- inputs --------------------------------------------------------------------------------
    def _on_instruction(self, msg: String) -> None:
        result = self.set_parameters([Parameter("instruction", value=msg.data)])[0]
        if not result.successful:
            self.get_logger().error(
                f"~/instruction rejected: {result.reason}", throttle_duration_sec=1.0
            )

    # -- control -------------------------------------------------------------------------------
    def _rt_priority(self, tids: list[int] | None = None) -> None:
        """SCHED_FIFO ``control_priority`` for this process's threads but inference; best effort.

        Every thread of the node process (executor, DDS; the control thread sets itself in
        :meth:`_rt_self`) gets SCHED_FIFO, so the training job or the backend process cannot
        delay a control wake-up or the thread holding the GIL. The in-process inference thread
        stays SCHED_OTHER (a model at real-time priority would starve the rest of the machine).
        With SCHED_RESET_ON_FORK, threads and processes started later by these threads (a new
        inference worker, a backend process) start SCHED_OTHER.
        """
        prio = self.get_parameter("control_priority").value
        if prio <= 0:
            return
        policy = os.SCHED_FIFO | getattr(os, "SCHED_RESET_ON_FORK", 0)
        worker = self.runtime.worker._thread
        skip = {worker.native_id} if worker is not None else set()
        try:
            if tids is None:
                tids = sorted(int(t) for t in os.listdir("/proc/self/task"))
            for tid in tids:
                if tid in skip:
                    os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                else:
                    with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                        os.sched_setscheduler(tid, policy, os.sched_param(prio))
            if len(tids) > 1:
                self.get_logger().info(f"SCHED_FIFO priority {prio} (inference thread excluded)")
        except (OSError, AttributeError, ValueError) as exc:
            self.get_logger().warning(
                f"control_priority {prio}: could not switch to SCHED_FIFO ({exc}); "
                "running with normal scheduling (needs CAP_SYS_NICE or an rtprio limit)"
            )

    def _rt_self(self) -> None:
        """``control_priority`` for the calling (control) thread."""
        self._rt_priority([threading.get_native_id()])

    def _sleep_until(self, deadline_ns: int) -> None:
        """Sleep on the node clock (sim time too) until ``deadline_ns`` (control thread)."""
        clock = self.get_clock()
        try:
            clock.sleep_until(Time(nanoseconds=deadline_ns, clock_type=clock.clock_type),
                              self.context)  # fmt: skip
        except Exception:  # noqa: BLE001 - the context is shutting down: end the loop
            if self._loop is not None:
                self._loop.stop()

    def _control_tick(self) -> None:
        """Timer callback (``control_loop:=timer``)."""
        self._step(self._now_ns())

    def _step(self, now: int) -> None:
        """One control tick at ``now`` (control thread, or executor thread with the timer)."""
        with self._lock:
            if not self._active or self.runtime is None:
                return
            try:
                self._control_step(now)
            except Exception as exc:  # noqa: BLE001 - keep ticking (the gate holds), but say it
                self._tick_failed(f"control tick failed: {type(exc).__name__}: {exc}", now)
                return
            if self._tick_error is not None:
                self.get_logger().info(f"control tick recovered after: {self._tick_error}")
                self._tick_error = None

    def _tick_failed(self, msg: str, now: int) -> None:
        """Log (first time, then throttled), hold the last safe command, keep the timer alive.

        Raising from a timer callback would end ``spin()`` and with it the node (issue #14,
        defect 5); with the control thread it would end the loop.
        """
        self._tick_errors += 1
        log = self.get_logger()
        if msg != self._tick_error:
            self._tick_error = msg
            log.error(msg)
        else:
            log.error(f"still failing: {msg}", throttle_duration_sec=REMINDER_S)
        try:
            self._publish_command(self.runtime.gate.hold(msg).command, True, now)
        except Exception as exc:  # noqa: BLE001 - nothing safe to publish: publish nothing
            log.error(
                f"hold after a failed tick failed too: {type(exc).__name__}: {exc}",
                throttle_duration_sec=REMINDER_S,
            )

    def _control_step(self, now: int) -> None:
        res = self.runtime.tick(now)
        if res.plan_obs_stamp_ns is not None and res.command is not None and not res.held:
            self.timing.first_action(res.plan_obs_stamp_ns, now)
        if self.interface == "joint_state":
            self._publish_command(res.command, res.held, now)
            if res.command is not None:
                self.timing.command(now)
        elif res.held and reason_key(res.reason) != self._last_reason_key:
            self._publish_command(res.command, True, now)
        elif res.new_plan:
            stamps, points = self.runtime.trajectory(now)
            if stamps is not None:
                for pub, msg in zip(
                    self._cmd_pubs,
                    policy_io.trajectory_msgs(self.profile, stamps, points, self._arm_only),
                    strict=True,
                ):
                    pub.publish(msg)
        if self._gripper_pubs and res.command is not None and not res.held:
            self._publish_gripper(res.command)  # position stream at the control rate
        for stamp, frame in self.runtime.pop_frames():
            self._frames_pub.publish(image_to_msg(frame, stamp, "imagined"))
        key = reason_key(res.reason)
        self._last_reason = res.reason
        if key != self._last_reason_key:  # one line per state change (issue #14, defect 8)
            self._last_reason_key = key
            if res.held:
                self.get_logger().warning(f"holding: {res.reason}")
            self._publish_status()
        elif res.held:
            self.get_logger().warning(
                f"still holding: {res.reason}", throttle_duration_sec=REMINDER_S
            )

    def _publish_command(self, q, held: bool, now: int | None = None) -> None:
        if q is None:
            return
        now = self._now_ns() if now is None else now
        if self.interface == "joint_state":
            msgs = policy_io.joint_command_msgs(self.profile, q, now)
        else:  # a single point one control period ahead: hold in place
            t = now + int(1e9 / self.runtime.control_rate_hz)
            msgs = policy_io.trajectory_msgs(self.profile, [t], q[None], self._arm_only)
            self._publish_gripper(q)
        for pub, msg in zip(self._cmd_pubs, msgs, strict=True):
            pub.publish(msg)

    @property
    def _arm_only(self) -> bool:
        """Trajectories name the 6 arm joints only (ros2_control layout)."""
        return self.interface == "joint_trajectory_controller"

    def _publish_gripper(self, q) -> None:
        """The grippers' positions on their own topics (joint_trajectory_controller layout)."""
        for pub, msg in zip(
            self._gripper_pubs, policy_io.gripper_command_msgs(self.profile, q), strict=False
        ):
            pub.publish(msg)

    def _publish_status(self) -> None:
        if self.runtime is None:
            return
        now = self._now_ns()
        with self._lock:
            st = self.runtime.status(now)
            st["tick_error"], st["tick_errors"] = self._tick_error, self._tick_errors
            if self._tick_error is not None and st["state"] != "estop":
                st["state"], st["reason"] = "holding", self._tick_error
            if self.timing is not None:
                st["timing"] = self.timing.summary() | {
                    "control_loop": self._loop_kind,
                    "backend_process": self._in_child,
                    "skipped_deadlines": 0 if self._loop is None else self._loop.skipped,
                }
        self._status_pub.publish(policy_io.status_msg(st))
        self._diag_pub.publish(policy_io.diagnostics_msg(self.get_name(), st, now))

    # -- parameters and services ---------------------------------------------------------------
    def _validate_params(self, params) -> SetParametersResult:
        limit = self.get_parameter("max_instruction_chars").value
        ok, reason = policy_params.validate(self.runtime, self._config_from_params, params, limit)
        return SetParametersResult(successful=ok, reason=reason)

    def _config_from_params(self) -> PolicyRuntimeConfig:
        return dataclass_from_params(self, PolicyRuntimeConfig)

    def _apply_params(self, params) -> None:
        if self.runtime is not None:
            with self._lock:
                policy_params.apply(self.runtime, params)

    def _on_estop(self) -> tuple[bool, str]:
        """``~/estop``: latch the e-stop in every state, also unconfigured or configuring.

        Runs on the ``motus_estop`` thread; the latch survives cleanup and is cleared only by
        ``~/reset_estop``.
        """
        with self._lock:
            self._estop_reason = "~/estop service"
            if self.runtime is not None:
                self.runtime.estop(self._estop_reason)
                return True, "e-stop latched"
        return True, "e-stop latched (node not configured: it will hold until ~/reset_estop)"

    def _on_reset_estop(self) -> tuple[bool, str]:
        """``~/reset_estop``: clear the latch (on the ``motus_estop`` thread).

        When running, control resumes by ramping from the last published command.
        """
        with self._lock:
            self._estop_reason = None
            if self.runtime is not None:
                self.runtime.reset_estop(self._now_ns())
        return True, "e-stop cleared"

    def destroy_node(self) -> None:
        """Stop the e-stop thread and its hidden node, then destroy this node."""
        self._estop_server.close()
        super().destroy_node()


def main(args=None) -> None:
    """Run the node on a SingleThreadedExecutor."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)  # control thread vs inference thread
    # _release stops the control thread and the backend process
    run_node(PolicyNode, args, on_exit=lambda node: node._release())


if __name__ == "__main__":
    main()
