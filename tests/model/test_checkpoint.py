"""Official checkpoint layouts: synthetic files in tmp_path, round trips, shape checks (tiny).

``co`` renames (convert_official), ``ck`` loads with shape checks (checkpoint).
"""

import pytest
import torch
from safetensors.torch import save_file

from motus_policy.model import checkpoint as ck
from motus_policy.model import convert_official as co
from motus_policy.model.configuration_motus import MotusConfig
from motus_policy.model.encoders.tiny import tiny_qwen3vl, tiny_qwen_tokenizer, tiny_umt5
from motus_policy.model.encoders.vae import MotusVAE, VAEConfig
from motus_policy.model.modeling_motus import MotusModel


def _model(seed: int, **overrides) -> MotusModel:
    torch.manual_seed(seed)
    return MotusModel(MotusConfig.from_preset("tiny", **overrides))


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _write_official(path, module: dict, aliases: bool = True) -> None:
    # the real files repeat the same tensors under helper-module prefixes
    # (docs/checkpoint-format.md §1)
    if aliases:
        module = {
            **module,
            **{
                "action_module." + k: v
                for k, v in module.items()
                if k.startswith("action_expert.")
            },
            **{"video_module." + k: v for k, v in module.items() if k.startswith("video_model.")},
        }
    torch.save({"module": module, "global_steps": 10, "dp_world_size": 1}, path)


def test_round_trip_through_official_file_is_bit_identical(tmp_path):
    src, dst = _model(0), _model(1)
    qtok = tiny_qwen_tokenizer()
    torch.manual_seed(2)
    vlm_src, vlm_dst = tiny_qwen3vl(qtok), tiny_qwen3vl(qtok)
    folder = tmp_path / "ckpt" / "pytorch_model"
    folder.mkdir(parents=True)
    _write_official(
        folder / "mp_rank_00_model_states.pt", co.export_official_state_dict(src, vlm_src)
    )
    report = ck.load_official_checkpoint(dst, tmp_path / "ckpt", vlm_model=vlm_dst)
    _assert_same_weights(src, dst)
    _assert_same_weights(vlm_src, vlm_dst)
    assert not report.missing and not report.unexpected
    assert report.ignored and all(k.startswith(co.ALIAS_PREFIXES) for k in report.ignored)


def test_export_uses_original_wan_names():
    sd = co.export_official_state_dict(_model(0))
    wan = {k[len(co.WAN_PREFIX) :] for k in sd if k.startswith(co.WAN_PREFIX)}
    assert wan == set(co.wan_original_keys(2))
    # docs/checkpoint-format.md §2.1: diffusers swaps norm2/norm3; the affine cross-attn norm is
    # norm3 in Wan
    names = co.wan_original_to_diffusers_names(2)
    assert names["blocks.1.norm3.weight"] == "blocks.1.norm2.weight"
    assert names["blocks.0.self_attn.o.bias"] == "blocks.0.attn1.to_out.0.bias"
    assert names["head.modulation"] == "scale_shift_table"
    assert names["time_projection.1.weight"] == "condition_embedder.time_proj.weight"
    assert "action_expert.input_encoder.pos_embedding" in sd


def test_bf16_official_file_loads_with_cast(tmp_path):
    src, dst = _model(0), _model(1)
    sd = {k: v.to(torch.bfloat16) for k, v in co.export_official_state_dict(src).items()}
    _write_official(tmp_path / "mp_rank_00_model_states.pt", sd)
    ck.load_official_checkpoint(dst, tmp_path)
    for k, v in dst.state_dict().items():
        assert v.dtype == torch.float32
        assert torch.equal(v, src.state_dict()[k].to(torch.bfloat16).float()), k


def test_chunk_size_mismatch_names_key_shapes_and_A(tmp_path):
    _write_official(tmp_path / "m.pt", co.export_official_state_dict(_model(0)))  # A = 16
    dst = _model(1, video_action_freq_ratio=6)  # A = 48
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(ck.CheckpointMismatchError) as err:
        ck.load_official_checkpoint(dst, tmp_path / "m.pt")
    msg = str(err.value)
    assert "action_expert.input_encoder.pos_embedding" in msg
    assert "expected [1, 54, 64], found [1, 22, 64]" in msg
    assert "A 48" in msg and "A 16" in msg
    for k, v in dst.state_dict().items():  # nothing was loaded
        assert torch.equal(v, before[k]), k


def test_missing_and_unexpected_keys_are_reported(tmp_path):
    sd = co.export_official_state_dict(_model(0))
    del sd["und_expert.vlm_adapter.0.bias"]
    sd["action_expert.lora_A.weight"] = torch.zeros(2)
    sd["vlm_model.model.language_model.norm.weight"] = torch.ones(4)
    with pytest.raises(KeyError, match="und_expert.vlm_adapter.0.bias"):
        ck.load_official_state_dict(_model(1), sd)
    report = ck.load_official_state_dict(_model(1), sd, strict=False)
    assert report.missing == ["und_expert.vlm_adapter.0.bias"]
    assert report.unexpected == ["action_expert.lora_A.weight"]
    assert "vlm_model.model.language_model.norm.weight" in report.ignored  # no VLM given


def test_stage1_wan_safetensors_in_original_layout(tmp_path):
    src, dst = _model(0), _model(1)
    sd = co.export_official_state_dict(src)
    wan = {
        "dit." + k[len(co.WAN_PREFIX) :]: v.contiguous()
        for k, v in sd.items()
        if k.startswith(co.WAN_PREFIX)
    }
    save_file(wan, str(tmp_path / "diffusion_pytorch_model.safetensors"))
    report = ck.load_wan_stage1(dst, tmp_path)
    assert report.loaded == len(wan)
    _assert_same_weights(src.video_model, dst.video_model)


def test_wan22_vae_original_layout_round_trip(tmp_path):
    torch.manual_seed(0)
    vae = MotusVAE(VAEConfig.tiny())
    orig = co.export_wan22_vae(vae)
    # Wan2.2 WanVAE_ names (docs/checkpoint-format.md §6): nested (down|up)samples, resample after
    # the res blocks
    assert "encoder.downsamples.1.downsamples.1.resample.1.weight" in orig
    assert "encoder.downsamples.1.downsamples.1.time_conv.weight" in orig
    assert "decoder.upsamples.0.upsamples.2.resample.1.weight" in orig
    assert "encoder.middle.1.to_qkv.weight" in orig and "conv2.weight" in orig
    torch.save(orig, tmp_path / "Wan2.2_VAE.pth")
    loaded = ck.load_wan22_vae(tmp_path / "Wan2.2_VAE.pth", VAEConfig.tiny())
    _assert_same_weights(vae, loaded)
    x = torch.rand(1, 3, 1, 32, 32)
    torch.testing.assert_close(loaded.encode(x), vae.encode(x))


def test_wan22_vae_shape_mismatch(tmp_path):
    orig = co.export_wan22_vae(MotusVAE(VAEConfig.tiny()))
    orig["encoder.conv1.weight"] = torch.zeros(1, 12, 3, 3, 3)
    with pytest.raises(ck.CheckpointMismatchError, match="encoder.conv_in.weight: expected"):
        ck.load_wan22_vae(orig, VAEConfig.tiny())


def test_wan_t5_names_cover_umt5():
    torch.manual_seed(0)
    hf = tiny_umt5(vocab_size=100, d_model=64)
    wan = {
        "token_embedding.weight": hf.shared.weight,
        "norm.weight": hf.encoder.final_layer_norm.weight,
    }
    inv = {v: k for k, v in co._T5_BLOCK.items()}
    for k, v in hf.state_dict().items():
        if k.startswith("encoder.block."):
            n, rest = k.split(".")[2], ".".join(k.split(".")[3:])
            wan[f"blocks.{n}.{inv[rest]}"] = v
    fresh = tiny_umt5(vocab_size=100, d_model=64)
    report = ck.load_into(fresh, co.convert_wan_t5_to_hf(wan), where="t5")
    assert not report.missing
    _assert_same_weights(hf, fresh)
