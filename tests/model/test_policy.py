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


def test_normalisation_rule_is_official_for_official_checkpoints_and_floored_for_ours(tmp_path):
    """Official rule: only an exactly-zero range becomes 1 (docs/motus.md §4.2); checkpoints
    trained here record the 1e-3 floor (issue #16 §3)."""
    from motus_policy.model.normalization import MIN_NORMALIZATION_RANGE

    lo, hi = np.zeros(14), np.ones(14)
    hi[0] = 5e-4  # a near-constant joint of an official checkpoint: a real, tiny range
    hi[1] = 0.0  # exactly constant
    x = np.full(14, 0.5)
    x[0], x[1] = 2.5e-4, 0.25
    official = NormalizationStats(lo, hi)
    y = official.normalize(x)
    assert y[0] == pytest.approx(0.5) and y[1] == pytest.approx(0.25)  # 0 range -> 1
    np.testing.assert_allclose(official.denormalize(y), x, atol=1e-7)
    ours = NormalizationStats(lo, hi, min_range=MIN_NORMALIZATION_RANGE)
    assert ours.normalize(x)[0] == pytest.approx(2.5e-4)  # floored: range 1
    # training reads the same class from a stat.json entry (MotusEpisodeDataset.normalization)
    np.testing.assert_allclose(
        NormalizationStats.from_entry({"min": lo, "max": hi}).normalize(x), y
    )
    entry = {"min": lo, "max": hi, "min_range": MIN_NORMALIZATION_RANGE}
    assert NormalizationStats.from_entry(entry).min_range == MIN_NORMALIZATION_RANGE

    # The policy applies its config's rule: official (0) by default, recorded in config.json.
    p = build_tiny_policy(seed=0, stats=official)
    assert p.config.normalization_min_range == 0.0
    np.testing.assert_allclose(p.normalization.normalize(x), y)
    folder = p.save_pretrained(tmp_path / "official_rule")
    assert MotusPolicy.from_pretrained(folder).normalization.min_range == 0.0
    # our folders from before the field were trained with the floor: read with it
    import json

    cfg = json.loads((folder / "config.json").read_text())
    del cfg["policy"]["normalization_min_range"]
    (folder / "config.json").write_text(json.dumps(cfg))
    assert MotusPolicy.from_pretrained(folder).normalization.min_range == MIN_NORMALIZATION_RANGE


def test_stats_of_the_wrong_dimension_name_the_file_and_both_sizes(tmp_path):
    import json

    folder = build_tiny_policy(seed=0).save_pretrained(tmp_path / "p")
    stats = json.loads((folder / "stats.json").read_text())
    key = next(iter(stats))
    stats[key] = {"min": [0.0] * 12, "max": [1.0] * 12}
    (folder / "stats.json").write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=r"stats\.json: .* 12 dimensions, expected 14"):
        MotusPolicy.from_pretrained(folder)
    with pytest.raises(ValueError, match="expected 14 dimensions .*got 12"):
        build_tiny_policy(seed=0, stats=NormalizationStats(np.zeros(12), np.ones(12)))


def test_instruction_prefix_reaches_t5_and_the_vlm_from_one_place():
    """RoboTwin's checkpoint was trained and deployed with a fixed scene description in front
    of every instruction (official inference/robotwin/Motus/deploy_policy.py; issue #16 §3)."""
    import dataclasses

    from motus_policy.model.configuration_motus import ROBOTWIN_INSTRUCTION_PREFIX, MotusConfig

    assert MotusConfig.from_preset("robotwin").instruction_prefix == ROBOTWIN_INSTRUCTION_PREFIX
    assert ROBOTWIN_INSTRUCTION_PREFIX.startswith("The whole scene is in a realistic")
    assert ROBOTWIN_INSTRUCTION_PREFIX.endswith("performing the following task: ")
    for preset in ("aloha_agilex_2", "ac_one", "latent_action", "tiny"):
        assert MotusConfig.from_preset(preset).instruction_prefix == ""

    p = build_tiny_policy(seed=0)
    p.model.config = dataclasses.replace(p.model.config, instruction_prefix="Scene: ")
    seen = {"t5": [], "vlm": []}
    enc, feats = p.text_encoder.encode, p.vlm.features
    p.text_encoder.encode = lambda texts, **kw: seen["t5"].append(list(texts)) or enc(texts, **kw)
    p.vlm.features = lambda ims, texts, **kw: seen["vlm"].append(list(texts)) or feats(
        ims, texts, **kw
    )
    p.predict(_obs(0, instruction="pick"), mode="vla", num_steps=1, seed=0)
    assert seen == {"t5": [["Scene: pick"]], "vlm": [["Scene: pick"]]}


def test_long_instructions_are_truncated_the_same_way_for_both_encoders(caplog):
    """Issue #14 defect 6: both encoders see the instruction bounded to 512 UMT5 tokens."""
    p = build_tiny_policy(seed=0)
    limit = p.text_encoder.config.instruction_max_tokens
    assert limit == 512  # the official text length, also for the tiny encoders
    short = "pick up the red cube"
    assert p.model_instruction(short) == short
    long_text = (
        "ab " * 400
    )  # the tiny T5 tokenizer is byte-level: 1199 tokens + EOS after cleaning
    with caplog.at_level("WARNING"):
        fitted = p.model_instruction(long_text)
        assert p.model_instruction(long_text) == fitted  # remembered, warned once
    ids = p.text_encoder.tokenizer(fitted)["input_ids"]
    assert len(ids) == limit  # 511 tokens + EOS: exactly the tokenizer's own truncation
    full = p.text_encoder.tokenizer(long_text.strip(), truncation=True, max_length=limit)
    assert ids == full["input_ids"]
    warnings = [r.getMessage() for r in caplog.records if "official text length" in r.getMessage()]
    assert len(warnings) == 1 and "1200 UMT5 tokens" in warnings[0] and "511 tokens" in warnings[0]
    seen = []
    feats = p.vlm.features
    p.vlm.features = lambda ims, texts, **kw: seen.extend(texts) or feats(ims, texts, **kw)
    p.predict(_obs(0, instruction=long_text), mode="vla", num_steps=1, seed=0)
    assert seen == [fitted]
    huge = "x" * 1_000_000  # a runaway string is cut before tokenising
    assert len(p.model_instruction(huge)) == limit - 1
