"""Optical flow on real rendered MuJoCo frames and the flow -> RGB colour coding (issue #17)."""

from __future__ import annotations

import numpy as np
import pytest

from motus_policy.latent_action.flow import (
    DISFlow,
    FlowConfig,
    FlowImages,
    build_flow,
    flow_to_rgb,
)


@pytest.fixture(scope="module")
def cube_frames():
    """Top camera (120 x 160) before and after the cube moves 2 cm along +x; arms still."""
    from motus_policy.robots.aloha_sim.sim import AlohaSim, AlohaSimConfig
    from motus_recorder.profile import load_profile

    sim = AlohaSim(
        AlohaSimConfig(image_height=120, image_width=160, cameras=("cam_high",)),
        load_profile("aloha_sim"),
    )
    try:
        sim.reset(0)
        before = sim.render()["cam_high"]
        sim.physics.data.qpos[16] += 0.02  # box x (AlohaSim.object_poses: qpos[16:23])
        sim.physics.forward()
        after = sim.render()["cam_high"]
    finally:
        sim.close()
    return before, after


def test_dis_flow_is_nonzero_where_the_cube_moved_and_zero_elsewhere(cube_frames):
    before, after = cube_frames
    flow = DISFlow("medium")(before, after)
    assert flow.shape == (120, 160, 2) and flow.dtype == np.float32
    mag = np.linalg.norm(flow, axis=-1)
    changed = np.abs(before.astype(int) - after.astype(int)).sum(-1) > 30
    assert 4 <= changed.sum() < 0.05 * changed.size  # the cube is a small blob in this view
    ys, xs = np.nonzero(changed)
    far = np.ones_like(changed)  # pixels well away from the cube's old and new place
    far[max(ys.min() - 15, 0) : ys.max() + 16, max(xs.min() - 15, 0) : xs.max() + 16] = False
    assert np.median(mag[changed]) > 0.5, np.median(mag[changed])
    assert np.median(mag[far]) < 0.05 and np.percentile(mag[far], 99) < 0.5
    # the motion is one direction: flow vectors on the cube agree with each other
    mean_dir = flow[changed].mean(axis=0)
    assert np.linalg.norm(mean_dir) > 0.3


def test_flow_images_resize_and_colour_the_motion(cube_frames):
    before, after = cube_frames
    imgs = FlowImages(FlowConfig(image_hw=(64, 64), output_hw=(32, 32))).images([before, after])
    assert imgs.shape == (1, 32, 32, 3) and imgs.dtype == np.uint8
    white = (imgs[0] == 255).all(-1)
    assert white.mean() > 0.8  # no motion: white (Middlebury coding)
    assert (~white).any()  # the cube's motion is coloured


def test_flow_to_rgb_is_the_middlebury_style_wheel_with_clipping():
    flow = np.zeros((2, 3, 2), np.float32)
    flow[0, 1] = (10.0, 0.0)  # right, at the max: saturated red (hue 0)
    flow[0, 2] = (100.0, 0.0)  # right, beyond: clipped to the same colour
    flow[1, 0] = (0.0, 5.0)  # down (image y), half the max: half-saturated hue 90 deg
    rgb = flow_to_rgb(flow, max_magnitude_px=10.0)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (255, 255, 255)
    assert tuple(rgb[0, 1]) == (255, 0, 0) and tuple(rgb[0, 2]) == (255, 0, 0)
    r, g, b = (int(v) for v in rgb[1, 0])
    assert g == 255 and b == 128 and 180 <= r <= 200  # hue 90: yellow-green, half saturation


@pytest.mark.parametrize(
    ("flow", "mag", "match"),
    [
        (np.zeros((4, 4, 3), np.float32), 1.0, r"\(H, W, 2\)"),
        (np.full((2, 2, 2), np.nan, np.float32), 1.0, "finite"),
        (np.zeros((2, 2, 2), np.float32), 0.0, "max_magnitude_px"),
    ],
)
def test_flow_to_rgb_rejects_bad_input(flow, mag, match):
    with pytest.raises(ValueError, match=match):
        flow_to_rgb(flow, mag)


def test_dis_rejects_mismatched_frames():
    a = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="equal shapes"):
        DISFlow()(a, np.zeros((8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        DISFlow()(a, a.astype(np.float32))
    with pytest.raises(ValueError, match="at least 2 frames"):
        FlowImages(FlowConfig()).flows([a])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(backend="dpflow"), "backend"),
        (dict(backend="raft"), "raft_weights_path"),
        (dict(max_magnitude_px=-1.0), "max_magnitude_px"),
        (dict(image_hw=(0, 5)), "image_hw"),
        (dict(dis_preset="slow"), "dis_preset"),
    ],
)
def test_flow_config_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowConfig(**kwargs)


def test_raft_backend_names_the_missing_package(tmp_path):
    pytest.importorskip("torch")
    try:
        import torchvision  # noqa: F401

        pytest.skip("torchvision is installed here")
    except ImportError:
        pass
    weights = tmp_path / "raft.pth"
    weights.write_bytes(b"")
    with pytest.raises(ImportError, match="pip install torchvision"):
        build_flow(FlowConfig(backend="raft", raft_weights_path=str(weights)))
