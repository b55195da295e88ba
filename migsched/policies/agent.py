"""A trained agent as a policy: its deterministic episode, as evaluation and scheduling play it."""

from __future__ import annotations

from typing import Any

from migsched.env import MigSchedEnv
from migsched.policies.base import Policy

#: After this many steps per task (plus DETERMINISTIC_EXTRA) a deterministic agent still running is
#: taken to cycle (reconfigure, wait, reconfigure back) and samples its policy instead.
DETERMINISTIC_STEPS_PER_TASK = 20
DETERMINISTIC_EXTRA = 100


def deterministic_steps(n_tasks: int) -> int:
    """How many steps of an episode of `n_tasks` tasks an agent plays deterministically."""
    return DETERMINISTIC_STEPS_PER_TASK * n_tasks + DETERMINISTIC_EXTRA


class AgentPolicy(Policy):
    """A trained MaskablePPO model: deterministic, or sampling its policy after seeding torch with `sample_seed`.

    A deterministic policy can cycle forever (reconfigure, wait, reconfigure back): after 20
    steps per task it samples from its policy for the rest of the episode, seeded, so every
    episode ends and the result stays reproducible.
    """

    name = "agent"

    def __init__(self, model: Any, sample_seed: int | None = None) -> None:
        self.model = model
        self.sample_seed = sample_seed

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        import torch

        self.steps = 0
        self.deterministic_steps = 0 if self.sample_seed is not None else deterministic_steps(len(env.state.tasks))
        torch.manual_seed(self.sample_seed if self.sample_seed is not None else (seed or 0))

    def act(self, env: MigSchedEnv) -> int:
        obs = env.encoder.encode(env.state)
        self.steps += 1
        deterministic = self.steps <= self.deterministic_steps
        action, _ = self.model.predict(obs, action_masks=env.action_masks(), deterministic=deterministic)
        return int(action)
