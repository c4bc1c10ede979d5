"""MotusBackend: the real (tiny) Motus behind the PolicyBackend protocol."""

import numpy as np
import pytest

from motus_policy.backends import make_backend
from motus_policy.backends.base import PolicyBackend
from motus_policy.backends.motus import TINY_RANDOM, MotusBackend
from motus_policy.types import Observation
from motus_recorder.profile import load_profile


@pytest.fixture(scope="module")
def backend():
    b = MotusBackend(load_profile("aloha_sim"), TINY_RANDOM)
    lines = []
    b.load(progress=lines.append)
    assert any("ready" in line for line in lines)
    return b


def _obs(profile, stamp_ns=2_000_000_000):
    rng = np.random.default_rng(0)
    images = {
        c.name: rng.integers(0, 255, (c.height, c.width, 3), dtype=np.uint8)
        for c in profile.cameras
    }
    state = (profile.position_min + profile.position_max) / 2
    return Observation(images=images, state=state.astype(np.float32), stamp_ns=stamp_ns)


def test_backend_implements_the_protocol_and_predicts_a_timed_chunk(backend):
    assert isinstance(backend, PolicyBackend)
    assert backend.recommended_n_action_steps is None  # tiny-random: the whole chunk
    prof = backend.profile
    chunk = backend.infer(
        _obs(prof), mode="vla", num_steps=4, action_prefix=None, instruction="pick the cube"
    )
    assert chunk.actions.shape == (backend.chunk_size, 14)
    assert chunk.t0_ns == 2_000_000_000
    assert chunk.period_ns == round(1e9 / prof.record_rate_hz)
    assert np.all(np.isfinite(chunk.actions))
    assert chunk.frames is None  # vla decodes no frames


def test_prefix_is_inpainted_and_joint_mode_imagines_frames(backend):
    prof = backend.profile
    prefix = np.tile(((prof.position_min + prof.position_max) / 2)[None], (3, 1)).astype(
        np.float32
    )
    chunk = backend.infer(
        _obs(prof), mode="joint", num_steps=3, action_prefix=prefix, instruction=""
    )
    np.testing.assert_allclose(chunk.actions[:3], prefix, atol=1e-4)
    assert chunk.frames is not None and chunk.frames.dtype == np.uint8
    assert len(chunk.frame_stamps_ns) == len(chunk.frames)


def test_bad_checkpoint_arguments_name_the_parameter(tmp_path):
    prof = load_profile("aloha_sim")
    with pytest.raises(ValueError, match="motus.checkpoint"):
        MotusBackend(prof, "")
    with pytest.raises(FileNotFoundError, match="no checkpoint folder"):
        make_backend("motus", profile=prof, checkpoint=str(tmp_path / "missing"), device="cpu")


def test_idm_takes_future_frames_at_the_declared_offsets(backend):
    prof = backend.profile
    offsets = backend.video_frame_offsets_ns
    cfg = backend.policy.model.config
    assert len(offsets) == cfg.num_video_frames
    period = round(1e9 / backend.action_rate_hz)
    assert offsets[0] == cfg.video_action_freq_ratio * period  # frame j at (j+1) r periods
    frames = np.zeros((len(offsets), 72, 64, 3), np.uint8)  # composites, any size
    chunk = backend.infer(
        _obs(prof),
        mode="idm",
        num_steps=2,
        action_prefix=None,
        instruction="",
        future_frames=frames,
    )
    assert chunk.actions.shape == (backend.chunk_size, 14) and np.all(np.isfinite(chunk.actions))


def test_embedded_checkpoint_recommends_its_whole_chunk_before_loading():
    from motus_policy.cli.demo import EMBEDDED_CHECKPOINT

    b = MotusBackend(load_profile("aloha_sim"), str(EMBEDDED_CHECKPOINT))
    assert b.policy is None
    assert b.recommended_n_action_steps == b.chunk_size == 16


def test_dtype_runs_the_official_precision_and_bad_names_are_refused():
    """motus.dtype (issue #16 §2): bf16 matrices, fp32 time MLPs / AdaLN tables, unrounded RoPE,
    and the bf16 sampling grid; ``auto`` is fp32 on CPU."""
    import torch

    from motus_policy.model.sampler import MotusSampler

    prof = load_profile("aloha_sim")
    assert MotusBackend(prof, TINY_RANDOM, device="cpu").dtype == torch.float32  # auto on CPU
    with pytest.raises(ValueError, match="motus.dtype"):
        MotusBackend(prof, TINY_RANDOM, dtype="fp16")
    b = MotusBackend(prof, TINY_RANDOM, device="cpu", dtype="bfloat16")
    lines = []
    b.load(progress=lines.append)
    assert any("bfloat16" in line for line in lines)
    model = b.policy.model
    assert model.compute_dtype == torch.bfloat16
    assert model.action_expert.time_embedding[0].weight.dtype == torch.float32
    assert model.video_model.wan_model.blocks[0].scale_shift_table.dtype == torch.float32
    assert all(buf.dtype != torch.bfloat16 for buf in model.video_model.wan_model.rope.buffers())
    assert b.policy.text_encoder.model.dtype == torch.bfloat16
    assert MotusSampler(model).schedule.bf16
    chunk = b.infer(_obs(prof), mode="vla", num_steps=2, action_prefix=None, instruction="go")
    assert chunk.actions.dtype == np.float32 and np.all(np.isfinite(chunk.actions))
