"""Replay report: summary dict, JSON + Markdown files, PNG plots, side-by-side frame video.

Files written into the output folder (each written to a temporary name and renamed when
complete, so a crash never leaves a partial report that looks finished):

* ``replay.json``: the summary (:func:`summarize_replay`), plain JSON.
* ``replay.md``: the same for humans.
* ``joints.png``: per joint, the recorded trajectory and every n-th predicted chunk.
* ``error_vs_horizon.png``: arm-joint MAE and gripper RMSE per horizon step.
* ``frames.mp4`` (frame modes, via :class:`SideBySideVideo`): predicted | recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from motus_policy.backends.base import FRAME_MODES
from motus_policy.evaluation import metrics
from motus_policy.evaluation.replay import ReplayResult
from motus_policy.evaluation.video import Mp4Writer
from motus_recorder.profile import RobotProfile

MAX_CHUNKS_PLOTTED = 40


def _atomic_write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def summarize_replay(result: ReplayResult, profile: RobotProfile, meta: dict) -> dict:
    """JSON-ready summary of a replay.

    Args:
        result: from :func:`~motus_policy.evaluation.replay.run_replay` (>= 1 chunk).
        profile: the profile the bag was mapped with (joint names, gripper ranges).
        meta: extra fields copied in (bag path, backend, mode, ...).
    """
    pred, rec = np.asarray(result.predicted), np.asarray(result.recorded)
    errors = metrics.action_errors(pred, rec)
    thresholds = [0.5 * (a.gripper.min + a.gripper.max) for a in profile.arms]
    grip = metrics.gripper_timing(
        np.asarray(result.start_states), pred, rec, result.period_ns / 1e9, thresholds
    )
    skipped: dict[str, int] = {}
    for _, reason in result.skipped:
        skipped[reason] = skipped.get(reason, 0) + 1
    summary = {
        **meta,
        "profile": profile.name,
        "joint_names": list(profile.joint_names),
        "ticks": result.ticks,
        "chunks_compared": len(result.t0_ns),
        "action_period_s": result.period_ns / 1e9,
        "skipped": skipped,
        "first_skips": [{"t_ns": t, "reason": r} for t, r in result.skipped[:10]],
        "image_hw": {k: list(v) for k, v in result.image_hw.items()},
        "actions": errors,
        "gripper_timing": {**grip, "thresholds": thresholds},
        "latency": metrics.latency_stats(result.latencies_ns),
    }
    if result.frame_scores or result.frames_unmatched:
        ps = [p for _, p, _ in result.frame_scores]
        ss = [s for _, _, s in result.frame_scores]
        summary["frames"] = {
            "compared": len(ps),
            "unmatched": result.frames_unmatched,
            "psnr_db_mean": float(np.mean(ps)) if ps else None,
            "ssim_mean": float(np.mean(ss)) if ss else None,
            "psnr_cap_db": metrics.PSNR_CAP_DB,
        }
    return summary


def _fmt(x, spec=".4g") -> str:
    return "n/a" if x is None else format(x, spec)


def to_markdown(s: dict) -> str:
    """Markdown report of a summary from :func:`summarize_replay`."""
    a, g, lat = s["actions"], s["gripper_timing"], s["latency"]
    lines = [
        f"# Open-loop replay: {s.get('bag', '?')}",
        "",
        f"backend **{s.get('backend', '?')}**, mode `{s.get('mode', '?')}`, profile "
        f"`{s['profile']}`; {s['chunks_compared']} chunks of {a['horizon']} actions "
        f"({1e3 * s['action_period_s']:.1f} ms apart) compared over {s['ticks']} ticks.",
        "",
    ]
    integ = s.get("bag_integrity")
    if integ and not integ["ok"]:
        lines += [
            f"**WARNING: damaged bag, {integ['lost']} messages lost; these figures cover only "
            f"what could be read** ({'; '.join(integ['problems'][:3])})",
            "",
        ]
    lines += [
        "| metric | value |",
        "|---|---|",
        f"| MSE arm joints (rad²) | {_fmt(a['mse_arm_joints'])} |",
        f"| MAE arm joints (rad) | {_fmt(a['mae_arm_joints'])} |",
        f"| MSE grippers (unit²) | {_fmt(a['mse_gripper'])} |",
        f"| MAE grippers (unit) | {_fmt(a['mae_gripper'])} |",
        f"| MAE arm joints, first / last step (rad) | {_fmt(a['mae_per_step'][0])} / "
        f"{_fmt(a['mae_per_step'][-1])} |",
        f"| gripper events matched / missed / spurious | {g['matched']} / {g['missed']} / "
        f"{g['spurious']} |",
        f"| gripper timing mean / max abs error (s) | {_fmt(g['mean_abs_error_s'])} / "
        f"{_fmt(g['max_abs_error_s'])} |",
        f"| inference latency mean / p50 / p90 / max (ms) | {_fmt(lat['mean_ms'], '.1f')} / "
        f"{_fmt(lat['p50_ms'], '.1f')} / {_fmt(lat['p90_ms'], '.1f')} / "
        f"{_fmt(lat['max_ms'], '.1f')} |",
    ]
    if "frames" not in s and s.get("mode") in FRAME_MODES:
        lines.append("| frames compared | 0 (the backend predicted none) |")
    if "frames" in s:
        f = s["frames"]
        lines.append(
            f"| frames compared (unmatched) | {f['compared']} ({f['unmatched']}) |\n"
            f"| PSNR mean (dB) / SSIM mean | {_fmt(f['psnr_db_mean'], '.2f')} / "
            f"{_fmt(f['ssim_mean'], '.4f')} |"
        )
    lines += ["", "## Per joint", "", "| joint | MSE | MAE |", "|---|---|---|"]
    for name, mse, mae in zip(
        s["joint_names"], a["mse_per_joint"], a["mae_per_joint"], strict=True
    ):
        lines.append(f"| {name} | {mse:.4g} | {mae:.4g} |")
    lines += ["", "## Skipped ticks", ""]
    if s["skipped"]:
        lines += [f"- {n} x {reason}" for reason, n in s["skipped"].items()]
    else:
        lines.append("none")
    lines += ["", "![joints](joints.png)", "", "![error vs horizon](error_vs_horizon.png)", ""]
    return "\n".join(lines)


def _figure(figsize):
    """A matplotlib Figure on the Agg canvas, without pyplot (no global state, faster import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _segments(t0: np.ndarray, steps: np.ndarray, values: np.ndarray):
    """(x, y) of all chunks as one polyline broken by NaNs: one artist instead of one per chunk."""
    n, a = values.shape
    x = np.full((n, a + 1), np.nan)
    y = np.full((n, a + 1), np.nan)
    x[:, :a] = t0[:, None] + steps[None, :]
    y[:, :a] = values
    return x.reshape(-1), y.reshape(-1)


def plot_joints(result: ReplayResult, joint_names, path: Path) -> None:
    """PNG: per joint, recorded positions (black) and every n-th predicted chunk (colour)."""
    pred, rec = np.asarray(result.predicted), np.asarray(result.recorded)
    t0 = (np.asarray(result.t0_ns) - result.t0_ns[0]) / 1e9
    steps = np.arange(1, pred.shape[1] + 1) * result.period_ns / 1e9
    every = max(1, len(t0) // MAX_CHUNKS_PLOTTED)
    fig = _figure((12, 16))
    axes = fig.subplots(7, 2, sharex=True)
    states = np.asarray(result.start_states)
    for j, ax in enumerate(axes.T.reshape(-1)):
        ax.plot(t0, states[:, j], "k-", lw=1.5, label="recorded")
        # the chunk polylines are dense: drawn without antialiasing or alpha (half the
        # rendering time of this figure)
        ax.plot(*_segments(t0[::every], steps, pred[::every, :, j]), "-", lw=0.8,
                color="#f5a35c", antialiased=False, label="predicted chunks")  # fmt: skip
        ax.plot(*_segments(t0[::every], steps, rec[::every, :, j]), ":", lw=0.6, color="k",
                antialiased=False)  # fmt: skip
        ax.set_title(joint_names[j], fontsize=9, y=1.0)
    axes[0, 0].legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)")
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.04, top=0.97, hspace=0.45, wspace=0.15)
    _save(fig, path)


def plot_error_vs_horizon(summary: dict, period_s: float, path: Path) -> None:
    """PNG: arm-joint MAE and gripper RMSE against the horizon step's lead time."""
    a = summary["actions"]
    lead = np.arange(1, a["horizon"] + 1) * period_s
    fig = _figure((10, 4))
    ax = fig.subplots(1, 2)
    ax[0].plot(lead, a["mae_per_step"], "o-", ms=3)
    ax[0].set(xlabel="lead time (s)", ylabel="MAE (rad)", title="arm joints")
    ax[1].plot(lead, np.sqrt(a["mse_gripper_per_step"]), "o-", ms=3, color="C2")
    ax[1].set(xlabel="lead time (s)", ylabel="RMSE (gripper unit)", title="grippers")
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.9, wspace=0.3)
    _save(fig, path)


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.partial.png")
    fig.savefig(tmp, dpi=80, pil_kwargs={"compress_level": 1})  # fast zlib level: 3x faster
    os.replace(tmp, path)


def write_report(result: ReplayResult, profile: RobotProfile, meta: dict, out: Path) -> dict:
    """Write replay.json, replay.md and the plots into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize_replay(result, profile, meta)
    plot_joints(result, profile.joint_names, out / "joints.png")
    plot_error_vs_horizon(summary, result.period_ns / 1e9, out / "error_vs_horizon.png")
    _atomic_write(out / "replay.md", to_markdown(summary))
    _atomic_write(out / "replay.json", json.dumps(summary, indent=2))
    return summary


class SideBySideVideo(Mp4Writer):
    """MP4 of predicted | recorded frames; a ``replay.FramePairSink``."""

    def __call__(self, predicted: np.ndarray, recorded: np.ndarray, due_ns: int) -> None:
        """Append one (H, 2W, 3) frame: predicted on the left, recorded on the right."""
        self.add(np.concatenate([predicted, recorded], axis=1))
