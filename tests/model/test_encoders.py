"""Encoders: shapes, VAE latent normalisation, caches, prompt construction (tiny, CPU)."""

import numpy as np
import pytest
import torch

from motus_policy.model.encoders.text import TextEncoderConfig, clean_instruction
from motus_policy.model.encoders.tiny import build_tiny_encoders
from motus_policy.model.encoders.vae import WAN22_LATENTS_MEAN, WAN22_LATENTS_STD, VAEConfig
from motus_policy.model.encoders.vlm import VLMConfig


@pytest.fixture(scope="module")
def encoders():
    return build_tiny_encoders(seed=0)


def test_vae_shapes_and_range(encoders):
    vae, _, _ = encoders
    x = torch.rand(2, 3, 5, 64, 48)
    z = vae.encode(x)
    assert z.shape == (2, 48, 2, 4, 3) and z.dtype == torch.float32
    y = vae.decode(z)
    assert y.shape == (2, 3, 5, 64, 48)
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_vae_latent_normalisation_uses_wan22_stats(encoders):
    vae, _, _ = encoders
    x = torch.rand(1, 3, 1, 32, 32)
    mu = vae.vae.encode(x * 2 - 1).latent_dist.mean
    mean = torch.tensor(WAN22_LATENTS_MEAN).view(1, -1, 1, 1, 1)
    std = torch.tensor(WAN22_LATENTS_STD).view(1, -1, 1, 1, 1)
    torch.testing.assert_close(vae.encode(x), (mu - mean) / std)
    torch.testing.assert_close(vae.denormalize(vae.normalize(mu)), mu)
    # decode() inverts the normalisation before the diffusers decoder
    expected = ((vae.vae.decode(mu).sample + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(vae.decode(vae.normalize(mu)), expected)


def test_vae_rejects_bad_shapes(encoders):
    vae, _, _ = encoders
    with pytest.raises(ValueError, match="multiples of 16"):
        vae.encode(torch.rand(1, 3, 1, 40, 32))
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        vae.encode(torch.rand(1, 3, 3, 32, 32))


def test_vae_config_validation():
    with pytest.raises(ValueError, match="latents_std"):
        VAEConfig(latents_std=(0.0,) * 48)
    with pytest.raises(ValueError, match="temperal_downsample"):
        VAEConfig(temperal_downsample=(True,))
    cfg = VAEConfig()
    assert (cfg.spatial_factor, cfg.temporal_factor) == (16, 4)
    assert VAEConfig(**cfg.to_dict()) == cfg


def test_t5_context_is_zero_padded(encoders):
    _, text, _ = encoders
    ctx = text.encode(["pick up the red cube", "go"], use_cache=False)
    assert ctx.shape == (2, 32, 64)
    # "go" = 2 bytes + </s> -> 3 real rows, the rest exactly zero
    assert torch.count_nonzero(ctx[1, 3:]) == 0
    assert torch.count_nonzero(ctx[1, :3]) > 0
    assert not torch.equal(ctx[0, :3], ctx[1, :3])


def test_t5_cache_hits_return_identical_tensors(encoders):
    _, text, _ = encoders
    text.clear_cache()
    a = text.encode(["stack the cups"])
    b = text.encode(["  stack   the cups "])  # same after whitespace cleaning
    assert (text.hits, text.misses) == (1, 1)
    assert torch.equal(a, b)
    assert (
        text.encode_unpadded(["stack the cups"])[0] is text.encode_unpadded(["stack the cups"])[0]
    )
    torch.testing.assert_close(text.encode(["stack the cups"], use_cache=False), a)


def test_t5_cache_is_lru(encoders):
    _, text, _ = encoders
    text.clear_cache()
    text.config = TextEncoderConfig(max_length=32, context_len=32, cache_size=2)
    try:
        text.encode(["a"])
        text.encode(["b"])
        text.encode(["a"])  # refresh a
        text.encode(["c"])  # evicts b
        text.encode(["a"])
        assert text.hits == 2
        text.encode(["b"])
        assert text.misses == 4
    finally:
        text.config = TextEncoderConfig(max_length=32, context_len=32)


def test_clean_instruction():
    assert clean_instruction("  pick &amp;amp; place\n\tit ") == "pick & place it"


def test_vlm_inputs_follow_processor_layout(encoders):
    _, _, vlm = encoders
    img = np.random.default_rng(0).integers(0, 255, (96, 64, 3), dtype=np.uint8)
    inp = vlm.build_inputs([img], ["pick"])
    thw = inp["image_grid_thw"][0]
    n_img = int(thw.prod()) // 4
    assert tuple(thw.tolist()) == (1, 6, 4)
    assert int(inp["mm_token_type_ids"].sum()) == n_img == 6
    assert inp["mm_token_type_ids"].shape == inp["input_ids"].shape
    assert inp["pixel_values"].shape == (24, 3 * 2 * 16 * 16)
    text = vlm.tokenizer.decode(inp["input_ids"][0])
    # deployment order: text before the image, no generation prompt (docs/motus.md §1.4)
    assert text.index("pick") < text.index("<|vision_start|>")
    assert "assistant" not in text


def test_vlm_training_order(encoders):
    _, _, vlm = encoders
    old = vlm.config
    vlm.config = VLMConfig(content_order="image_text", add_generation_prompt=True)
    try:
        img = np.zeros((64, 64, 3), np.uint8)
        text = vlm.tokenizer.decode(vlm.build_inputs([img], ["pick"])["input_ids"][0])
        assert text.index("<|vision_end|>") < text.index("pick")
        assert text.rstrip().endswith("assistant")
    finally:
        vlm.config = old


def test_vlm_features_cache_and_padding(encoders):
    _, _, vlm = encoders
    vlm.clear_cache()
    rng = np.random.default_rng(1)
    a = rng.integers(0, 255, (96, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    f1, m1 = vlm.features([a], ["pick up the cube"])
    f2, _ = vlm.features([a], ["pick up the cube"])
    assert (vlm.hits, vlm.misses) == (1, 1)
    assert torch.equal(f1, f2)
    fresh, _ = vlm.features([a], ["pick up the cube"], use_cache=False)
    torch.testing.assert_close(fresh, f1)
    fb, mb = vlm.features([a, b], ["pick up the cube", "pick"])
    assert fb.shape[0] == 2 and fb.shape[2] == 64
    assert int(mb[0].sum()) == m1.shape[1] and int(mb[1].sum()) < m1.shape[1]
    torch.testing.assert_close(fb[0, : m1.shape[1]], f1[0])


def test_vlm_batch_pads_input_ids_like_the_official_code(encoders):
    """Official data/dataset.py ``_process_vlm_inputs_batch``: input ids right-padded with 0,
    attention mask 0, and the und expert reads the LM states at the pad positions too (issue
    #16 §3); zero features there (``adapter(0)``) are not what the checkpoint was trained on."""
    _, _, vlm = encoders
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 255, (96, 64, 3), dtype=np.uint8) for _ in range(2)]
    texts = ["pick up the cube and put it in the bowl", "pick"]
    got, mask = vlm.features(images, texts, use_cache=False)
    # The official batch, built here by hand: pad ids with 0 and run the LM once.
    singles = [vlm.build_inputs([im], [t]) for im, t in zip(images, texts, strict=True)]
    L = max(x["input_ids"].shape[1] for x in singles)
    batch = {
        k: torch.cat([torch.nn.functional.pad(x[k], (0, L - x[k].shape[1])) for x in singles])
        for k in ("input_ids", "attention_mask", "mm_token_type_ids")
    }
    batch["pixel_values"] = torch.cat([x["pixel_values"] for x in singles])
    batch["image_grid_thw"] = torch.cat([x["image_grid_thw"] for x in singles])
    ref = vlm._run(batch)
    n_short = singles[1]["input_ids"].shape[1]
    assert n_short < L and int(mask[1].sum()) == n_short
    assert torch.count_nonzero(ref[1, n_short:]) > 0  # the official pad rows are not zeros
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_tiny_f8_preset_builds_with_an_8x_vae_and_a_finer_token_grid():
    import torch

    from motus_policy.model.configuration_motus import MotusConfig
    from motus_policy.model.encoders.vae import MotusVAE, VAEConfig

    cfg = MotusConfig.from_preset("tiny_f8")
    assert cfg.vae_spatial_factor == 8
    vae = MotusVAE(VAEConfig.tiny(8)).eval()
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 5, cfg.image_height, cfg.image_width))
    assert tuple(z.shape) == (1, cfg.latent_channels, 2, 16, 12)  # 4x temporal, 8x spatial
    with pytest.raises(ValueError, match="spatial_factor must be 8 or 16"):
        VAEConfig.tiny(4)
