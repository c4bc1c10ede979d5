"""ROS 2 node publishing the profile's RealSense colour cameras.

Per camera (selected by serial = profile ``cameras[].source``): sensor_msgs/Image (rgb8) on the
profile topic and sensor_msgs/CameraInfo on the sibling ``camera_info`` topic
(``/camera_f/color/image_raw`` -> ``/camera_f/color/camera_info``, the realsense-ros layout),
stamped with the device time mapped to the host clock (motus_policy/robots/realsense/driver.py).
Camera health goes to ``/diagnostics`` (diagnostic_msgs/DiagnosticArray) every
``diagnostics_period_s``: OK while streaming, ERROR with the reason and retry time otherwise.

``fake_cameras:=true`` serves every camera from librealsense software devices with a moving test
pattern (motus_policy/robots/realsense/fake.py), for tests and demos without hardware.
Publishers are RELIABLE depth 5, which matches both reliable and best-effort subscribers; with the
shipped Fast DDS SHM profile raw 640x480 images cross processes without drops
(docs/platform.md §1.4).

Threads: one SingleThreadedExecutor thread polls every camera from a timer (docs/platform.md §1.4).
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from motus_policy.robots.realsense.driver import (
    FRAME_TIMEOUT_S,
    RETRY_INITIAL_S,
    RETRY_MAX_S,
    PipelineStream,
    RealSenseCamera,
    RealSenseCameraConfig,
)
from motus_policy.robots.realsense.fake import SoftwareCameraRig
from motus_policy.ros.params import POSITIVE, number_descriptor
from motus_recorder.profile import load_profile
from motus_recorder.ros.conversions import image_to_msg, ns_to_time
from motus_recorder.ros.spin import run_node

QOS_DEPTH = 5


def camera_info_topic(image_topic: str) -> str:
    """``.../image_raw`` -> ``.../camera_info`` (sibling topic)."""
    return image_topic.rsplit("/", 1)[0] + "/camera_info"


def camera_info_msg(intr, frame_id: str) -> CameraInfo:
    """``rs.intrinsics`` -> sensor_msgs/CameraInfo (plumb_bob, unrectified: R = I, P = [K|0])."""
    msg = CameraInfo()
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(intr.width), int(intr.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [float(c) for c in intr.coeffs]
    fx, fy, cx, cy = float(intr.fx), float(intr.fy), float(intr.ppx), float(intr.ppy)
    msg.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


class RealSenseCameraNode(Node):
    """Thin ROS wrapper: one :class:`RealSenseCamera` per profile camera."""

    def __init__(self) -> None:
        super().__init__("realsense_camera")
        scalars = {
            "profile": "aloha_agilex_2",
            "fake_cameras": False,
            "poll_rate_hz": 100.0,
            "diagnostics_period_s": 1.0,
            "frame_timeout_s": FRAME_TIMEOUT_S,
            "retry_initial_s": RETRY_INITIAL_S,
            "retry_max_s": RETRY_MAX_S,
        }
        # numeric parameters carry RealSenseCameraConfig's bounds (> 0, driver.py) as ranges
        ranges = {
            n: number_descriptor(text, POSITIVE)
            for n, text in (
                ("poll_rate_hz", "how often every camera is polled [Hz]"),
                ("diagnostics_period_s", "period of /diagnostics [s]"),
                ("frame_timeout_s", "no frame for this long = camera lost [s]"),
                ("retry_initial_s", "first reconnect delay [s] (doubles up to retry_max_s)"),
                ("retry_max_s", "longest reconnect delay [s]"),
            )
        }
        params = [self.declare_parameter(n, v, ranges.get(n)) for n, v in scalars.items()]
        get = {p.name: p.value for p in params}
        profile = load_profile(get["profile"], namespace=self.get_namespace())
        # declared with the profile's cameras as the value (not by type only), so GetParameters
        # and `ros2 param dump` show which cameras run
        names = list(self.declare_parameter("cameras", list(profile.camera_names)).value)
        self.rig: SoftwareCameraRig | None = None
        opener = PipelineStream
        if get["fake_cameras"]:
            self.rig = opener = SoftwareCameraRig()
        self.cams = []
        for name in names:
            spec = profile.camera(name)
            cfg = RealSenseCameraConfig(
                name=name,
                serial=spec.source,
                width=spec.width,
                height=spec.height,
                fps=spec.rate_hz,
                frame_timeout_s=get["frame_timeout_s"],
                retry_initial_s=get["retry_initial_s"],
                retry_max_s=get["retry_max_s"],
            )
            if self.rig is not None:
                self.rig.add(spec.source, spec.width, spec.height, spec.rate_hz)
            cam = RealSenseCamera(cfg, opener=opener, clock=self._now_ns)
            image_pub = self.create_publisher(Image, spec.topic, QOS_DEPTH)
            info_pub = self.create_publisher(CameraInfo, camera_info_topic(spec.topic), QOS_DEPTH)
            self.cams.append((cam, image_pub, info_pub, f"{name}_color_optical_frame"))
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        if self.rig is not None:
            self.rig.start_autoplay()
        self.create_timer(1.0 / get["poll_rate_hz"], self._on_poll)
        self.create_timer(get["diagnostics_period_s"], self._on_diagnostics)
        self._ready_logged = False
        self._delivered: set[str] = set()  # cameras that delivered at least one frame
        self.get_logger().info(
            f"started realsense cameras {names} ({'fake' if self.rig else 'hardware'}); "
            "ready once each has delivered a frame"
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_poll(self) -> None:
        self._poll_cameras()
        if not self._ready_logged and len(self._delivered) == len(self.cams):
            self._ready_logged = True  # READY means streaming, not merely started
            self.get_logger().info(f"READY realsense cameras {sorted(self._delivered)}")

    def _poll_cameras(self) -> None:
        for cam, image_pub, info_pub, frame_id in self.cams:
            was_connected = cam.status.connected
            try:
                frame = cam.poll()
            except ValueError as e:  # wrong size/format: misconfiguration, say so loudly
                self.get_logger().error(str(e), throttle_duration_sec=5.0)
                continue
            if cam.status.connected != was_connected:
                log = self.get_logger().info if cam.status.connected else self.get_logger().error
                log(f"{cam.config.name}: {cam.status.message}")
            if frame is None:
                continue
            self._delivered.add(cam.config.name)
            image_pub.publish(image_to_msg(frame.image, frame.stamp_ns, frame_id))
            info = camera_info_msg(cam.intrinsics, frame_id)
            info.header.stamp = ns_to_time(frame.stamp_ns)
            info_pub.publish(info)

    def _on_diagnostics(self) -> None:
        msg = DiagnosticArray()
        msg.header.stamp = self.get_clock().now().to_msg()
        for cam, *_ in self.cams:
            st = cam.status
            msg.status.append(
                DiagnosticStatus(
                    level=DiagnosticStatus.OK if st.connected else DiagnosticStatus.ERROR,
                    name=f"realsense/{cam.config.name}",
                    message=st.message,
                    hardware_id=cam.config.serial,
                    values=[KeyValue(key="consecutive_failures", value=str(st.failures))],
                )
            )
        self.diag_pub.publish(msg)

    def destroy_node(self) -> None:
        """Stop the fake cameras and release every device, then destroy the node."""
        if self.rig is not None:
            self.rig.stop()
        for cam, *_ in self.cams:
            try:
                cam.close()
            except RuntimeError as e:
                self.get_logger().warn(f"{cam.config.name}: close failed: {e}")
        super().destroy_node()


def main(args=None) -> None:
    """Entry point ``realsense_camera_node``."""
    run_node(RealSenseCameraNode, args)


if __name__ == "__main__":
    main()
