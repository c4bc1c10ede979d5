"""The latent-action VAE: shapes, eq. 2's terms, the labeled-only alignment, the 90/10 sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from motus_policy.latent_action.trainer import LatentActionTrainConfig, MixedSampler
from motus_policy.latent_action.vae import LatentActionVAE, LatentActionVAEConfig


@pytest.fixture(scope="module")
def vae() -> LatentActionVAE:
    torch.manual_seed(0)
    return LatentActionVAE(LatentActionVAEConfig.tiny())


def _batch(b: int = 4, s: int = 32):
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, 3, s, s, generator=g) * 2 - 1, torch.randn(b, 14, generator=g)


def test_tiny_shapes_through_the_14d_bottleneck(vae):
    x, _ = _batch()
    tokens = vae.tokens(x)
    assert tokens.shape == (4, 4, 64)  # 4 tokens (paper §4.2), 64 wide in the tiny preset
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (4, 14)
    assert vae.decode(mean).shape == (4, 3, 32, 32)
    # the token reshape is the DC-AE latent's 2 x 2 quadrants, exactly invertible
    lat = vae.dcae.encode(x).latent
    torch.testing.assert_close(vae.untokens(vae.tokens(x)), lat, rtol=0, atol=0)
    assert torch.equal(tokens[:, 0], lat[:, :, :4, :4].flatten(1))  # top-left quadrant


def test_full_preset_is_four_tokens_of_512_from_a_32x8x8_latent():
    cfg = LatentActionVAEConfig.full()
    assert (cfg.image_size_px, cfg.latent_side, cfg.latent_channels) == (256, 8, 32)
    assert cfg.quadrant_values == cfg.token_dim == 512 and cfg.action_dim == 14
    assert (cfg.lambda_a, cfg.beta) == (1.0, 1e-6)  # Table 11
    with torch.device("meta"):
        model = LatentActionVAE(cfg)
    assert isinstance(model.token_in, torch.nn.Identity)  # no projection needed at full size
    assert model.action_encoder[0].in_features == 4 * 512
    assert model.action_head().out_features == 2 * 14


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(image_size_px=30), "multiple of the DC-AE downsampling"),
        (dict(block_types=("ResBlock",)), "block_types: expected 3 entries"),
        (dict(beta=-1.0), "lambda_a/beta"),
        (dict(token_dim=0), "token_dim"),
        (dict(image_size_px=4), "even"),
    ],
)
def test_config_rejects_bad_fields(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LatentActionVAEConfig.tiny(**kwargs)


def test_bad_input_shapes_are_named(vae):
    with pytest.raises(ValueError, match=r"images: expected \[B, 3, 32, 32\]"):
        vae.encode(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="actions/labeled"):
        vae.loss(torch.zeros(2, 3, 32, 32), torch.zeros(2, 13), torch.zeros(2, dtype=torch.bool))


def test_loss_is_eq2_with_alignment_on_labeled_samples_only(vae):
    x, a = _batch()
    labeled = torch.tensor([True, False, True, False])
    a[~labeled] = float("nan")  # unlabeled rows may hold anything
    vae.train()
    terms = vae.loss(x, a, labeled, torch.Generator().manual_seed(3))
    out = vae(x, torch.Generator().manual_seed(3))
    recon = torch.mean((out.recon - x) ** 2)
    align = ((out.mean[labeled] - a[labeled]) ** 2).sum(-1).mean()
    kl = 0.5 * (out.mean**2 + out.logvar.exp() - 1 - out.logvar).sum(-1).mean()
    torch.testing.assert_close(terms.recon, recon)
    torch.testing.assert_close(terms.align, align)
    torch.testing.assert_close(terms.kl, kl)
    torch.testing.assert_close(terms.loss, recon + 1.0 * align + 1e-6 * kl)
    assert terms.n_labeled == 2 and torch.isfinite(terms.loss)


def test_alignment_gives_the_action_head_no_gradient_on_an_unlabeled_batch(vae):
    x, a = _batch()
    head = vae.action_head()
    vae.zero_grad(set_to_none=True)
    none = torch.zeros(4, dtype=torch.bool)
    terms = vae.loss(x, torch.full_like(a, float("nan")), none)
    assert terms.n_labeled == 0 and terms.align.item() == 0.0
    (vae.config.lambda_a * terms.align).backward()
    assert head.weight.grad is not None and torch.count_nonzero(head.weight.grad) == 0
    # one labeled sample: the same term now moves the head
    vae.zero_grad(set_to_none=True)
    one = torch.tensor([True, False, False, False])
    vae.loss(x, a, one).align.backward()
    assert head.weight.grad is not None and torch.count_nonzero(head.weight.grad) > 0
    # and the full loss on the unlabeled batch reaches the head only through reconstruction
    vae.zero_grad(set_to_none=True)
    vae.eval()  # z = mean: deterministic
    t_unlab = vae.loss(x, a, none)
    (t_unlab.recon + 1e-6 * t_unlab.kl).backward()
    g_rec = head.weight.grad.clone()
    vae.zero_grad(set_to_none=True)
    vae.loss(x, a, none).loss.backward()
    torch.testing.assert_close(head.weight.grad, g_rec)
    vae.train()


def test_save_and_load_round_trip(vae, tmp_path):
    vae.eval()
    x, _ = _batch()
    folder = vae.save(tmp_path / "vae", extra={"flow": {"backend": "dis"}})
    again, extra = LatentActionVAE.load(folder)
    assert extra == {"flow": {"backend": "dis"}}
    torch.testing.assert_close(again.encode(x)[0], vae.encode(x)[0], rtol=0, atol=0)
    with pytest.raises(FileNotFoundError, match="latent_action_vae.json"):
        LatentActionVAE.load(tmp_path)


def test_sampler_mixes_ten_percent_labeled():
    labeled = np.zeros(1000, bool)
    labeled[:50] = True
    s = MixedSampler(labeled, 0.1, batch_size=32, seed=0)
    draws = np.concatenate([s.batch() for _ in range(300)])
    frac = labeled[draws].mean()
    assert 0.08 < frac < 0.12, frac
    assert set(np.unique(draws[labeled[draws]])) <= set(range(50))
    only_unlab = MixedSampler(np.zeros(10, bool), 0.1, 8, 0).batch()
    assert only_unlab.shape == (8,)
    only_lab = MixedSampler(np.ones(10, bool), 0.1, 8, 0).batch()  # no unlabeled pool
    assert only_lab.shape == (8,)
    half = MixedSampler(labeled, 0.5, 64, 1)
    assert 0.4 < labeled[np.concatenate([half.batch() for _ in range(50)])].mean() < 0.6


def test_train_config_defaults_follow_the_paper():
    cfg = LatentActionTrainConfig(data_roots=("x",))
    assert cfg.labeled_fraction == 0.1  # §4.2: 90 % unlabeled, 10 % labeled
    v = cfg.vae_config()
    assert (v.lambda_a, v.beta, v.action_dim) == (1.0, 1e-6, 14)
    with pytest.raises(ValueError, match="labeled_fraction"):
        LatentActionTrainConfig(data_roots=("x",), labeled_fraction=1.5)
    with pytest.raises(ValueError, match="data_roots"):
        LatentActionTrainConfig()
