"""Command-line options generated from the config dataclasses (motus_policy/cli/options.py)."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from motus_policy.cli import demo, train, train_vae
from motus_policy.cli import eval as eval_cli
from motus_policy.cli.options import add_options, config_kwargs, option_name
from motus_policy.evaluation.lockstep import LockstepConfig
from motus_policy.evaluation.replay import ReplayConfig
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.training.config import TrainConfig
from motus_policy.training.vae_trainer import VAETrainConfig


def _actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {a.dest: a for a in parser._actions}


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


# (parser, config, fields deliberately not options, options whose default the CLI changes)
PARSERS = [
    (train.build_parser(), TrainConfig, (), {}),
    (train_vae.build_parser(), VAETrainConfig, train_vae.PRESET_FIELDS, {"frame_stride": None}),
    (
        _subparser(eval_cli.build_parser(), "replay"),
        ReplayConfig,
        ("joint_state_staleness_s", "camera_staleness_s"),
        {"mode": "joint", "rate_hz": None},
    ),
    (_subparser(eval_cli.build_parser(), "lockstep"), LockstepConfig, ("runtime",), {}),
]


@pytest.mark.parametrize(("parser", "cls", "skipped", "changed"), PARSERS)
def test_every_config_field_is_an_option_with_its_description_and_default(
    parser, cls, skipped, changed
):
    actions = _actions(parser)
    for f in dataclasses.fields(cls):
        if f.name in skipped:
            assert f.name not in actions
            continue
        action = actions[f.name]
        description = f.metadata["description"]
        assert description and description in action.help % {"default": action.default}
        if action.required:
            continue
        want = changed[f.name] if f.name in changed else _default(f)
        assert action.default == want, f.name
        if want is not None and not isinstance(want, bool):
            assert "%(default)s" in action.help or "(default: '')" in action.help, f.name
        if "choices" in f.metadata and f.name not in ("mode",):
            assert tuple(action.choices) == tuple(f.metadata["choices"]), f.name


def test_lockstep_and_demo_take_the_runtime_fields_with_their_help():
    for parser in (_subparser(eval_cli.build_parser(), "lockstep"), demo.build_parser()):
        actions = _actions(parser)
        for name in ("strategy", "n_action_steps", "mode"):
            assert actions[name].option_strings[0] == option_name(name)
        assert actions["n_action_steps"].default == 0  # the checkpoint's recommendation
        text = parser.format_help()
        assert "--n-execute" in text and "checkpoint's recommended number" in text
        assert "rtc = real-time chunking" in text


def test_help_states_units():
    text = train.build_parser().format_help() + train_vae.build_parser().format_help()
    assert "[steps]" in text
    assert "[px]" not in text  # the preset's sizes are no options of train_vae
    lockstep = _subparser(eval_cli.build_parser(), "lockstep").format_help()
    assert "sim seconds per episode [s]" in lockstep
    assert "[Hz]" in _subparser(eval_cli.build_parser(), "replay").format_help()


def test_train_cli_keeps_its_option_names_and_builds_the_config():
    ns = train.build_parser().parse_args(
        ["--config", "tiny_f8", "--data", "a", "b", "--out", "runs/x", "--resume", "auto",
         "--no-plot", "--precompute-features", "--betas", "0.8", "0.9",
         "--recommended-n-action-steps", "12", "--action-loss-weight", "10"]
    )  # fmt: skip
    cfg = train.config_from_args(ns)
    assert (cfg.preset, cfg.data_roots, cfg.out_dir, cfg.resume) == (
        "tiny_f8",
        ("a", "b"),
        "runs/x",
        "runs/x",
    )
    assert (cfg.plot, cfg.precompute_features, cfg.preload, cfg.betas) == (
        False,
        True,
        False,
        (0.8, 0.9),
    )
    assert (cfg.recommended_n_action_steps, cfg.action_loss_weight) == (12, 10.0)
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--out", "x"])  # --data is required


def test_aliases_n_execute_and_prefix_map_to_the_new_names():
    parser = argparse.ArgumentParser()
    add_options(parser, PolicyRuntimeConfig, ("strategy", "n_action_steps"))
    ns = parser.parse_args(["--n-execute", "5", "--strategy", "prefix"])
    assert (ns.n_action_steps, ns.strategy) == (5, "rtc")
    cfg = PolicyRuntimeConfig(**config_kwargs(ns, PolicyRuntimeConfig))
    assert (cfg.n_action_steps, cfg.strategy) == (5, "rtc")
    ns = parser.parse_args(["--n-action-steps", "3", "--strategy", "rtc"])
    assert (ns.n_action_steps, ns.strategy) == (3, "rtc")
    with pytest.raises(SystemExit):
        parser.parse_args(["--strategy", "fast"])
    # the lockstep CLI and make demo accept them too
    lk = eval_cli.build_parser().parse_args(
        ["lockstep", "--checkpoint", "c", "--n-execute", "8", "--strategy", "prefix"]
    )
    assert (lk.n_action_steps, lk.strategy) == (8, "rtc")
    ns = demo.build_parser().parse_args(["--n-execute", "16", "--strategy", "prefix"])
    _, args = demo.bringup_for(ns)
    assert (args["n_action_steps"], args["strategy"]) == ("16", "rtc")


def test_demo_defaults_to_the_checkpoints_recommendation():
    ns = demo.build_parser().parse_args([])
    name, args = demo.bringup_for(ns)
    assert name == "sim" and args["n_action_steps"] == "0"
    assert ns.checkpoint == str(demo.EMBEDDED_CHECKPOINT)  # which recommends 16, as before


def test_generator_refuses_unknown_fields_and_types_without_a_command_line_form():
    with pytest.raises(KeyError, match="no field"):
        add_options(argparse.ArgumentParser(), PolicyRuntimeConfig, ("n_exec",))
    with pytest.raises(TypeError, match="camera_staleness_s"):
        add_options(argparse.ArgumentParser(), ReplayConfig, ("camera_staleness_s",))
    with pytest.raises(TypeError, match="runtime"):
        add_options(argparse.ArgumentParser(), LockstepConfig)
    with pytest.raises(TypeError, match="not a dataclass"):
        add_options(argparse.ArgumentParser(), int)


def test_replay_options_build_the_replay_config():
    ns = eval_cli.build_parser().parse_args(
        ["replay", "--bag", "b", "--every", "3", "--max-chunks", "2", "--num-steps", "4"]
    )
    kwargs = config_kwargs(ns, ReplayConfig, eval_cli.REPLAY_FIELDS)
    assert kwargs == {
        "rate_hz": None, "mode": "joint", "num_steps": 4, "instruction": "",
        "every_n_ticks": 3, "max_chunks": 2,
    }  # fmt: skip
