"""Scheduler and the five sampling modes (docs/motus.md §2.2, §2.3) on the tiny config."""

import pytest
import torch

from motus_policy.model import MotusConfig, MotusModel
from motus_policy.model.sampler import MODES, MotusSampler
from motus_policy.model.scheduler import (
    EulerSchedule,
    add_noise,
    sample_training_sigmas,
    training_sigma_table,
    velocity_target,
)

CFG = MotusConfig.from_preset("tiny", num_inference_steps=4)
C, T, H, W = CFG.latent_shape
A = CFG.action_chunk_size


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = MotusModel(CFG).eval()
    torch.nn.init.normal_(m.action_expert.decoder.action_head[0].weight, std=0.2)
    return m


@pytest.fixture(scope="module")
def inputs(model):
    g = torch.Generator().manual_seed(1)
    cond = model.prepare_conditioning(
        torch.randn(1, 6, CFG.text_dim, generator=g),
        torch.randn(1, 9, CFG.vlm_hidden_size, generator=g),
        cache_text_kv=True,
    )
    return dict(
        condition_latent=torch.randn(1, C, 1, H, W, generator=g),
        conditioning=cond,
        state=torch.randn(1, 14, generator=g),
        clip=torch.randn(1, C, T, H, W, generator=g),
        actions=torch.randn(1, A, 14, generator=g),
    )


def sample(model, inputs, mode, seed=0, **kw):
    extra = {}
    if mode == "wm":
        extra["actions"] = inputs["actions"]
    if mode == "idm":
        extra["video_latents"] = inputs["clip"]
    return MotusSampler(model).sample(
        mode,
        inputs["condition_latent"],
        inputs["conditioning"],
        inputs["state"],
        generator=torch.Generator().manual_seed(seed),
        **extra,
        **kw,
    )


# ---------------------------------------------------------------- schedules


def test_bf16_schedule_matches_the_official_values():
    s = EulerSchedule(10, bf16=True)
    assert s.timesteps.tolist() == [1000.0, 900, 800, 700, 600, 500, 400, 300, 200, 100]
    assert s.dts[0].item() == pytest.approx(-0.1015625)
    assert s.dts[1].item() == pytest.approx(-0.09765625)
    assert s.dts.sum().item() == pytest.approx(-1.0)
    exact = EulerSchedule(10, bf16=False)
    torch.testing.assert_close(exact.sigmas, torch.linspace(1, 0, 11))


def test_euler_recovers_x0_on_a_straight_flow():
    """With the exact velocity ε − x₀ of the straight path, Euler lands on x₀ (sign check)."""
    x0, eps = torch.randn(3, 5), torch.randn(3, 5)
    sched = EulerSchedule(7, bf16=False)
    x = eps.clone()
    for i in range(len(sched)):
        x = sched.step(velocity_target(x0, eps), i, x)
    torch.testing.assert_close(x, x0, atol=1e-5, rtol=0)


def test_training_sigma_table_is_shift_5():
    table = training_sigma_table(1000, 5.0)
    assert table[0].item() == 1.0
    assert table[-1].item() == pytest.approx(5 * 0.001 / (1 + 4 * 0.001))
    assert (table[1:] < table[:-1]).all()
    sig = sample_training_sigmas(20000, generator=torch.Generator().manual_seed(0))
    assert sig.median().item() == pytest.approx(5 / 6, abs=0.02)  # CDF x/(5-4x) = 1/2
    x0, eps = torch.zeros(2, 3), torch.ones(2, 3)
    torch.testing.assert_close(
        add_noise(x0, eps, torch.tensor([0.25, 1.0]))[:, 0], torch.tensor([0.25, 1.0])
    )


# ---------------------------------------------------------------- modes


@pytest.mark.parametrize(
    "mode, t_video, t_action",
    [
        ("joint", "t", "t"),
        ("vla", 1000.0, "t"),
        ("vgm", "t", 1000.0),
        ("wm", "t", 0.0),
        ("idm", 0.0, "t"),
    ],
)
def test_timesteps_each_modality_receives(model, inputs, mode, t_video, t_action):
    seen = []
    hook = model.register_forward_pre_hook(lambda mod, args: seen.append((args[2], args[3])))
    try:
        sample(model, inputs, mode)
    finally:
        hook.remove()
    schedule = MotusSampler(model).schedule.timesteps.tolist()
    assert len(seen) == len(schedule) == CFG.num_inference_steps
    for (tv, ta), t in zip(seen, schedule, strict=True):
        assert tv == (t if t_video == "t" else t_video)
        assert ta == (t if t_action == "t" else t_action)


def test_condition_frame_is_exactly_the_condition_latent(model, inputs):
    frames = []
    hook = model.register_forward_pre_hook(
        lambda mod, args: frames.append(args[0][:, :, :1].clone())
    )
    try:
        for mode in MODES:
            out = sample(model, inputs, mode)
            if out.video_latents is not None:
                assert torch.equal(out.video_latents[:, :, :1], inputs["condition_latent"])
    finally:
        hook.remove()
    assert all(torch.equal(f, inputs["condition_latent"]) for f in frames)


def test_vla_holds_future_video_at_its_initial_noise(model, inputs):
    videos = []
    hook = model.register_forward_pre_hook(lambda mod, args: videos.append(args[0].clone()))
    try:
        out = sample(model, inputs, "vla")
    finally:
        hook.remove()
    assert out.video_latents is None and out.actions.shape == (1, A, 14)
    assert all(torch.equal(v, videos[0]) for v in videos)


def test_wm_keeps_actions_and_idm_keeps_frames(model, inputs):
    wm = sample(model, inputs, "wm")
    assert torch.equal(wm.actions, inputs["actions"])
    assert not torch.equal(wm.video_latents[:, :, 1:], inputs["clip"][:, :, 1:])
    idm = sample(model, inputs, "idm")
    assert torch.equal(idm.video_latents[:, :, 1:], inputs["clip"][:, :, 1:])
    vgm = sample(model, inputs, "vgm")
    assert vgm.actions is None and vgm.video_latents.shape == (1, C, T, H, W)


def test_idm_accepts_future_frames_only(model, inputs):
    full = sample(model, inputs, "idm")
    future = MotusSampler(model).sample(
        "idm",
        inputs["condition_latent"],
        inputs["conditioning"],
        inputs["state"],
        video_latents=inputs["clip"][:, :, 1:],
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(full.actions, future.actions)


def test_seeded_generator_is_deterministic(model, inputs):
    a, b = sample(model, inputs, "joint", seed=3), sample(model, inputs, "joint", seed=3)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.video_latents, b.video_latents)
    c = sample(model, inputs, "joint", seed=4)
    assert not torch.equal(a.actions, c.actions)


def test_prefix_inpainting_reproduces_the_prefix(model, inputs):
    prefix = torch.rand(1, 5, 14)
    out = sample(model, inputs, "vla", action_prefix=prefix)
    assert torch.equal(out.actions[:, :5], prefix)
    free = sample(model, inputs, "vla")
    assert not torch.allclose(out.actions[:, 5:], free.actions[:, 5:])  # the rest is conditioned
    with pytest.raises(ValueError, match="action_prefix"):
        sample(model, inputs, "vla", action_prefix=torch.zeros(1, A + 1, 14))
    with pytest.raises(ValueError, match="action_prefix"):
        sample(model, inputs, "wm", action_prefix=prefix)


def test_text_kv_cache_and_plain_context_sample_identically(model, inputs):
    cond = inputs["conditioning"]
    no_cache = type(cond)(cond.text_context, cond.und_tokens, None)
    a = sample(model, inputs, "joint")
    b = sample(model, {**inputs, "conditioning": no_cache}, "joint")
    assert torch.equal(a.actions, b.actions) and torch.equal(a.video_latents, b.video_latents)


def test_missing_mode_inputs_raise(model, inputs):
    s = MotusSampler(model)
    args = (inputs["condition_latent"], inputs["conditioning"], inputs["state"])
    with pytest.raises(ValueError, match="mode"):
        s.sample("policy", *args)
    with pytest.raises(ValueError, match="actions"):
        s.sample("wm", *args)
    with pytest.raises(ValueError, match="video_latents"):
        s.sample("idm", *args)
    with pytest.raises(ValueError, match="condition_latent"):
        s.sample("joint", inputs["clip"], inputs["conditioning"], inputs["state"])


def test_wm_video_depends_on_the_given_actions(model, inputs):
    a = sample(model, inputs, "wm")
    b = sample(model, dict(inputs, actions=inputs["actions"] + 1.0), "wm")
    assert not torch.allclose(a.video_latents[:, :, 1:], b.video_latents[:, :, 1:])


def test_idm_actions_depend_on_the_given_frames(model, inputs):
    a = sample(model, inputs, "idm")
    b = sample(model, dict(inputs, clip=inputs["clip"] + 1.0), "idm")
    assert not torch.allclose(a.actions, b.actions)


def test_vla_actions_do_not_depend_on_future_frames(model, inputs):
    """VLA marginalises the future video (held at noise): observed future frames cannot leak."""
    ref = sample(model, inputs, "vla")
    try:
        leaked = sample(model, inputs, "vla", video_latents=inputs["clip"] + 5.0)
    except ValueError:
        return  # the sampler refuses future frames in vla mode: no path for them
    assert torch.equal(ref.actions, leaked.actions)
