"""The linear probe of benchmarks/latent_pretrain.py (latent actions -> joint deltas)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.latent_pretrain import linear_probe_r2


def test_probe_is_one_for_a_linear_map_and_low_for_noise():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((14, 14))
    lat = [rng.standard_normal((50, 14)) for _ in range(4)]
    dq = [x @ w + 0.5 for x in lat]
    dq[0][:, 3] = dq[1][:, 3] = dq[2][:, 3] = dq[3][:, 3] = 0.0  # a joint that never moves
    r = linear_probe_r2(lat, dq)
    assert r["r2"] == pytest.approx(1.0) and (r["train_episodes"], r["test_episodes"]) == (2, 2)
    assert r["r2_per_dim"][3] is None and r["r2_per_dim"][0] == pytest.approx(1.0)
    noise = linear_probe_r2(lat, [rng.standard_normal((50, 14)) for _ in range(4)])
    assert noise["r2"] < 0.1
    with pytest.raises(ValueError, match="at least 2 episodes"):
        linear_probe_r2(lat[:1], dq[:1])
