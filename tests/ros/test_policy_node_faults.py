"""policy_node under faults, over real DDS (issue #14): an adversarial robot and the e-stop.

``test_adversarial_robot_never_gets_an_unsafe_command`` runs one ``policy_node`` (scripted backend
in a child process, as the Motus backend runs) against a fake robot in the test process that
follows the commands it receives and injects faults phase by phase. Every command published is
audited (finite, within the profile's limits, per-tick step within ``velocity_max`` x control
period from the previous command of that arm), every ``~/estop`` call is timed, and after each
fault the node must come back to ``running`` with good input. Each phase collects its problems
under its own name; the test fails at the end listing all of them.

The other tests pin single defects of issue #14: the e-stop during a slow inference and an
activation (2), a control tick that raises (5), the log flood of a dead camera (8) and the
instruction length limit (6, runtime side).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

pytestmark = [pytest.mark.cpu_exclusive, pytest.mark.ros, pytest.mark.timeout(240)]

HW = (8, 10)
NODE = "motus_policy"
ESTOP_BOUND_S = 0.1
"""~/estop must answer within this (issue #14, 'Done when'), measured at the caller."""
STEP_EPS = 1e-6


@dataclass
class Audit:
    """Every command received, checked against the profile (limits, finite, per-tick step)."""

    lo: np.ndarray
    hi: np.ndarray
    step_max: np.ndarray
    commands: int = 0
    unsafe: list[str] = field(default_factory=list)
    last: dict[int, np.ndarray] = field(default_factory=dict)
    phase: str = "setup"

    def check(self, arm: int, q: np.ndarray) -> None:
        sl = slice(7 * arm, 7 * arm + 7)
        self.commands += 1
        problems = []
        if q.shape != (7,):
            problems.append(f"shape {q.shape}")
        elif not np.all(np.isfinite(q)):
            problems.append(f"non-finite {q}")
        else:
            out = (q < self.lo[sl] - STEP_EPS) | (q > self.hi[sl] + STEP_EPS)
            if out.any():
                i = int(np.argmax(out))
                problems.append(
                    f"joint {7 * arm + i} = {q[i]:.4f} outside "
                    f"[{self.lo[sl][i]:.4f}, {self.hi[sl][i]:.4f}]"
                )
            prev = self.last.get(arm)
            if prev is not None:
                step = np.abs(q - prev)
                over = step > self.step_max[sl] + STEP_EPS
                if over.any():
                    i = int(np.argmax(over))
                    problems.append(
                        f"step on joint {7 * arm + i}: {prev[i]:.4f} -> {q[i]:.4f} "
                        f"({step[i]:.4f} > {self.step_max[sl][i]:.4f} per tick)"
                    )
            self.last[arm] = q
        if problems:
            self.unsafe.append(f"[{self.phase}] arm {arm}: " + "; ".join(problems))


class AdversarialRobot:
    """The profile's topics from a publisher thread, faults switchable per stream.

    The measured pose follows the last command of each arm (a position-controlled arm), plus
    ``offset``, unless ``pose_override`` replaces joints. ``cam_fault[name]``: "" | "dead" |
    "stale" | "wrong_size" | "encoding" | "truncated"; ``arm_fault[i]``: "" | "count" |
    "names" | "backwards" | "future". ``rate_mult`` multiplies every publishing rate (flood).
    """

    def __init__(self, ctx, profile):
        from rclpy.node import Node
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import String

        self.profile = profile
        self.node = Node("adversarial_robot", context=ctx)
        n = self.node
        self.cams = [c.name for c in profile.cameras]
        self.cam_pubs = [
            n.create_publisher(Image, c.topic, qos_profile_sensor_data) for c in profile.cameras
        ]
        self.arm_pubs = [n.create_publisher(JointState, a.state_topic, 10) for a in profile.arms]
        self.names = [[*a.joint_names, a.gripper.joint_name] for a in profile.arms]
        self.instr_pub = n.create_publisher(String, f"/{NODE}/instruction", 10)
        step_max = profile.velocity_max / profile.control_rate_hz
        self.audit = Audit(profile.position_min, profile.position_max, step_max)
        self.q0 = np.full(14, 0.1)
        self.cmd = [None, None]
        self.offset = np.zeros(14)
        self.pose_override: dict[int, float] = {}
        self.cam_fault = dict.fromkeys(self.cams, "")
        self.arm_fault = ["", ""]
        self.rate_mult = 1
        self.status: dict | None = None
        self.statuses = 0
        self._lock = threading.Lock()
        for i, arm in enumerate(profile.arms):
            n.create_subscription(
                JointState, arm.command_topic, lambda m, i=i: self._on_cmd(i, m), 1000
            )
        n.create_subscription(String, f"/{NODE}/status", self._on_status, 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._back_ns: list[int | None] = [None, None]

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(2)

    def measured(self) -> np.ndarray:
        with self._lock:
            q = np.concatenate([c if c is not None else self.q0[7 * i : 7 * i + 7]
                                for i, c in enumerate(self.cmd)])  # fmt: skip
        q = q + self.offset
        for j, v in self.pose_override.items():
            q[j] = v
        return q

    def _on_cmd(self, arm, msg):
        q = np.array(msg.position, dtype=np.float64)
        with self._lock:
            self.audit.check(arm, q)
            if q.shape == (7,) and np.all(np.isfinite(q)):
                self.cmd[arm] = q

    def _on_status(self, msg):
        self.status = json.loads(msg.data)
        self.statuses += 1

    def _image(self, k, now):
        from motus_recorder.ros.conversions import image_to_msg

        fault = self.cam_fault[self.cams[k]]
        hw = (HW[0] + 2, HW[1]) if fault == "wrong_size" else HW
        stamp = now - 1_000_000_000 if fault == "stale" else now
        msg = image_to_msg(np.full((*hw, 3), 40 * k, np.uint8), stamp)
        if fault == "encoding":
            msg.encoding = "mono16"
        elif fault == "truncated":
            msg.data = bytes(msg.data)[: len(msg.data) // 2]
        return msg

    def _joints(self, i, q, now):
        from motus_recorder.ros.conversions import joint_state_to_msg

        fault = self.arm_fault[i]
        names, pos = list(self.names[i]), q[7 * i : 7 * i + 7]
        stamp = now
        if fault == "count":
            names, pos = names[:5], pos[:5]
        elif fault == "names":
            names = [f"{n}_renamed" for n in names]
        elif fault == "backwards":  # each stamp 20 ms before the previous one
            self._back_ns[i] = (self._back_ns[i] or now) - 20_000_000
            stamp = self._back_ns[i]
        elif fault == "future":
            stamp = now + 2_000_000_000
        if fault != "backwards":
            self._back_ns[i] = None
        return joint_state_to_msg(names, pos, stamp)

    def _run(self):
        k = 0
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = self.node.get_clock().now().nanoseconds
            q = self.measured()
            for i, pub in enumerate(self.arm_pubs):
                pub.publish(self._joints(i, q, now))
            if k % 2 == 0:  # cameras at half the joint-state rate
                for c, pub in enumerate(self.cam_pubs):
                    if self.cam_fault[self.cams[c]] != "dead":
                        pub.publish(self._image(c, now))
            k += 1
            next_t += 0.02 / self.rate_mult
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_t = time.monotonic()


class Operator:
    """Lifecycle, parameters and timed ``~/estop`` / ``~/reset_estop`` calls (own node)."""

    def __init__(self, ctx):
        from lifecycle_msgs.srv import ChangeState
        from rcl_interfaces.srv import SetParameters
        from rclpy.node import Node
        from std_srvs.srv import Trigger

        self.node = Node("operator", context=ctx)
        n = self.node
        self.change_state = n.create_client(ChangeState, f"/{NODE}/change_state")
        self.set_params = n.create_client(SetParameters, f"/{NODE}/set_parameters")
        self.estop_client = n.create_client(Trigger, f"/{NODE}/estop")
        self.reset_client = n.create_client(Trigger, f"/{NODE}/reset_estop")
        self.estop_s: list[tuple[str, float]] = []

    def call(self, client, request, timeout_s=30.0):
        """(response or None on timeout, seconds until the answer)."""
        assert client.wait_for_service(timeout_sec=timeout_s), client.srv_name
        done = threading.Event()
        t0 = time.perf_counter()
        answered = []
        fut = client.call_async(request)
        fut.add_done_callback(lambda _: (answered.append(time.perf_counter()), done.set()))
        done.wait(timeout_s)
        if not fut.done():
            client.remove_pending_request(fut)
            return None, timeout_s
        return fut.result(), answered[0] - t0

    def transition(self, transition_id):
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request()
        req.transition.id = transition_id
        res, took = self.call(self.change_state, req)
        return res is not None and res.success, took

    def set_param(self, name, value):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        req = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        res, _ = self.call(self.set_params, req)
        return res.results[0]

    def estop(self, phase: str, timeout_s: float = 30.0):
        from std_srvs.srv import Trigger

        res, took = self.call(self.estop_client, Trigger.Request(), timeout_s)
        self.estop_s.append((phase, took))
        return res is not None and res.success

    def reset_estop(self):
        from std_srvs.srv import Trigger

        res, _ = self.call(self.reset_client, Trigger.Request())
        return res is not None and res.success


def _wait(pred, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _spawn_policy(spawn_node, *extra):
    node = spawn_node(
        "motus_policy.ros.policy_node",
        "-p", f"image_height:={HW[0]}", "-p", f"image_width:={HW[1]}",
        "-p", "backend_process:=true", "-p", "strategy:=sync", "-p", "n_action_steps:=8",
        "-p", "ramp_in_s:=0.3", "-p", "scripted.latency_s:=0.05",
        "-p", "status_period_s:=0.1", *extra,
    )  # fmt: skip
    node.wait_for("READY")
    return node


def _robot_and_operator(ros_context, spin_in_background, profile):
    """The adversarial robot (publishing) and the lifecycle operator, both spinning."""
    robot = AdversarialRobot(ros_context, profile)
    op = Operator(ros_context)
    spin_in_background(robot.node, ros_context)
    spin_in_background(op.node, ros_context)
    robot.start()
    return robot, op


def test_adversarial_robot_never_gets_an_unsafe_command(
    spawn_node, ros_context, spin_in_background
):
    from lifecycle_msgs.msg import Transition
    from std_msgs.msg import String

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    t_start = time.monotonic()
    node = _spawn_policy(spawn_node)
    robot, op = _robot_and_operator(ros_context, spin_in_background, profile)
    problems: dict[str, list[str]] = {}
    names = profile.joint_names

    def problem(phase, text):
        problems.setdefault(phase, []).append(text)

    def status():
        return robot.status or {}

    def reason():
        return str(status().get("reason"))

    def wait_running(phase, timeout_s=10.0):
        if not _wait(lambda: status().get("state") == "running", timeout_s):
            problem(phase, f"did not recover to running within {timeout_s} s; last {status()}")
            if status().get("state") == "estop":
                op.reset_estop()

    def wait_reason(phase, what, pred, timeout_s=5.0):
        if not _wait(lambda: status().get("state") in ("holding", "estop") and pred(reason()),
                     timeout_s):  # fmt: skip
            problem(phase, f"no hold naming {what} within {timeout_s} s; last {status()}")

    def estop_cycle(phase):
        if not op.estop(phase):
            problem(phase, "~/estop did not answer success")
        if not _wait(lambda: status().get("state") == "estop", 3.0):
            problem(phase, f"state is not 'estop' after ~/estop; last {status()}")
        if not op.reset_estop():
            problem(phase, "~/reset_estop did not answer success")

    def stream_phase(phase, stream, what, inject, clear, pred=None, hold_s=0.6):
        robot.audit.phase = phase
        inject()
        wait_reason(phase, what, pred or (lambda r: r.startswith(f"{stream}:")))
        time.sleep(hold_s)
        estop_cycle(phase)
        clear()
        wait_running(phase)

    ok, _ = op.transition(Transition.TRANSITION_CONFIGURE)
    assert ok, node.output()[-3000:]

    # 1. out-of-limit measured pose before activation: refuse, or hold naming the joint,
    #    and publish nothing outside the limits
    phase = "1 pose out of limits at activation"
    robot.audit.phase = phase
    robot.pose_override = {1: 10.0}  # left_shoulder, limit 1.2566
    time.sleep(0.3)
    activated, _ = op.transition(Transition.TRANSITION_ACTIVATE)
    time.sleep(1.0)
    if activated and "left_shoulder" not in reason():
        problem(phase, f"activated without a hold naming left_shoulder; last {status()}")
    robot.pose_override = {}
    if not activated:
        time.sleep(0.3)
        activated, _ = op.transition(Transition.TRANSITION_ACTIVATE)
        if not activated:
            problem(phase, "activation failed with a good pose:\n" + node.output()[-2000:])
    wait_running(phase, 15.0)
    assert status().get("state") == "running", (problems, node.output()[-3000:])

    # 2-5. joint-state faults
    for phase, arm, j, val in (("2 NaN joint", 1, 8, np.nan), ("3 Inf joint", 0, 2, np.inf)):
        stream_phase(
            phase, profile.arms[arm].name, f"{names[j]} non-finite",
            lambda j=j, val=val: robot.pose_override.__setitem__(j, val),
            lambda: robot.pose_override.clear(),
            lambda r, j=j: names[j] in r,
        )  # fmt: skip
    for phase, arm, fault in (("4 wrong joint count", 0, "count"),
                              ("5 wrong joint names", 1, "names")):  # fmt: skip
        stream_phase(
            phase, profile.arms[arm].name, f"arm {profile.arms[arm].name}",
            lambda arm=arm, fault=fault: robot.arm_fault.__setitem__(arm, fault),
            lambda arm=arm: robot.arm_fault.__setitem__(arm, ""),
        )  # fmt: skip

    # 6-10. camera faults; a dead camera must not flood the log (defect 8)
    for phase, cam, fault in (
        ("6 wrong image size", "cam_high", "wrong_size"),
        ("7 wrong image encoding", "cam_left_wrist", "encoding"),
        ("8 truncated image data", "cam_right_wrist", "truncated"),
        ("9 dead camera", "cam_high", "dead"),
        ("10 stale camera", "cam_left_wrist", "stale"),
    ):
        lines0 = node.output().count(f"holding: {cam}")
        stream_phase(
            phase, cam, cam,
            lambda cam=cam, fault=fault: robot.cam_fault.__setitem__(cam, fault),
            lambda cam=cam: robot.cam_fault.__setitem__(cam, ""),
            hold_s=1.5 if fault == "dead" else 0.6,
        )  # fmt: skip
        if fault == "dead":
            n_lines = node.output().count(f"holding: {cam}") - lines0
            if n_lines > 3:
                problem(phase, f"{n_lines} 'holding: {cam}' log lines in ~2 s (log flood)")

    # 11-12. joint-state stamps going backwards, and from the future
    stream_phase(
        "11 stamps backwards", "left", "arm left",
        lambda: robot.arm_fault.__setitem__(0, "backwards"),
        lambda: robot.arm_fault.__setitem__(0, ""),
    )  # fmt: skip
    stream_phase(
        "12 stamps in the future", "right", "arm right",
        lambda: robot.arm_fault.__setitem__(1, "future"),
        lambda: robot.arm_fault.__setitem__(1, ""),
    )  # fmt: skip

    # 13. measured joint far outside its limits while running (defect 4)
    stream_phase(
        "13 pose out of limits while running", "right", "right_shoulder",
        lambda: robot.pose_override.__setitem__(8, 5.0),
        lambda: robot.pose_override.clear(),
        lambda r: "right_shoulder" in r,
    )  # fmt: skip

    # 14. e-stop, the arm is moved by hand, reset: resume within the per-tick limit (defect 3)
    phase = "14 e-stop and reset with the arm moved"
    robot.audit.phase = phase
    if not op.estop(phase):
        problem(phase, "~/estop did not answer success")
    _wait(lambda: status().get("state") == "estop", 3.0)
    robot.offset[2] = robot.offset[9] = 0.4  # both elbows, 0.4 rad away from the last command
    time.sleep(0.5)
    if not op.reset_estop():
        problem(phase, "~/reset_estop did not answer success")
    time.sleep(0.5)
    robot.offset[:] = 0.0
    wait_running(phase)

    # 15. oversized instruction, by parameter and on ~/instruction (defect 6, runtime side)
    phase = "15 oversized instruction"
    robot.audit.phase = phase
    huge = "pick up the cube " * 6000  # ~100k characters
    res = op.set_param("instruction", huge)
    if res.successful or "max_instruction_chars" not in res.reason:
        problem(phase, f"a {len(huge)}-character instruction was not rejected clearly: {res}")
    robot.instr_pub.publish(String(data=huge))
    time.sleep(0.5)
    op.estop(phase)
    op.reset_estop()
    if len(str(status().get("instruction"))) > 4096:
        problem(phase, "the oversized instruction reached the runtime via ~/instruction")
    wait_running(phase)

    # 16. every stream at 10x its rate
    phase = "16 flood at 10x rate"
    robot.audit.phase = phase
    robot.rate_mult = 10
    time.sleep(1.0)
    estop_cycle(phase)
    time.sleep(1.0)
    robot.rate_mult = 1
    wait_running(phase)

    # 17. out-of-limit and NaN model output: hold naming the joint, then resume
    for phase, fault, what in (
        ("17 out-of-limit model output", "out_of_limit", "out of limits: left_shoulder"),
        ("18 NaN model output", "nan", "non-finite target"),
    ):
        robot.audit.phase = phase
        if not op.set_param("scripted.fault", fault).successful:
            problem(phase, f"scripted.fault={fault} refused")
        wait_reason(phase, what, lambda r, what=what: what in r)
        estop_cycle(phase)
        op.set_param("scripted.fault", "")
        wait_running(phase)

    # 19. a slow (3 s) inference in flight during deactivate + activate, e-stop probed
    #     throughout (defect 2)
    phase = "19 slow inference and activation"
    robot.audit.phase = phase
    op.set_param("scripted.latency_s", 3.0)  # reaches the child with its next request
    time.sleep(0.8)  # the next request, now slow, is in flight
    stop_probe = threading.Event()

    def probe():
        while not stop_probe.is_set():
            op.estop(phase, timeout_s=10.0)
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    time.sleep(0.3)
    ok_d, took_d = op.transition(Transition.TRANSITION_DEACTIVATE)
    ok_a, took_a = op.transition(Transition.TRANSITION_ACTIVATE)
    time.sleep(0.5)
    stop_probe.set()
    prober.join(15)
    if not (ok_d and ok_a):
        problem(phase, f"deactivate {ok_d} / activate {ok_a} failed")
    if max(took_d, took_a) > 1.0:
        problem(phase, f"deactivate took {took_d:.2f} s, activate {took_a:.2f} s (waited for "
                       "the inference in flight)")  # fmt: skip
    op.set_param("scripted.latency_s", 0.05)
    op.reset_estop()
    wait_running(phase, 15.0)

    # 20. good input again: commands flow, still nothing unsafe
    phase = "20 recovery"
    robot.audit.phase = phase
    n0 = robot.audit.commands
    time.sleep(1.0)
    if robot.audit.commands - n0 < 40:  # 2 arms x 50 Hz: 100 expected
        problem(phase, f"only {robot.audit.commands - n0} commands in 1 s after recovery")
    robot.stop()

    slow = [(p, round(t, 3)) for p, t in op.estop_s if t > ESTOP_BOUND_S]
    worst = max(t for _, t in op.estop_s)
    report = [f"{len(op.estop_s)} ~/estop calls, slowest {worst * 1e3:.0f} ms",
              f"{robot.audit.commands} commands audited, {len(robot.audit.unsafe)} unsafe",
              f"{time.monotonic() - t_start:.0f} s in all"]  # fmt: skip
    print("\n".join(report))
    msgs = [f"{k}: {v}" for k, vs in problems.items() for v in vs]
    msgs += [f"unsafe command {u}" for u in robot.audit.unsafe[:20]]
    if len(robot.audit.unsafe) > 20:
        msgs.append(f"... {len(robot.audit.unsafe) - 20} more unsafe commands")
    if slow:
        msgs.append(f"~/estop slower than {ESTOP_BOUND_S * 1e3:.0f} ms: {slow[:10]}")
    assert not msgs, "\n".join([*report, *msgs])
    assert robot.audit.commands > 500, report


def test_estop_answers_during_slow_inference_and_activation(
    spawn_node, ros_context, spin_in_background
):
    """Issue #14, defect 2: activation with a slow inference in flight in the backend process
    must neither wait for it nor keep ~/estop from answering."""
    from lifecycle_msgs.msg import Transition

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    node = _spawn_policy(spawn_node, "-p", "scripted.latency_s:=4.0")
    robot, op = _robot_and_operator(ros_context, spin_in_background, profile)
    time.sleep(0.3)
    assert op.transition(Transition.TRANSITION_CONFIGURE)[0], node.output()[-3000:]
    assert op.transition(Transition.TRANSITION_ACTIVATE)[0], node.output()[-3000:]
    time.sleep(1.0)  # the first (4 s) inference is in flight
    ok_d, took_d = op.transition(Transition.TRANSITION_DEACTIVATE)
    done = threading.Event()
    act = {}

    def activate():
        act["ok"], act["took"] = op.transition(Transition.TRANSITION_ACTIVATE)
        done.set()

    threading.Thread(target=activate, daemon=True).start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        op.estop("activation", timeout_s=10.0)
        time.sleep(0.05)
    assert done.wait(10.0)
    robot.stop()
    took = [t for _, t in op.estop_s]
    assert ok_d and act["ok"], node.output()[-3000:]
    assert act["took"] < 1.0 and took_d < 1.0, (
        f"deactivate took {took_d:.2f} s, activate {act['took']:.2f} s with an inference in flight"
    )
    assert max(took) <= ESTOP_BOUND_S, (
        f"~/estop answered in up to {max(took) * 1e3:.0f} ms during activation with a slow "
        f"inference in flight ({len(took)} calls: {[round(t, 3) for t in took]})"
    )


def test_estop_answers_during_configure_and_latches_into_activation(
    spawn_node, ros_context, spin_in_background
):
    """Issue #14, the last gap: configure loads the model on the executor thread (here a
    backend process whose load takes 3 s). ``~/estop`` must answer within the bound throughout,
    and an e-stop latched while unconfigured or configuring holds after activation until
    ``~/reset_estop``."""
    from lifecycle_msgs.msg import Transition

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    node = _spawn_policy(spawn_node, "-p", "scripted.load_s:=3.0")
    robot, op = _robot_and_operator(ros_context, spin_in_background, profile)
    assert op.estop("unconfigured"), "~/estop must succeed (latch) before configure"
    assert op.reset_estop()
    done = threading.Event()
    conf = {}

    def configure():
        conf["ok"], conf["took"] = op.transition(Transition.TRANSITION_CONFIGURE)
        done.set()

    threading.Thread(target=configure, daemon=True).start()
    assert _wait(lambda: "scripted backend: building" in node.output(), 60.0), node.output()
    t0 = time.monotonic()
    while not done.is_set() and time.monotonic() - t0 < 30.0:
        assert op.estop("configure", timeout_s=10.0)
        time.sleep(0.05)
    assert done.wait(30.0) and conf["ok"], node.output()[-3000:]
    during = [t for phase, t in op.estop_s if phase == "configure"]
    assert conf["took"] >= 2.5 and len(during) >= 10, (conf, during)
    assert max(during) <= ESTOP_BOUND_S, (
        f"~/estop answered in up to {max(during) * 1e3:.0f} ms while configure loaded the model "
        f"({len(during)} calls: {[round(t, 3) for t in during]})"
    )
    # the latch carries into activation: estop, nothing but holds, until the reset
    assert op.transition(Transition.TRANSITION_ACTIVATE)[0], node.output()[-3000:]
    assert _wait(lambda: (robot.status or {}).get("state") == "estop", 5.0), robot.status
    time.sleep(0.5)
    assert (robot.status or {}).get("state") == "estop", robot.status
    assert op.reset_estop()
    assert _wait(lambda: (robot.status or {}).get("state") == "running", 10.0), robot.status
    robot.stop()
    assert not robot.audit.unsafe, robot.audit.unsafe[:10]


def test_a_failing_control_tick_holds_and_keeps_ticking(ros_context, ros_env, spin_in_background):
    """Issue #14, defect 5: an exception in the control timer must not end spin(): the node
    holds (republishing the last command), says so on ~/status and resumes when it passes."""
    from lifecycle_msgs.msg import Transition
    from rclpy.parameter import Parameter

    from motus_policy.ros.policy_node import PolicyNode
    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    overrides = [
        Parameter("image_height", value=HW[0]),
        Parameter("image_width", value=HW[1]),
        Parameter("ramp_in_s", value=0.2),
        Parameter("status_period_s", value=0.1),
    ]
    policy = PolicyNode(context=ros_context, parameter_overrides=overrides)
    ex = spin_in_background(policy, ros_context)
    robot, op = _robot_and_operator(ros_context, spin_in_background, profile)
    time.sleep(0.3)
    assert op.transition(Transition.TRANSITION_CONFIGURE)[0]
    assert op.transition(Transition.TRANSITION_ACTIVATE)[0]
    assert _wait(lambda: (robot.status or {}).get("state") == "running", 10.0), robot.status

    tick = policy.runtime.tick

    def boom(now_ns):
        raise RuntimeError("injected tick failure")

    policy.runtime.tick = boom
    n0 = robot.audit.commands
    time.sleep(1.0)
    held = robot.audit.commands - n0
    st = robot.status or {}
    policy.runtime.tick = tick
    recovered = _wait(lambda: (robot.status or {}).get("state") == "running", 10.0)
    robot.stop()
    ex.remove_node(policy)
    policy._release()
    policy.destroy_node()
    assert held >= 20, f"only {held} commands in 1 s of failing ticks: the control loop died"
    assert "injected tick failure" in str(st.get("tick_error")), st
    assert st.get("state") == "holding" and st.get("tick_errors", 0) >= 10, st
    assert recovered, f"no recovery after the tick passes again: {robot.status}"
    assert not robot.audit.unsafe, robot.audit.unsafe[:5]


def test_dead_camera_logs_once_and_long_instructions_are_rejected(
    spawn_node, ros_context, spin_in_background
):
    """Issue #14, defect 8 (one log line per hold state, not ~50/s) and the instruction limit
    (defect 6, runtime side: parameter and ~/instruction)."""
    from lifecycle_msgs.msg import Transition
    from std_msgs.msg import String

    from motus_recorder.profile import load_profile

    profile = load_profile("aloha_sim")
    node = _spawn_policy(spawn_node, "-p", "max_instruction_chars:=100")
    robot, op = _robot_and_operator(ros_context, spin_in_background, profile)
    time.sleep(0.3)
    assert op.transition(Transition.TRANSITION_CONFIGURE)[0], node.output()[-3000:]
    assert op.transition(Transition.TRANSITION_ACTIVATE)[0], node.output()[-3000:]
    assert _wait(lambda: (robot.status or {}).get("state") == "running", 10.0), robot.status

    robot.cam_fault["cam_high"] = "dead"
    assert _wait(lambda: "cam_high: stale" in str((robot.status or {}).get("reason")), 5.0)
    time.sleep(2.0)
    robot.cam_fault["cam_high"] = ""
    assert _wait(lambda: (robot.status or {}).get("state") == "running", 10.0), robot.status
    lines = [ln for ln in node.output().splitlines() if "cam_high: stale" in ln]
    assert 1 <= len(lines) <= 2, f"{len(lines)} log lines for one dead camera:\n" + "\n".join(
        lines[:5]
    )

    ok = op.set_param("instruction", "x" * 100)
    assert ok.successful, ok.reason
    res = op.set_param("instruction", "y" * 101)
    assert not res.successful
    assert "at most 100 characters (max_instruction_chars), got 101" in res.reason, res.reason
    robot.instr_pub.publish(String(data="z" * 5000))
    node.wait_for("~/instruction rejected: instruction: at most 100 characters", 10.0)
    time.sleep(0.3)
    assert (robot.status or {}).get("instruction") == "x" * 100, robot.status
    robot.stop()
