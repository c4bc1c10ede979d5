"""MotusPolicy numpy API on the tiny config (random weights, CPU)."""

import numpy as np
import pytest

from motus_policy.model.normalization import NormalizationStats
from motus_policy.model.policy import MotusPolicy, PolicyConfig, build_tiny_policy
from motus_policy.types import Observation

STEPS = 2  # keep the CPU tests fast; the step count does not change the code paths


def _obs(
    seed: int, instruction: str = "pick up the red cube", stamp_ns: int = 5_000
) -> Observation:
    rng = np.random.default_rng(seed)
    return Observation(
        images={
            "cam_high": rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
            "cam_left_wrist": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),
            "cam_right_wrist": rng.integers(0, 255, (30, 40, 3), dtype=np.uint8),
        },
        state=rng.uniform(-1, 1, 14).astype(np.float32),
        stamp_ns=stamp_ns,
        instruction=instruction,
    )


STATS = NormalizationStats(min=np.linspace(-2, -1, 14), max=np.linspace(1, 3, 14))


@pytest.fixture(scope="module")
def policy() -> MotusPolicy:
    import torch

    p = build_tiny_policy(seed=0, stats=STATS, action_rate_hz=30.0)
    # Motus zero-initialises its output heads (docs/motus.md §1.3): with those, every prediction is
    # the initial noise and the tests below would hold trivially. Give them random values.
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in p.model.parameters():
            if not torch.any(param):
                param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    return p


def test_normalisation_round_trip_and_zero_range():
    stats = NormalizationStats(min=np.array([0.0, -1.0, 2.0]), max=np.array([1.0, 1.0, 2.0]))
    x = np.array([[0.5, 0.0, 2.0], [1.0, -1.0, 2.0]])
    y = stats.normalize(x)
    np.testing.assert_allclose(y, [[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(stats.denormalize(y), x, atol=1e-6)
    assert NormalizationStats.from_json(stats.to_json("aloha"), "aloha").max.tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="max >= min"):
        NormalizationStats(min=np.array([1.0]), max=np.array([0.0]))


def test_chunk_contract(policy):
    obs = _obs(0)
    chunk = policy.predict(obs, mode="vla", num_steps=STEPS, seed=0)
    assert chunk.actions.shape == (16, 14) and chunk.actions.dtype == np.float32
    assert np.all(np.isfinite(chunk.actions))
    assert chunk.t0_ns == obs.stamp_ns and chunk.period_ns == round(1e9 / 30)
    assert chunk.frames is None and chunk.latency_ns > 0
    assert policy.last_timings_s["decode"] < 0.01  # no frames requested -> decode skipped


def test_caches_do_not_change_results(policy):
    obs = _obs(1)
    policy.text_encoder.clear_cache()
    policy.vlm.clear_cache()
    cached = policy.predict(obs, mode="joint", num_steps=STEPS, seed=3)
    again = policy.predict(obs, mode="joint", num_steps=STEPS, seed=3)
    assert policy.vlm.hits == 1 and policy.text_encoder.hits == 1
    official = MotusPolicy(
        policy.model,
        policy.vae,
        policy.text_encoder,
        policy.vlm,
        policy.stats,
        PolicyConfig(use_caches=False),
    )
    misses = policy.vlm.misses
    uncached = official.predict(obs, mode="joint", num_steps=STEPS, seed=3)
    assert policy.vlm.misses - misses == 1 + STEPS  # official path: VLM once + every step
    np.testing.assert_array_equal(cached.actions, again.actions)
    np.testing.assert_allclose(uncached.actions, cached.actions, rtol=1e-5, atol=1e-5)


def test_batch_rows_are_independent(policy):
    # The sampler draws the noise for the whole batch from one generator, so row b of a batch
    # only equals a single call when the noise matches; what must hold is that a row depends on
    # its own observation only (same seed, same row-0 observation, different row-1 observation).
    a, b, c = _obs(2, stamp_ns=1), _obs(3, stamp_ns=2), _obs(8, stamp_ns=3)
    ab = policy.predict_batch([a, b], mode="vla", num_steps=STEPS, seed=7)
    ac = policy.predict_batch([a, c], mode="vla", num_steps=STEPS, seed=7)
    np.testing.assert_allclose(ab[0].actions, ac[0].actions, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ab[1].actions, ac[1].actions)
    assert [x.t0_ns for x in ab] == [1, 2]


def test_batch_of_identical_noise_equals_single_call(policy, monkeypatch):
    # Give every row the same noise (row 0's) so a batch of 2 must reproduce the single call.
    import torch

    from motus_policy.model import sampler as sampler_mod

    real_randn = torch.randn

    def row0_randn(shape, generator=None, device=None):
        one = real_randn((1, *shape[1:]), generator=generator, device=device)
        return one.expand(shape).clone()

    monkeypatch.setattr(sampler_mod.torch, "randn", row0_randn)
    a, b = _obs(2, stamp_ns=1), _obs(3, stamp_ns=2)
    batch = policy.predict_batch([a, b], mode="vla", num_steps=STEPS, seed=7)
    single_a = policy.predict(a, mode="vla", num_steps=STEPS, seed=7)
    single_b = policy.predict(b, mode="vla", num_steps=STEPS, seed=7)
    np.testing.assert_allclose(batch[0].actions, single_a.actions, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch[1].actions, single_b.actions, rtol=1e-4, atol=1e-5)


def test_action_prefix_is_reproduced(policy):
    prefix = np.stack([np.linspace(-1.5, 2.5, 14)] * 4).astype(np.float32)
    chunk = policy.predict(_obs(4), mode="vla", num_steps=STEPS, seed=0, action_prefix=prefix)
    np.testing.assert_allclose(chunk.actions[:4], prefix, atol=1e-5)
    with pytest.raises(ValueError, match="action_prefix"):
        policy.predict(_obs(4), mode="vla", num_steps=STEPS, action_prefix=np.zeros((4, 13)))


def test_frames_and_modes(policy):
    obs = _obs(5)
    chunk = policy.predict(obs, mode="vgm", num_steps=1, seed=0, return_frames=True)
    F, r, period = 8, 2, chunk.period_ns
    assert chunk.frames.shape == (F, 128, 96, 3) and chunk.frames.dtype == np.uint8
    assert chunk.frame_stamps_ns == tuple(obs.stamp_ns + j * r * period for j in range(1, F + 1))
    assert np.all(np.isnan(chunk.actions))  # VGM predicts no actions
    given = np.tile(np.linspace(0, 1, 14, dtype=np.float32), (16, 1))
    wm = policy.predict(obs, mode="wm", num_steps=1, seed=0, actions=given)
    np.testing.assert_allclose(wm.actions, given, atol=1e-5)
    idm = policy.predict(
        obs, mode="idm", num_steps=1, seed=0, future_frames=np.zeros((F, 96, 64, 3), np.uint8)
    )
    assert np.all(np.isfinite(idm.actions))
    with pytest.raises(ValueError, match="wm"):
        policy.predict(obs, mode="wm", num_steps=1)
    with pytest.raises(ValueError, match="mode"):
        policy.predict(obs, mode="dance")


def test_missing_camera_is_named(policy):
    obs = _obs(6)
    bad = Observation(
        images={k: v for k, v in obs.images.items() if k != "cam_left_wrist"},
        state=obs.state,
        stamp_ns=0,
        instruction="x",
    )
    with pytest.raises(ValueError, match="cam_left_wrist"):
        policy.predict(bad)


def test_save_and_load_pretrained(policy, tmp_path):
    out = policy.save_pretrained(tmp_path / "tiny")
    assert {p.name for p in out.iterdir()} >= {"model.safetensors", "config.json", "stats.json"}
    with pytest.raises(FileExistsError):
        policy.save_pretrained(out)
    loaded = MotusPolicy.from_pretrained(out)
    obs = _obs(7)
    a = policy.predict(obs, mode="vla", num_steps=STEPS, seed=1)
    b = loaded.predict(obs, mode="vla", num_steps=STEPS, seed=1)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(loaded.stats.max, STATS.max)


def test_near_constant_dimension_is_not_blown_up_by_normalisation():
    lo, hi = np.zeros(14), np.ones(14)
    hi[0] = 1.8e-15  # a joint that never moved in the data: float-noise range
    stats = NormalizationStats(lo, hi)
    x = np.full(14, 0.5)
    x[0] = 1e-5  # a sensor wiggle at run time
    y = stats.normalize(x)
    assert abs(y[0]) < 1e-4 and np.allclose(y[1:], 0.5)
    # training reads the same class from a stat.json entry (MotusEpisodeDataset.normalization)
    np.testing.assert_allclose(
        NormalizationStats.from_entry({"min": lo, "max": hi}).normalize(x), y
    )
    np.testing.assert_allclose(stats.denormalize(y), x, atol=1e-6)
