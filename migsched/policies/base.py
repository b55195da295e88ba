"""What every baseline scheduler shares: it acts through a version's `SchedEnv`.

A policy sees the environment (its `state`, a `SchedState`, and `action_masks()`) and returns
one valid action at a time, so every policy's makespan is measured by the same real-time
replay as the agents'. `run_episode` plays one seeded episode with a policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from migsched.env import MigSchedEnv
from migsched.replay import Schedule
from migsched.state import Decision

#: run_episode's cap on an episode of n tasks: BASE_EPISODE_STEPS + STEPS_PER_TASK * n steps. Every
#: task is run once and random play takes about 3 steps per task, so a policy still going then
#: cycles (e.g. reconfigures back and forth); the cap grows with a long online task list.
BASE_EPISODE_STEPS = 100_000
STEPS_PER_TASK = 1_000


class Policy:
    """A scheduler acting in a `SchedEnv`: `reset` after each `env.reset`, then `act` until the end."""

    name = "policy"

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        """Prepare for the episode the environment has just started (plan it, seed a generator)."""

    def act(self, env: MigSchedEnv) -> int:
        """A valid action in the environment's current state."""
        raise NotImplementedError


@dataclass(frozen=True)
class EpisodeResult:
    """One finished episode: its real makespan, lower bound and ratio, and how it got there."""

    makespan: float
    lower_bound: float
    makespan_levels: float
    log: tuple[Decision, ...]
    schedule: Schedule

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the measures, the decisions and the replayed schedule."""
        return {
            "makespan": self.makespan,
            "lower_bound": self.lower_bound,
            "ratio": self.ratio,
            "makespan_levels": self.makespan_levels,
            "decisions": [decision._asdict() for decision in self.log],
            "schedule": self.schedule.to_dict(),
        }


def max_episode_steps(n_tasks: int) -> int:
    """The most steps run_episode lets a policy take on an episode of `n_tasks` tasks."""
    return BASE_EPISODE_STEPS + STEPS_PER_TASK * n_tasks


def run_episode(env: MigSchedEnv, policy: Policy, seed: int | None = None, options: dict[str, Any] | None = None) -> EpisodeResult:
    """Reset `env` with `seed` and `options`, then let `policy` play the episode to its end."""
    env.reset(seed=seed, options=options)
    policy.reset(env, seed)
    n_tasks = len(env.state.tasks)
    cap = max_episode_steps(n_tasks)
    for _ in range(cap):
        _, _, terminated, _, info = env.step(policy.act(env))
        if terminated:
            return EpisodeResult(info["makespan"], info["lower_bound"], info["makespan_levels"], tuple(env.decision_log), env.schedule())
    raise RuntimeError(
        f"{policy.name} did not finish an episode of {n_tasks} tasks within {cap} steps ({BASE_EPISODE_STEPS} + {STEPS_PER_TASK} per task): it cycles"
    )


class RandomPolicy(Policy):
    """Uniform over the valid actions, from its own generator seeded at `reset`."""

    name = "random"

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, env: MigSchedEnv) -> int:
        return int(self._rng.choice(np.flatnonzero(env.action_masks())))
