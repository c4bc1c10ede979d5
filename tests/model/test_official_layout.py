"""Full-size export matches the official checkpoint layout key for key (docs/checkpoint-format.md
§2-4), built on the meta device (no memory)."""

import torch

from motus_policy.model import MotusConfig, MotusModel
from motus_policy.model.convert_official import export_official_state_dict

D, FFN, L = 3072, 14336, 30  # Wan2.2-TI2V-5B (docs/checkpoint-format.md §2)
DA, DU = 1024, 512  # action / understanding expert widths (docs/checkpoint-format.md §3, §4)


def _expected(a: int) -> dict[str, tuple[int, ...]]:
    """The tables of docs/checkpoint-format.md §2 (Wan), §3 (action expert, finetune), §4 (und)."""
    w = "video_model.wan_model."
    e = {
        w + "patch_embedding.weight": (D, 48, 1, 2, 2), w + "patch_embedding.bias": (D,),
        w + "text_embedding.0.weight": (D, 4096), w + "text_embedding.0.bias": (D,),
        w + "text_embedding.2.weight": (D, D), w + "text_embedding.2.bias": (D,),
        w + "time_embedding.0.weight": (D, 256), w + "time_embedding.0.bias": (D,),
        w + "time_embedding.2.weight": (D, D), w + "time_embedding.2.bias": (D,),
        w + "time_projection.1.weight": (6 * D, D), w + "time_projection.1.bias": (6 * D,),
        w + "head.modulation": (1, 2, D), w + "head.head.weight": (192, D),
        w + "head.head.bias": (192,),
    }  # fmt: skip
    for n in range(L):
        b = f"{w}blocks.{n}."
        e[b + "modulation"] = (1, 6, D)
        for att in ("self_attn", "cross_attn"):
            for p in "qkvo":
                e[f"{b}{att}.{p}.weight"], e[f"{b}{att}.{p}.bias"] = (D, D), (D,)
            e[f"{b}{att}.norm_q.weight"] = e[f"{b}{att}.norm_k.weight"] = (D,)
        e[b + "norm3.weight"] = e[b + "norm3.bias"] = (D,)
        e[b + "ffn.0.weight"], e[b + "ffn.0.bias"] = (FFN, D), (FFN,)
        e[b + "ffn.2.weight"], e[b + "ffn.2.bias"] = (D, FFN), (D,)
    x = "action_expert."
    for enc, din in (("state_encoder", 14), ("action_encoder", 14)):
        for i, fan_in in ((0, din), (2, DA), (4, DA)):
            e[f"{x}input_encoder.{enc}.{i}.weight"] = (DA, fan_in)
            e[f"{x}input_encoder.{enc}.{i}.bias"] = (DA,)
    e[x + "input_encoder.pos_embedding"] = (1, a + 6, DA)
    e[x + "time_embedding.0.weight"], e[x + "time_embedding.0.bias"] = (DA, 256), (DA,)
    e[x + "time_embedding.2.weight"], e[x + "time_embedding.2.bias"] = (DA, DA), (DA,)
    e[x + "time_projection.1.weight"], e[x + "time_projection.1.bias"] = (6 * DA, DA), (6 * DA,)
    e[x + "registers"] = (1, 4, DA)
    e[x + "decoder.modulation"] = (1, 2, DA)
    e[x + "decoder.action_head.0.weight"], e[x + "decoder.action_head.0.bias"] = (14, DA), (14,)
    u = "und_expert."
    for i, fan_in in ((0, 2048), (2, DU), (4, DU)):
        e[f"{u}vlm_adapter.{i}.weight"], e[f"{u}vlm_adapter.{i}.bias"] = (DU, fan_in), (DU,)
    for n in range(L):
        for pre, width, tag in ((x, DA, "action"), (u, DU, "und")):
            b = f"{pre}blocks.{n}."
            e[f"{b}wan_{tag}_qkv"] = (3, 24, width, 128)
            e[f"{b}wan_{tag}_o.weight"] = (width, D)
            e[f"{b}wan_{tag}_norm_q.weight"] = e[f"{b}wan_{tag}_norm_k.weight"] = (D,)
            e[f"{b}ffn.0.weight"], e[f"{b}ffn.0.bias"] = (4 * width, width), (4 * width,)
            e[f"{b}ffn.2.weight"], e[f"{b}ffn.2.bias"] = (width, 4 * width), (width,)
        e[f"{x}blocks.{n}.modulation"] = (1, 6, DA)
    return e


def test_full_size_export_has_exactly_the_official_keys_and_shapes():
    with torch.device("meta"):
        model = MotusModel(MotusConfig.from_preset("robotwin"))  # A = 16
    got = {k: tuple(v.shape) for k, v in export_official_state_dict(model).items()}
    want = _expected(16)
    assert sorted(set(want) - set(got)) == [], "missing official keys"
    assert sorted(set(got) - set(want)) == [], "keys the official layout does not have"
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert wrong == {}
