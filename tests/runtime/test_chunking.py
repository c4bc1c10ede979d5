"""Chunk execution strategies with a fake clock: sync, temporal ensemble, rtc (RTC)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from motus_policy.runtime.chunking import ChunkScheduler
from motus_policy.types import ActionChunk

P = 40_000_000  # 25 Hz action period
T = 10_000_000_000
A = 16


def _chunk(t0, values=None, latency_ns=0):
    acts = np.tile(np.arange(A, dtype=np.float32)[:, None], (1, 14)) if values is None else values
    return ActionChunk(np.asarray(acts, np.float32), t0, P, latency_ns=latency_ns)


def _const(v):
    return np.full((A, 14), v, np.float32)


def test_sync_executes_n_then_replans_and_holds_meanwhile():
    s = ChunkScheduler("sync", P, A, n_action_steps=4)
    assert s.wants_inference(T)
    ticket, prefix = s.begin_request(T)
    assert prefix is None and not s.wants_inference(T)  # in flight
    s.add_chunk(_chunk(T), T, ticket, start=np.full(14, -1.0))
    assert s.target(T)[0] == -1.0  # anchor: the current state
    assert s.target(T + P)[0] == 0.0 and s.target(T + 4 * P)[0] == 3.0
    assert s.target(T + 2 * P + P // 2)[0] == pytest.approx(1.5)  # interpolated to control rate
    assert not s.wants_inference(T + 4 * P - 1)
    assert s.wants_inference(T + 4 * P)
    assert s.target(T + 7 * P)[0] == 3.0  # holds the n-th action, never executes action 4+


def test_sync_starts_a_late_chunk_at_its_arrival():
    """The arm held still during inference, so nothing is stale: even a chunk later than its
    n_action_steps actions is executed in full from its arrival (else the arm never moves)."""
    s = ChunkScheduler("sync", P, A, n_action_steps=4)
    ticket, _ = s.begin_request(T)
    now = T + 10 * P + P // 2  # later than all four executed actions
    assert s.add_chunk(_chunk(T), now, ticket, start=np.full(14, -1.0)) == 0
    assert s.target(now)[0] == -1.0
    assert s.target(now + P)[0] == 0.0 and s.target(now + 4 * P)[0] == 3.0
    assert not s.wants_inference(now + 4 * P - 1) and s.wants_inference(now + 4 * P)


def test_past_actions_are_dropped_not_executed_late():
    s = ChunkScheduler("rtc", P, A, n_action_steps=8)
    ticket, _ = s.begin_request(T)
    now = T + 2 * P + P // 2  # chunk arrives after actions 0 and 1 were due
    dropped = s.add_chunk(_chunk(T), now, ticket, start=np.full(14, 5.0))
    assert dropped == 2 and s.dropped_actions == 2
    stamps = s.plan_stamps_ns()
    assert stamps[0] == now and stamps[1] == T + 3 * P  # anchor, then action 2
    assert s.target(now)[0] == 5.0
    assert s.target(T + 3 * P)[0] == 2.0


def test_stale_ticket_after_reset_is_ignored():
    s = ChunkScheduler("rtc", P, A, n_action_steps=4)
    ticket, _ = s.begin_request(T)
    s.reset()
    assert s.add_chunk(_chunk(T), T, ticket) == 0
    assert s.target(T) is None and s.wants_inference(T)


def test_temporal_ensemble_weights_oldest_highest():
    m = 1.0
    s = ChunkScheduler("temporal_ensemble", P, A, ensemble_coeff=m)
    t1, _ = s.begin_request(T)
    s.add_chunk(_chunk(T, _const(1.0)), T, t1, start=np.ones(14))
    assert not s.wants_inference(T + P - 1) and s.wants_inference(T + P)  # every period
    t2, _ = s.begin_request(T + P)
    s.add_chunk(_chunk(T + P, _const(2.0)), T + P, t2)
    w = np.exp(-m * np.arange(2))  # w_0 = oldest
    expected = (w[0] * 1.0 + w[1] * 2.0) / w.sum()
    assert s.target(T + 3 * P)[0] == pytest.approx(expected)
    # after the first chunk's last action only the second covers t
    assert s.target(T + (A + 1) * P)[0] == pytest.approx(2.0)


def test_prefix_inpaints_exactly_d_committed_actions_and_d_tracks_latency():
    s = ChunkScheduler("rtc", P, A, n_action_steps=4, latency_window=2)
    ramp = np.tile(np.arange(A, dtype=np.float32)[:, None], (1, 14))
    t, prefix = s.begin_request(T)
    assert prefix is None  # nothing committed yet
    s.add_chunk(_chunk(T, ramp, latency_ns=100_000_000), T, t, start=np.zeros(14))
    # cold-start latency (100 ms) is used until a regular one exists: d = ceil(100 / 40) = 3
    obs_t = T + 4 * P
    t, prefix = s.begin_request(obs_t)
    assert s.last_d == 3 and prefix.shape == (3, 14)
    committed = [s.target(obs_t + (k + 1) * P)[0] for k in range(3)]
    np.testing.assert_allclose(prefix[:, 0], committed)
    np.testing.assert_allclose(prefix[:, 0], [4.0, 5.0, 6.0])  # actions 4, 5, 6 of the plan
    s.add_chunk(_chunk(obs_t, ramp, latency_ns=210_000_000), obs_t + 3 * P, t)
    t, prefix = s.begin_request(T + 8 * P)
    assert s.last_d == math.ceil(210 / 40) == 6 and len(prefix) == 6
    s.add_chunk(_chunk(T + 8 * P, ramp, latency_ns=50_000_000), T + 10 * P, t)
    t, prefix = s.begin_request(T + 12 * P)
    assert s.last_d == 6  # max over the window (210, 50)
    s.add_chunk(_chunk(T + 12 * P, ramp, latency_ns=50_000_000), T + 14 * P, t)
    s.begin_request(T + 16 * P)
    assert s.last_d == 2  # window now (50, 50)


def test_prefix_keeps_executing_during_inference():
    s = ChunkScheduler("rtc", P, A, n_action_steps=4)
    t, _ = s.begin_request(T)
    s.add_chunk(_chunk(T), T, t, start=np.zeros(14))
    s.begin_request(T + 4 * P)
    assert s.target(T + 6 * P)[0] == 5.0  # still following the plan, no hold


def test_n_action_steps_bound():
    with pytest.raises(ValueError, match="n_action_steps"):
        ChunkScheduler("sync", P, A, n_action_steps=A + 1)


def test_prefix_is_an_alias_of_rtc():
    s = ChunkScheduler("prefix", P, A, n_action_steps=4)
    assert s.strategy == "rtc" and s.stats(0)["strategy"] == "rtc"
