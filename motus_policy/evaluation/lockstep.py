"""``motus-eval lockstep``: closed-loop episodes in one process, with zero-latency inference.

The policy's own runtime (:class:`~motus_policy.runtime.policy_runtime.PolicyRuntime`: observation
assembly,
chunk scheduler, interpolation, safety gate) drives
:class:`~motus_policy.robots.aloha_sim.sim.AlohaSim` on
sim time, step by step: cameras are rendered at the profile's record rate, joint states every
control step, and inference runs synchronously whenever the scheduler asks for a chunk, so the
sim waits for the model (lockstep). Nothing goes over DDS and wall-clock latency does not exist
here: this measures what the checkpoint can do, for checkpoint selection and success-vs-steps
curves. ``motus-eval sim`` / ``make demo`` measure the deployed stack (ROS graph, free-running
sim, real latency) and remain the reference figures.

Threads: one (the caller's); the runtime's worker thread is never started.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from motus_policy.backends.base import PolicyBackend
from motus_policy.evaluation.sim_eval import EpisodeOutcome
from motus_policy.robots.aloha_sim.tasks import TASKS
from motus_policy.runtime.config import PolicyRuntimeConfig
from motus_policy.runtime.policy_runtime import PolicyRuntime
from motus_recorder.profile import RobotProfile

KEEPALIVE_PERIODS = 4
"""Camera periods between renders when no inference is due: 4 x 40 ms = 0.16 s, inside the
aloha_sim profile's 0.2 s image staleness bound."""


@dataclasses.dataclass(frozen=True)
class LockstepConfig:
    """Settings of a lockstep evaluation.

    Each field's ``metadata["description"]`` is its help text (``motus-eval lockstep --help`` is
    generated from it and from :class:`PolicyRuntimeConfig`'s).

    Raises:
        ValueError: a negative episode length.
    """

    task: str = dataclasses.field(
        default="transfer_cube",
        metadata={"description": "sim task", "choices": TASKS},
    )
    episode_length_s: float = dataclasses.field(
        default=0.0,
        metadata={
            "description": "sim seconds per episode [s]; 0 = the profile's episode_length_s "
            "(8 s for transfer_cube)"
        },
    )
    runtime: PolicyRuntimeConfig = dataclasses.field(
        default_factory=PolicyRuntimeConfig,
        metadata={
            "description": "the policy runtime settings (strategy, mode, ...); instruction "
            "empty = the profile's instruction for task"
        },
    )

    def __post_init__(self) -> None:
        if not (isinstance(self.episode_length_s, int | float) and self.episode_length_s >= 0):
            raise ValueError(
                f"LockstepConfig.episode_length_s: expected >= 0, got {self.episode_length_s!r}"
            )


class LockstepEvaluator:
    """Runs policy episodes on a simulated ALOHA in lockstep (see module docstring).

    Args:
        profile: ``aloha_sim`` profile, camera sizes as rendered (``with_image_size``).
        backend: a loaded :class:`~motus_policy.backends.base.PolicyBackend`.
        config: settings.

    Raises:
        ValueError: unknown task, or a profile whose record rate does not divide the 50 Hz
            control rate.
    """

    def __init__(self, profile: RobotProfile, backend: PolicyBackend, config: LockstepConfig):
        self.profile = profile
        self.config = config
        # MuJoCo loads here, not at import: configs and ``motus-eval --help`` stay light
        from motus_policy.robots.aloha_sim.sim import CONTROL_PERIOD_NS, AlohaSim, AlohaSimConfig

        self.sim = AlohaSim(AlohaSimConfig(task=config.task), profile)
        self.period_ns = CONTROL_PERIOD_NS
        ratio = profile.control_rate_hz / profile.record_rate_hz
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"profile {profile.name}: record_rate_hz {profile.record_rate_hz} must divide "
                f"control_rate_hz {profile.control_rate_hz}"
            )
        self.camera_every = round(ratio)
        extras = profile.extras
        length_s = config.episode_length_s or float(extras["episode_length_s"][config.task])
        self.steps = round(length_s * 1e9 / self.period_ns)
        rc = config.runtime
        if not rc.instruction:
            rc = dataclasses.replace(rc, instruction=extras["instructions"][config.task])
        self._now_ns = 0
        self.runtime = PolicyRuntime(profile, rc, backend, lambda: self._now_ns)

    def run_episode(self, seed: int) -> EpisodeOutcome:
        """One episode from ``sim.reset(seed)``; returns its outcome (success, max reward...).

        Raises:
            RuntimeError: a tick had no command at all (nothing safe was ever sent, e.g. the
                first chunk was rejected); holds that republish the last command are counted
                by the runtime (``runtime.holds``) and do not stop the episode.
        """
        sim, rt = self.sim, self.runtime
        t0 = time.monotonic()
        sim.reset(seed)
        self._now_ns = sim.sim_time_ns
        rt.backend.reset()
        self._observe(0)
        rt.activate(self._now_ns, start_worker=False)
        curve: list[tuple[float, float]] = [(0.0, float(sim.reward()))]
        done_at_s = None
        for k in range(self.steps):
            rt.worker.run_once()
            res = rt.tick(self._now_ns)
            if res.command is None:
                raise RuntimeError(f"seed {seed}, step {k}: the runtime held: {res.reason}")
            reward = float(sim.step(res.command))
            t_s = (k + 1) * self.period_ns / 1e9
            if reward != curve[-1][1]:
                curve.append((t_s, reward))
            if done_at_s is None and sim.success:
                done_at_s = t_s
            self._now_ns = sim.sim_time_ns
            self._observe(k + 1)
        rt.deactivate()
        return EpisodeOutcome(
            seed=seed,
            success=bool(sim.success),
            max_reward=max(r for _, r in curve),
            sim_duration_s=done_at_s
            if done_at_s is not None
            else self.steps * self.period_ns / 1e9,
            wall_duration_s=time.monotonic() - t0,
            reward_curve=tuple(curve),
        )

    def _observe(self, k: int) -> None:
        """Feed the runtime's assembler: joint states every step, cameras at the record rate.

        Rendering is most of the cost, so a camera period renders only when the scheduler is
        about to ask for a chunk (the model always sees a frame of this instant) or every
        :data:`KEEPALIVE_PERIODS`-th period (so the frame-staleness watchdog stays satisfied).
        """
        q = self.sim.qpos14()
        rt = self.runtime
        rt.assembler.update_joints("left", q[:7], self._now_ns)
        rt.assembler.update_joints("right", q[7:], self._now_ns)
        if k % self.camera_every:
            return
        due = rt.worker.enabled and rt.scheduler.wants_inference(self._now_ns)
        if due or k == 0 or (k // self.camera_every) % KEEPALIVE_PERIODS == 0:
            for name, img in self.sim.render().items():
                rt.assembler.update_image(name, img, self._now_ns)

    def close(self) -> None:
        """Release the simulator."""
        self.runtime.close()
        self.sim.close()


def run_lockstep(
    evaluator: LockstepEvaluator,
    seeds: Sequence[int],
    on_episode: Callable[[EpisodeOutcome], None] | None = None,
) -> list[EpisodeOutcome]:
    """Run one episode per seed; ``on_episode`` sees each outcome as it completes.

    Raises:
        RuntimeError: from :meth:`LockstepEvaluator.run_episode`.
    """
    out = []
    for seed in seeds:
        res = evaluator.run_episode(int(seed))
        out.append(res)
        if on_episode is not None:
            on_episode(res)
    return out
