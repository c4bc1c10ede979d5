"""MotusModel on the tiny config: shapes, key layout, Wan equivalence, modality mixing, caches."""

import pytest
import torch

from motus_policy.model import MotusConfig, MotusModel
from motus_policy.model import joint_attention as ja
from motus_policy.model.attention import attention
from tests.fakes.tiny_keys import TINY_KEY_SHAPES, TINY_NUM_KEYS

CFG = MotusConfig.from_preset("tiny")
B = 2


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = MotusModel(CFG).eval()
    # The official action head is zero-initialised; give it weights so action outputs carry signal.
    torch.nn.init.normal_(m.action_expert.decoder.action_head[0].weight, std=0.2)
    return m


def make_inputs(seed=0, batch=B, text_rows=10, und_rows=12):
    g = torch.Generator().manual_seed(seed)
    return dict(
        video=torch.randn(batch, *CFG.latent_shape, generator=g),
        actions=torch.randn(batch, CFG.action_chunk_size, CFG.action_dim, generator=g),
        state=torch.randn(batch, CFG.state_dim, generator=g),
        text=torch.randn(batch, text_rows, CFG.text_dim, generator=g),
        vlm=torch.randn(batch, und_rows, CFG.vlm_hidden_size, generator=g),
    )


def run(model, x, t_v=500.0, t_a=300.0, cache=False):
    cond = model.prepare_conditioning(x["text"], x["vlm"], cache_text_kv=cache)
    with torch.no_grad():
        return model(x["video"], x["actions"], t_v, t_a, x["state"], cond)


# ---------------------------------------------------------------- shapes and keys


def test_state_dict_keys_and_shapes_match_the_record(model):
    sd = model.state_dict()
    assert len(sd) == TINY_NUM_KEYS
    for key, shape in TINY_KEY_SHAPES.items():
        assert tuple(sd[key].shape) == shape, key
    for key, value in sd.items():
        if ".blocks.1." in key:
            assert value.shape == sd[key.replace(".blocks.1.", ".blocks.0.")].shape, key
        else:
            assert key in TINY_KEY_SHAPES, key


def test_expert_shapes_and_dtypes(model):
    x = make_inputs()
    tokens, (cos, sin), grid = model.video_model.embed(x["video"])
    assert grid == CFG.token_grid
    assert tokens.shape == (B, CFG.num_video_tokens, CFG.wan_dim) and tokens.dtype == torch.float32
    assert cos.shape == sin.shape == (1, CFG.num_video_tokens, 1, CFG.head_dim)
    temb, proj = model.video_model.time_embedding(torch.full((B,), 500.0))
    assert temb.shape == (B, CFG.wan_dim) and proj.shape == (B, 6, CFG.wan_dim)
    assert model.encode_text(x["text"]).shape == (B, CFG.text_len, CFG.wan_dim)
    a_tokens = model.action_expert.embed(x["state"], x["actions"])
    assert a_tokens.shape == (B, CFG.num_action_tokens, CFG.action_hidden_size)
    a_e, a_proj = model.action_expert.time_embed(torch.full((B,), 500.0))
    assert a_e.shape == (B, CFG.action_hidden_size)
    assert a_proj.shape == (B, 6, CFG.action_hidden_size)
    assert model.encode_und(x["vlm"]).shape == (B, 12, CFG.und_hidden_size)
    kv = model.precompute_text_kv(model.encode_text(x["text"]))
    assert len(kv) == CFG.num_layers
    assert kv[0][0].shape == (B, CFG.text_len, CFG.num_heads, CFG.head_dim)


def test_forward_shapes_dtypes_and_finiteness(model):
    out = run(
        model, make_inputs(), t_v=torch.tensor([1000.0, 0.0]), t_a=torch.tensor([5.0, 999.0])
    )
    assert out.video_velocity.shape == (B, *CFG.latent_shape)
    assert out.action_velocity.shape == (B, CFG.action_chunk_size, CFG.action_dim)
    assert out.video_velocity.dtype == out.action_velocity.dtype == torch.float32
    assert torch.isfinite(out.video_velocity).all() and torch.isfinite(out.action_velocity).all()


def test_pretrain_mode_forward_without_state():
    cfg = MotusConfig.from_preset("latent_action", **_tiny_widths())
    torch.manual_seed(0)
    m = MotusModel(cfg).eval()
    g = torch.Generator().manual_seed(0)
    cond = m.prepare_conditioning(torch.randn(1, 4, 64, generator=g), torch.randn(1, 5, 64))
    video = torch.randn(1, *cfg.latent_shape, generator=g)
    actions = torch.randn(1, 8, 14, generator=g)
    with torch.no_grad():
        out = m(video, actions, 100.0, 100.0, None, cond)
    assert out.action_velocity.shape == (1, 8, 14)
    with pytest.raises(ValueError, match="state"):
        m(video, actions, 100.0, 100.0, torch.zeros(1, 14), cond)


def test_bad_shapes_raise_naming_the_input(model):
    x = make_inputs()
    cond = model.prepare_conditioning(x["text"], x["vlm"])
    with pytest.raises(ValueError, match="video_latents"):
        model(x["video"][:, :, :2], x["actions"], 1.0, 1.0, x["state"], cond)
    with pytest.raises(ValueError, match="actions"):
        model(x["video"], x["actions"][:, :3], 1.0, 1.0, x["state"], cond)
    with pytest.raises(ValueError, match="state"):
        model(x["video"], x["actions"], 1.0, 1.0, None, cond)
    with pytest.raises(ValueError, match="text_embeds"):
        model.encode_text(torch.zeros(1, CFG.text_len + 1, CFG.text_dim))


# ---------------------------------------------------------------- faithfulness of the video path


def test_video_path_reproduces_the_diffusers_wan_forward(model):
    """Our layer-by-layer use of the Wan sub-modules equals WanTransformer3DModel.forward when
    the video tokens attend only to themselves (no action/und tokens)."""
    video = model.video_model
    x = make_inputs()
    t = torch.tensor([500.0, 120.0])
    text = torch.nn.functional.pad(x["text"], (0, 0, 0, CFG.text_len - x["text"].shape[1]))
    with torch.no_grad():
        ref = video.wan_model(x["video"], t, text, return_dict=False)[0]
        h, rope, grid = video.embed(x["video"])
        temb, proj = video.time_embedding(t)
        ctx = model.encode_text(x["text"])
        for i in range(CFG.num_layers):
            e = video.modulation(i, proj)
            q, k, v = video.self_qkv(i, video.pre_attention(i, h, e[0], e[1]))
            q, k = ja.apply_rotary_emb(q, *rope), ja.apply_rotary_emb(k, *rope)
            h = h + video.self_out(i, attention(q, k, v)) * e[2]
            h = h + video.cross_attention(i, h, ctx)
            h = h + video.ffn(i, h, e[3], e[4], e[5])
        ours = video.head(h, temb, grid)
    torch.testing.assert_close(ours, ref, atol=2e-5, rtol=1e-4)


# ---------------------------------------------------------------- joint attention


def test_joint_attention_mixes_all_modalities(model):
    x = make_inputs()
    base = run(model, x)
    other_und = run(model, {**x, "vlm": x["vlm"] + 1.0})
    assert not torch.allclose(base.action_velocity, other_und.action_velocity, atol=1e-5)
    assert not torch.allclose(base.video_velocity, other_und.video_velocity, atol=1e-5)
    other_actions = run(model, {**x, "actions": x["actions"] + 1.0})
    assert not torch.allclose(base.video_velocity, other_actions.video_velocity, atol=1e-5)
    other_video = run(model, {**x, "video": x["video"] + 1.0})
    assert not torch.allclose(base.action_velocity, other_video.action_velocity, atol=1e-5)


def test_samples_in_a_batch_are_independent(model):
    x = make_inputs()
    base = run(model, x)
    changed = {k: v.clone() for k, v in x.items()}
    changed["vlm"][1] += 1.0
    changed["actions"][1] += 1.0
    out = run(model, changed)
    torch.testing.assert_close(out.action_velocity[0], base.action_velocity[0])
    torch.testing.assert_close(out.video_velocity[0], base.video_velocity[0])


def test_rope_is_applied_to_video_tokens_only(model, monkeypatch):
    lengths = []
    original = ja.apply_rotary_emb

    def recording(x, cos, sin):
        lengths.append(x.shape[1])
        return original(x, cos, sin)

    monkeypatch.setattr(ja, "apply_rotary_emb", recording)
    run(model, make_inputs())
    assert lengths == [CFG.num_video_tokens] * (2 * CFG.num_layers)  # q and k per layer


def test_und_padding_rows_are_attended(model):
    """Official behaviour: no und mask, so extra (padding) rows change the outputs."""
    x = make_inputs()
    padded = {**x, "vlm": torch.cat([x["vlm"], torch.zeros(B, 3, CFG.vlm_hidden_size)], dim=1)}
    assert not torch.allclose(run(model, x).action_velocity, run(model, padded).action_velocity)


# ---------------------------------------------------------------- caches


def test_text_kv_cache_gives_identical_outputs(model):
    x = make_inputs()
    plain = run(model, x, cache=False)
    cached = run(model, x, cache=True)
    assert torch.equal(plain.video_velocity, cached.video_velocity)
    assert torch.equal(plain.action_velocity, cached.action_velocity)


def _tiny_widths():
    keep = [
        "image_height",
        "image_width",
        "num_layers",
        "num_heads",
        "head_dim",
        "wan_ffn_dim",
        "freq_dim",
        "text_dim",
        "text_len",
        "action_hidden_size",
        "action_ffn_dim",
        "und_hidden_size",
        "und_ffn_dim",
        "vlm_hidden_size",
    ]
    return {k: getattr(CFG, k) for k in keep}


# ---------------------------------------------------------------- run dtype


def test_bf16_runtime_keeps_precision_critical_parts_and_stays_close():
    torch.manual_seed(0)
    m = MotusModel(CFG).eval()
    torch.nn.init.normal_(m.action_expert.decoder.action_head[0].weight, std=0.2)
    x = make_inputs()
    ref = run(m, x)
    m.to_runtime("cpu", torch.bfloat16)
    assert m.video_model.wan_model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert m.action_expert.blocks[0].wan_action_qkv.dtype == torch.bfloat16
    assert m.video_model.wan_model.rope.freqs_cos.dtype != torch.bfloat16
    assert m.action_expert.time_embedding[0].weight.dtype == torch.float32
    assert m.action_expert.blocks[0].modulation.dtype == torch.float32
    out = run(m, x)
    assert out.action_velocity.dtype == torch.float32
    torch.testing.assert_close(out.action_velocity, ref.action_velocity, atol=0.1, rtol=0.05)
    torch.testing.assert_close(out.video_velocity, ref.video_velocity, atol=0.1, rtol=0.05)


# ---------------------------------------------------------------- attention backend


def test_sdpa_backend_equals_softmax_attention():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 5, 3, 8, generator=g) for _ in range(3))
    scores = torch.einsum("bqnd,bknd->bnqk", q, k) / 8**0.5
    ref = torch.einsum("bnqk,bknd->bqnd", scores.softmax(-1), v)
    torch.testing.assert_close(attention(q, k, v, backend="sdpa"), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="flash"):
        attention(q, k, v, backend="flash")  # CPU tensors: flash-attn cannot run
    with pytest.raises(ValueError, match="backend"):
        attention(q, k, v, backend="xformers")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_forward_matches_cpu_fp32():
    torch.manual_seed(0)
    m = MotusModel(CFG).eval()
    torch.nn.init.normal_(m.action_expert.decoder.action_head[0].weight, std=0.2)
    x = make_inputs()
    ref = run(m, x)
    m.to_runtime("cuda")
    out = run(m, {k: v.cuda() for k, v in x.items()})
    torch.testing.assert_close(out.action_velocity.cpu(), ref.action_velocity, atol=0.1, rtol=0.05)
    torch.testing.assert_close(out.video_velocity.cpu(), ref.video_velocity, atol=0.1, rtol=0.05)
