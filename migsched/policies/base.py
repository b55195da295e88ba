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

MAX_EPISODE_STEPS = 100_000


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


def run_episode(env: MigSchedEnv, policy: Policy, seed: int | None = None, options: dict[str, Any] | None = None) -> EpisodeResult:
    """Reset `env` with `seed` and `options`, then let `policy` play the episode to its end."""
    env.reset(seed=seed, options=options)
    policy.reset(env, seed)
    for _ in range(MAX_EPISODE_STEPS):
        _, _, terminated, _, info = env.step(policy.act(env))
        if terminated:
            return EpisodeResult(info["makespan"], info["lower_bound"], info["makespan_levels"], tuple(env.decision_log), env.schedule())
    raise RuntimeError(f"{policy.name} did not finish an episode within {MAX_EPISODE_STEPS} steps")


class RandomPolicy(Policy):
    """Uniform over the valid actions, from its own generator seeded at `reset`."""

    name = "random"

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, env: MigSchedEnv) -> int:
        return int(self._rng.choice(np.flatnonzero(env.action_masks())))
