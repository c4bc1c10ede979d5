"""`python -m motus_policy.model.inspect`: parameter counts and the official key layout, built on
the meta device, checked against the full-size figures, the documented layout and the golden
fixture of the official code (issue #16 §1)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from motus_policy.model.inspect import main
from tests.model.test_golden import VARIANTS, fixture, golden_config
from tests.model.test_official_layout import _expected

# Full-size parameter counts (issue #16 §1); the pretrain expert lacks the state encoder and
# the registers: 641527822 - (14·1024 + 1024 + 2·(1024² + 1024)) - 4·1024 = 639409166.
FULL = {"video": 4999787712, "action": 641527822, "und": 253493760}
GOLDEN_SET = [  # tiny preset -> the golden fixture's widths (tests/model/data/README.md)
    "head_dim=128",
    "wan_ffn_dim=256",
    "freq_dim=256",
    "action_ffn_dim=256",
    "und_ffn_dim=128",
    "vlm_hidden_size=48",
]


def run(capsys, *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def parse_keys(lines: list[str]) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in lines:
        key, dims = line.split(" ")
        out[key] = tuple(int(d) for d in dims.split(","))
    return out


@pytest.mark.parametrize("preset", ["robotwin", "aloha_agilex_2", "ac_one"])
def test_full_size_finetune_counts(capsys, preset):
    lines = run(capsys, "--config", preset, "--counts")
    want = [f"{k} {v}" for k, v in FULL.items()] + [f"total {sum(FULL.values())}"]
    assert lines == want


def test_pretrain_counts_drop_state_encoder_and_registers(capsys):
    lines = run(capsys, "--config", "latent_action")
    assert lines[:3] == ["video 4999787712", "action 639409166", "und 253493760"]


def test_tiny_counts_sum_to_the_total(capsys):
    counts = dict(line.split(" ") for line in run(capsys, "--config", "tiny", "--counts"))
    assert list(counts) == ["video", "action", "und", "total"]
    assert int(counts["total"]) == sum(int(counts[k]) for k in ("video", "action", "und")) > 0


def test_full_size_official_keys_are_the_documented_layout(capsys):
    lines = run(capsys, "--config", "robotwin", "--official-keys")
    assert "video_model.wan_model.patch_embedding.weight 3072,48,1,2,2" in lines
    assert parse_keys(lines) == _expected(16)
    assert len(lines) == len(_expected(16))


def test_counts_and_keys_together(capsys):
    lines = run(capsys, "--config", "tiny", "--counts", "--official-keys")
    assert lines[0].startswith("video ") and lines[3].startswith("total ")
    assert all(line.count(" ") == 1 for line in lines)


@pytest.mark.parametrize("name", ["robotwin", "pretrain"])
def test_official_keys_of_the_golden_config_are_the_official_codes_keys(capsys, name):
    tensors, meta = fixture()
    variant = VARIANTS[name]
    # the CLI's preset + overrides give the golden config of the fixture
    extra = ["--set", "training_mode=pretrain", "--set", "num_registers=0"] * (name == "pretrain")
    argv = ["--config", "tiny", *(a for s in GOLDEN_SET for a in ("--set", s)), *extra]
    got = parse_keys(run(capsys, *argv, "--official-keys", "--aliases"))
    want = {
        k[len("state/") :]: tuple(v.shape) for k, v in tensors.items() if k.startswith("state/")
    }
    if name == "pretrain":
        for k in meta["description"]["pretrain"]["keys_of_state_absent"]:
            del want[k]
        pos = tensors["pretrain/state/action_expert.input_encoder.pos_embedding"]
        want["action_expert.input_encoder.pos_embedding"] = tuple(pos.shape)
    want.update({a: want[c] for a, c in meta["alias_keys"].items() if c in want})
    assert got == want
    assert len(got) == meta["description"][name]["official_state_dict_keys"]
    assert golden_config(variant).head_dim == 128  # the overrides above are that config


def test_bad_override_and_unknown_preset_are_named(capsys):
    with pytest.raises(SystemExit) as err:
        main(["--config", "tiny", "--set", "hidden=3"])
    assert err.value.code == 2
    assert "MotusConfig has no field 'hidden'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", "tiny", "--set", "head_dim=7"])
    assert "head_dim" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--config", "big"])
    assert "invalid choice: 'big'" in capsys.readouterr().err


def test_runs_as_a_module_and_explains_itself(capsys):
    done = subprocess.run(
        [sys.executable, "-m", "motus_policy.model.inspect", "--config", "robotwin"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.splitlines()[:3] == [f"{k} {v}" for k, v in FULL.items()]
    with pytest.raises(SystemExit) as err:
        main(["--help"])
    assert err.value.code == 0
    help_text = capsys.readouterr().out
    assert "--official-keys" in help_text and "meta device" in help_text
