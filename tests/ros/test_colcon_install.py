"""A plain `colcon build` (no --symlink-install) of ros2_ws runs: nodes from install/, data from
the install space's share/motus_policy, the trained embedded checkpoint moving the simulated arm.

The install space comes from tests/fakes/colcon.py (colcon from PyPI, the package copied out of
the repository so the installed code cannot fall back to the source tree). The nodes run their
installed executables (install/motus_policy/lib/motus_policy/<name>, as `ros2 run` does).
"""

from __future__ import annotations

import pytest


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_plain_colcon_install_runs_the_sim_bringup(ros_env, colcon_install, tmp_path):
    inst = colcon_install
    assert "would be ignored" not in inst.build_output  # setup.py packaging warnings
    assert not (inst.share / "config").is_symlink()  # a copy, not a symlink install
    assert (inst.share / "checkpoints" / "aloha_sim_tiny" / "model.safetensors").is_file()
    for launch_file in ("sim.launch.py", "aloha.launch.py", "record_sim.launch.py"):
        assert (inst.share / "launch" / launch_file).is_file()
    for exe in inst.executables.iterdir():  # `#!/usr/bin/env python3`, not colcon's own venv
        assert exe.read_text().startswith("#!/usr/bin/env python3\n"), exe

    from benchmarks.closed_loop import run_check
    from motus_policy.bringup.runner import bringup_env

    (rep,) = run_check(
        4.0,
        ("sync",),
        {"image_height": "120", "image_width": "160"},  # checkpoint: the bring-up's default
        log_dir=str(tmp_path / "logs"),
        share_dir=str(inst.share),
        runner_kwargs={"env": inst.env(bringup_env()), "executable_dir": inst.executables},
    )
    policy_log = (tmp_path / "logs" / "motus_policy.log").read_text()
    # the policy node ran the installed code on the checkpoint installed in the share
    ckpt = inst.share / "checkpoints" / "aloha_sim_tiny"
    assert f"loading Motus checkpoint {ckpt}" in policy_log
    assert rep.unsafe_commands == 0, rep.row()
    assert rep.commands >= 0.5 * 4.0 * 50, rep.row()
    assert rep.arm_travel_rad > 0.05, rep.row()  # the trained checkpoint moved the arms
    assert rep.status.get("chunks", 0) >= 2, rep.row()
