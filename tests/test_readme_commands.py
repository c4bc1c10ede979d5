"""Every command in README.md's ``bash`` blocks runs as written, bounded (issue #15 §2).

The commands are read from the README itself. :data:`TABLE` maps each (a regular expression
matched against the whole command) to what the test does with it: run it with bounding edits
(fewer episodes / steps / seconds, placeholders filled in) or skip it with the reason. A README
command with no entry, or with more than one, fails :func:`test_every_readme_command_has_one_entry`
(fast), so a new command cannot go untested silently.
:func:`test_readme_commands_run_in_order` (slow) runs the commands in README order, each in
``bash``, in one test and one workspace laid out as the
README assumes (``.venv`` linked to this checkout's, ``data/sim`` a tiny dataset with one task
folder ``transfer_cube`` and its UMT5-sized embeddings), so later commands use what earlier ones
wrote (``runs/tiny``, ``runs/vae/encoders``, ``outputs/*/sim_eval.json``). ``make`` targets run
in this checkout (``make -C``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EMBEDDED_CKPT = REPO / "motus_policy" / "checkpoints" / "aloha_sim_tiny"


def readme_commands(text: str | None = None) -> list[str]:
    """Commands of README.md's ``bash`` blocks: ``\\`` continuations joined, comments dropped."""
    text = (REPO / "README.md").read_text() if text is None else text
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            cmd = re.sub(r"\s+#.*$", "", line).strip()
            if cmd and not cmd.startswith("#"):
                out.append(re.sub(r"\s+", " ", cmd))
    return out


@dataclass(frozen=True)
class Entry:
    """How one README command is tested.

    Attributes:
        pattern: regular expression, matched against the whole command.
        edits: (regex, replacement) pairs applied to the command, in order (placeholders such
            as CKPT, bounding such as ``--episodes 50`` -> ``--episodes 1``).
        append: arguments added at the end (bounding, output folders).
        exempt: reason the command is not run (GPU, real hardware, user weights, the suite
            itself); empty = it runs.
        timeout_s: limit for the bounded run.
    """

    pattern: str
    edits: tuple[tuple[str, str], ...] = ()
    append: str = ""
    exempt: str = ""
    timeout_s: float = 300.0

    def bounded(self, command: str, ws: Path) -> str:
        """The command as run: edits applied, ``{ws}`` / ``{repo}`` / ``{ckpt}`` filled in."""
        for pattern, repl in self.edits:
            command, n = re.subn(pattern, repl, command)
            assert n, f"edit {pattern!r} found nothing in {command!r}: update the table"
        command = f"{command} {self.append}".strip()
        return command.format(ws=ws, repo=REPO, ckpt=EMBEDDED_CKPT)


TRAIN_TINY = "--config tiny --data data/sim/transfer_cube --out runs/tiny"
STEPS = "--max-steps 2 --batch-size 2 --log-every 1"
TABLE: tuple[Entry, ...] = (
    Entry(r"make demo", edits=((r"^make demo", "make -C {repo} demo"),),
          append='DEMO_ARGS="--episodes 1 --no-video --out {ws}/outputs/demo"', timeout_s=300),
    Entry(r"make test", exempt="the test suite itself (this test is part of it)"),
    Entry(r"make test-fast", exempt="the test suite itself (this test is part of it)"),
    Entry(r"make lint", edits=((r"^make", "make -C {repo}"),)),
    Entry(r"make format", exempt="rewrites files of the checkout; make lint runs the same "
          "formatter in check mode"),
    Entry(r".*-m motus_teleop\.expert .*", edits=((r"--episodes \d+", "--episodes 1"),)),
    # up to 6 seeds for the one episode: on the loaded CI box a seed can fail for timing
    Entry(r".*-m motus_teleop\.record_demos .*", edits=((r"--episodes \d+", "--episodes 1"),),
          append="--root data/recorded --max-attempts 6", timeout_s=480),
    Entry(r".*-m motus_recorder\.cli validate data/sim"),
    Entry(r"motus-dataset embed .*\$UMT5.*", exempt="needs the user's umt5-xxl weights ($UMT5); "
          "data/sim here has embeddings of that shape already"),
    Entry(r"motus-dataset stats .*\$MOTUS.*",
          edits=((r"^motus-dataset", ".venv/bin/motus-dataset"), (r"\$MOTUS", "{ws}/motus"))),
    Entry(r"motus-dataset validate .*--official .*\$MOTUS.*",
          edits=((r"^motus-dataset", ".venv/bin/motus-dataset"), (r"\$MOTUS", "{ws}/motus"))),
    Entry(r".*-m motus_policy\.cli\.train --config tiny --data data/sim/transfer_cube "
          r"--out runs/tiny --precompute-features", append=STEPS),
    Entry(r".*-m motus_policy\.cli\.train \.\.\. --resume auto",
          edits=((r"\.\.\.", TRAIN_TINY + " --precompute-features"),),
          append="--max-steps 3 --batch-size 2"),
    Entry(r".*torchrun .*", exempt="8 GPUs and the official Motus weights (ckpt/, models/)"),
    Entry(r".*-m motus_policy\.cli\.train_vae .*", append="--max-steps 2 --batch-size 2"),
    Entry(r".*-m motus_policy\.cli\.train .*--encoders runs/vae/encoders .*",
          edits=((r"--max-steps \d+", "--max-steps 2"), (r"--batch-size \d+", "--batch-size 2"))),
    Entry(r".*-m motus_policy\.cli\.train .*--init runs/tiny_vae/final .*",
          edits=((r"--max-steps \d+", "--max-steps 2"),
                 (r"--cycle-length \d+", "--cycle-length 2"),
                 (r"--warmup-steps \d+", "--warmup-steps 1"))),
    Entry(r".*-m motus_policy\.cli\.train_latent_action .*",
          edits=((r"--max-steps \d+", "--max-steps 2"),), append="--batch-size 2"),
    Entry(r".*-m motus_policy\.cli\.train --stage 2 .*", append=STEPS),
    Entry(r".*-m motus_policy\.cli\.train .*--init runs/stage2/final .*", append=STEPS),
    Entry(r".*motus-eval replay --bag BAG .*--checkpoint CKPT.*",
          # the only checkpoint here is the sim's: its profile and a bag recorded like the sim
          edits=((r"\bBAG\b", "{ws}/bag"), (r"\bCKPT\b", "{ckpt}"),
                 (r"--profile aloha_agilex_2", "--profile aloha_sim")),
          append="--max-chunks 2 --device cpu"),
    Entry(r".*motus-eval sim .*--checkpoint CKPT.*",
          edits=((r"\bCKPT\b", "{ckpt}"), (r"--seeds \d+:\d+", "--seeds 100000:100001")),
          append="--out outputs/sim", timeout_s=400),
    Entry(r".*motus-eval table outputs/\*/sim_eval\.json"),
    Entry(r".*-m benchmarks\.node_timing .*", edits=((r"--seconds \d+", "--seconds 2"),),
          append="--setups scripted:inproc:timer"),
)  # fmt: skip


def _entry(command: str) -> list[Entry]:
    return [e for e in TABLE if re.fullmatch(e.pattern, command)]


def test_every_readme_command_has_one_entry():
    commands = readme_commands()
    assert len(commands) >= 10, commands
    missing = [c for c in commands if not _entry(c)]
    twice = [c for c in commands if len(_entry(c)) > 1]
    assert not missing, f"README commands with no entry in TABLE (add one): {missing}"
    assert not twice, f"README commands matched by several TABLE entries: {twice}"
    unused = [e.pattern for e in TABLE if not any(re.fullmatch(e.pattern, c) for c in commands)]
    assert not unused, f"TABLE entries for commands no longer in README (remove them): {unused}"


def test_readme_extraction_joins_continuations_and_drops_comments():
    text = "x\n```bash\nmake a   # note\n# only a comment\npython -m b --x 1 \\\n    --y 2\n```\n"
    assert readme_commands(text) == ["make a", "python -m b --x 1 --y 2"]


@pytest.fixture
def workspace(tmp_path_factory) -> Path:
    """The folder the commands run in, laid out as the README assumes (see module docstring)."""
    from benchmarks.replay import write_bench_bag
    from tests.fakes.datasets import write_tiny_dataset

    ws = tmp_path_factory.mktemp("readme")
    (ws / ".venv").symlink_to(REPO / ".venv")
    (ws / "data").mkdir()
    root = write_tiny_dataset(ws / "data" / "sim", with_embeddings=True)
    (root / "tiny_task").rename(root / "transfer_cube")
    (ws / "motus" / "data" / "utils").mkdir(parents=True)
    (ws / "motus" / "data" / "utils" / "stat.json").write_text(json.dumps({}))
    write_bench_bag(ws / "bag", "aloha_sim", 3.0, 50.0)
    return ws


def _runnable() -> list[tuple[int, str]]:
    return [(i, c) for i, c in enumerate(readme_commands()) if _entry(c)]


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_readme_commands_run_in_order(workspace, ros_env):
    """Every runnable README command, in README order, in one test: later commands use what
    earlier ones wrote, so they must share one workspace and one worker (a parametrized test
    was split across xdist workers). ``ros_env``: a DDS domain of its own, so a graph a command
    starts (record_demos, make demo, motus-eval sim) never meets another test's nodes."""
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    failures, ran, exempt = [], 0, []
    for index, command in _runnable():
        (entry,) = _entry(command)
        if entry.exempt:
            exempt.append(command)
            continue
        run = entry.bounded(command, workspace)
        try:
            res = subprocess.run(
                ["bash", "-c", run], cwd=workspace, env=env, capture_output=True, text=True,
                timeout=entry.timeout_s,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            failures.append(
                f"#{index}: {command}\nran: {run}\ntimed out after {entry.timeout_s} s"
            )
            continue
        ran += 1
        if res.returncode != 0:
            out = res.stdout[-2000:] + res.stderr[-3000:]
            failures.append(f"#{index}: {command}\nran: {run}\nexit {res.returncode}\n{out}")
    print(f"{ran} README commands ran, {len(exempt)} exempt")
    assert not failures, "\n\n".join(failures)
    assert ran >= 15 and shutil.which("bash")
