"""Training objective (docs/motus.md §2.1): noising, loss masking, gradients, overfit sanity."""

import torch

from motus_policy.model import MotusConfig, MotusModel
from motus_policy.model.losses import action_mse, training_loss, video_mse

CFG = MotusConfig.from_preset("tiny")


def make_batch(batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(
        video_latents=torch.randn(batch, *CFG.latent_shape, generator=g),
        actions=torch.rand(batch, CFG.action_chunk_size, CFG.action_dim, generator=g),
        state=torch.rand(batch, CFG.state_dim, generator=g),
        text=torch.randn(batch, 7, CFG.text_dim, generator=g),
        vlm=torch.randn(batch, 9, CFG.vlm_hidden_size, generator=g),
    )


def step_loss(model, b, seed):
    cond = model.prepare_conditioning(b["text"], b["vlm"])
    return training_loss(
        model,
        b["video_latents"],
        b["actions"],
        b["state"],
        cond,
        generator=torch.Generator().manual_seed(seed),
    )


def test_video_loss_ignores_frame_0_but_counts_it_in_the_mean():
    target = torch.zeros(1, *CFG.latent_shape)
    pred = torch.ones_like(target)
    T = CFG.num_latent_frames
    assert video_mse(pred, target).item() == torch.tensor((T - 1) / T).item()
    pred[:, :, 0] = 100.0
    assert video_mse(pred, target).item() == torch.tensor((T - 1) / T).item()
    assert action_mse(torch.ones(1, 4, 14), torch.zeros(1, 4, 14)).item() == 1.0


def test_network_input_has_clean_condition_frame_and_t_is_1000_sigma():
    torch.manual_seed(0)
    model = MotusModel(CFG)
    b = make_batch()
    seen = {}

    def hook(mod, args):
        seen["video"], seen["actions"], seen["t_v"], seen["t_a"] = args[:4]

    handle = model.register_forward_pre_hook(hook)
    try:
        out = step_loss(model, b, seed=0)
    finally:
        handle.remove()
    assert torch.equal(seen["video"][:, :, :1], b["video_latents"][:, :, :1])
    assert not torch.equal(seen["video"][:, :, 1:], b["video_latents"][:, :, 1:])
    torch.testing.assert_close(seen["t_v"], 1000.0 * out.video_sigma)
    torch.testing.assert_close(seen["t_a"], 1000.0 * out.action_sigma)
    assert not torch.equal(out.video_sigma, out.action_sigma)  # independent noise levels
    assert out.loss.item() == (out.video_loss + out.action_loss).item()


def test_gradients_reach_every_expert_and_the_adapters():
    torch.manual_seed(0)
    model = MotusModel(CFG)
    torch.nn.init.normal_(model.action_expert.decoder.action_head[0].weight, std=0.1)
    step_loss(model, make_batch(), seed=0).loss.backward()
    for name in (
        "video_model.wan_model.blocks.0.attn1.to_q.weight",
        "video_model.wan_model.condition_embedder.text_embedder.linear_1.weight",
        "action_expert.blocks.0.wan_action_qkv",
        "action_expert.input_encoder.state_encoder.0.weight",
        "und_expert.blocks.0.wan_und_qkv",
        "und_expert.vlm_adapter.0.weight",
    ):
        grad = model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_loss_decreases_when_overfitting_a_fixed_batch():
    torch.manual_seed(0)
    model = MotusModel(CFG)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.01)
    b = make_batch()
    losses = []
    for _ in range(300):
        out = step_loss(model, b, seed=0)  # same σ and noise every step: a fixed objective
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(out.loss.item())
    assert losses[-1] < 0.1 * losses[0], (losses[0], losses[-1])  # a few hundred steps: >= 90 %
