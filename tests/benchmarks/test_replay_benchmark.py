"""benchmarks.replay, small: writes a camera-like bag, replays it with the ``hold`` baseline in
each mode (and in joint mode with the copy-last-frame frames) and prints the real-time ratio of
each (issue #15 §9; the figures on the full 8 s bag are in benchmarks/README.md). Timing
thresholds are not asserted: this box is shared."""

from __future__ import annotations

import re

import pytest

from benchmarks.replay import main


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_replay_benchmark_prints_the_real_time_ratio_per_mode(capsys):
    assert main(["--seconds", "2.5", "--modes", "vla,joint,joint+copy"]) == 0
    out = capsys.readouterr().out
    ratios = dict(
        re.findall(r"replay \(([\w+]+), hold, mcap\): .* real-time ratio ([0-9.]+)x", out)
    )
    assert set(ratios) == {"vla", "joint", "joint+copy"}, out
    assert all(float(r) > 0 for r in ratios.values()), out
