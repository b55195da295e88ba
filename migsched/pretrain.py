"""Behaviour cloning: of a baseline scheduler before PPO, and of the agent's own best rollouts after it.

`demonstrations` plays a baseline (static, greedy or FAR) through the version's own environment
and records what the agent would see (observation, action mask) with the baseline's action and
the return still to come. `clone` then fits the policy network to the actions (cross-entropy
over the valid actions) and the value network to those returns (squared error), so PPO starts
from the baseline's schedules and a critic that already knows what they are worth.

`imitation_demonstrations` records the agent's own best schedules instead: on each training
episode, the best of its deterministic rollout and `samples` rollouts sampled from the policy
itself (`search.search` at temperature 1, which on a training episode may see an online queue
whole). Cloning them is self-imitation: the deterministic policy moves towards what its
sampling finds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from migsched.cli import progress
from migsched.policies import make_baseline
from migsched.search import EPISODE_LANES, search_episodes
from migsched.settings import TEACHERS
from migsched.versions import make_env

#: Demonstration episodes use seeds from here, apart from evaluation's (1,000,000 on).
DEMO_SEED = 2_000_000
#: Self-imitation's episodes use seeds from here, round after round, apart from both.
IMITATION_SEED = 3_000_000


class Stopped(Exception):
    """Pretraining was asked to stop (a signal) before it finished."""


def never() -> bool:
    """A `should_stop` that never asks to stop."""
    return False


@dataclass(frozen=True)
class Demonstrations:
    """Steps of a teacher's episodes: what the agent would observe and may do, what the teacher did."""

    observations: np.ndarray
    masks: np.ndarray
    actions: np.ndarray
    returns: np.ndarray
    teacher_ratio: float
    #: Self-imitation only: the mean makespan / lower bound of the agent's deterministic rollouts of the same episodes.
    agent_ratio: float | None = None
    #: The episodes played.
    episodes: int = 0

    def __len__(self) -> int:
        return len(self.actions)


def demonstrations(
    version: str,
    env_config: dict[str, Any],
    type_tasks: str,
    teacher: str,
    episodes: int,
    should_stop: Callable[[], bool] = never,
    time_up: Callable[[], bool] = never,
) -> Demonstrations:
    """`episodes` seeded episodes of `teacher` in `version`'s environment, step by step; raises
    Stopped as soon as `should_stop()` is true after an episode, and ends early with the episodes
    played so far (at least one) once `time_up()` is true."""
    if teacher not in TEACHERS:
        raise ValueError(f"unknown teacher {teacher!r}; choose from {', '.join(TEACHERS)}")
    env = make_env(version, env_config, type_tasks)
    policy = make_baseline(teacher)
    recorder = _Recorder()
    for k in progress(range(episodes), episodes, f"clone: {teacher}'s episodes", "episode"):
        if should_stop():
            raise Stopped
        if k and time_up():
            break
        recorder.play(env, DEMO_SEED + k, lambda: policy.act(env), before=lambda seed: policy.reset(env, seed))
    return recorder.demonstrations()


def imitation_demonstrations(
    model: Any,
    version: str,
    env_config: dict[str, Any],
    type_tasks: str,
    episodes: int,
    samples: int,
    first_seed: int = IMITATION_SEED,
    seed: int = 0,
    temperature: float = 1.0,
    should_stop: Callable[[], bool] = never,
) -> Demonstrations:
    """The agent's best schedule of `episodes` seeded episodes (seeds `first_seed` on), each the
    best of its deterministic rollout and `samples` stochastic ones at `temperature`, step by step as
    `demonstrations` records a teacher's; `teacher_ratio` is their mean makespan / lower bound,
    `agent_ratio` that of the deterministic rollouts. Episode k is `search(model, env,
    samples=samples, seed=seed + k, reset_seed=first_seed + k, batch=samples,
    temperature=temperature, hindsight=True)`, played with the episodes beside it
    (`search.search_episodes`). Raises Stopped as soon as `should_stop()` is true after a group of episodes."""
    env = make_env(version, env_config, type_tasks)
    recorder, deterministic = _Recorder(), []
    per_call = max(1, EPISODE_LANES // max(1, samples))  # the episodes whose rollouts share one BatchEnv
    calls = range(0, episodes, per_call)
    for first in progress(calls, len(calls), f"self-imitation: best of {samples + 1} rollouts", f"x{per_call} episodes"):
        if should_stop():
            raise Stopped
        ks = range(first, min(first + per_call, episodes))
        found = search_episodes(model, env, [first_seed + k for k in ks], samples, [seed + k for k in ks], temperature=temperature, hindsight=True)
        for k, episode in zip(ks, found):
            deterministic.append(episode.deterministic_makespan / episode.lower_bound)
            recorder.play(env, first_seed + k, iter(episode.actions).__next__)
    return recorder.demonstrations(agent_ratio=float(np.mean(deterministic)))


class _Recorder:
    """Collects the steps of played episodes: observation, mask, action, return still to come."""

    def __init__(self) -> None:
        self.observations: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.actions: list[int] = []
        self.returns: list[float] = []
        self.ratios: list[float] = []

    def play(self, env: Any, seed: int, act: Callable[[], int], before: Callable[[int], None] | None = None) -> None:
        """Play the episode `env.reset(seed=seed)` to its end with the actions `act()` gives
        (`before(seed)` first, after the reset), recording every step."""
        obs, _ = env.reset(seed=seed)
        if before is not None:
            before(seed)
        rewards, terminated = [], False
        while not terminated:
            action = act()
            self.observations.append(obs)
            self.masks.append(env.action_masks())
            self.actions.append(action)
            obs, reward, terminated, _, info = env.step(action)
            rewards.append(reward)
        self.returns.extend(np.cumsum(rewards[::-1])[::-1])
        self.ratios.append(info["makespan_ratio"])

    def demonstrations(self, agent_ratio: float | None = None) -> Demonstrations:
        arrays = np.array(self.observations), np.array(self.masks), np.array(self.actions), np.array(self.returns, dtype=np.float32)
        return Demonstrations(*arrays, float(np.mean(self.ratios)), agent_ratio, len(self.ratios))


def clone(
    model: Any,
    data: Demonstrations,
    epochs: int,
    batch_size: int = 256,
    seed: int | None = None,
    should_stop: Callable[[], bool] = never,
    time_up: Callable[[], bool] = never,
) -> float:
    """Fit `model`'s policy to the teacher's actions and its value to the returns, with the model's
    own optimizer, for `epochs` passes (fewer, at least one, once `time_up()` is true after one);
    return the share of steps where the deterministic policy then picks the teacher's action.
    Raises Stopped as soon as `should_stop()` is true after a minibatch (the model keeps what it
    has learnt)."""
    policy = model.policy
    device = policy.device
    obs = torch.as_tensor(data.observations, device=device)
    masks = data.masks
    actions = torch.as_tensor(data.actions, device=device)
    returns = torch.as_tensor(data.returns, device=device)
    generator = np.random.default_rng(seed)
    policy.set_training_mode(True)
    for epoch in progress(range(epochs), epochs, "clone: epochs", "epoch"):
        if epoch and time_up():
            break
        order = generator.permutation(len(data))
        for start in range(0, len(order), batch_size):
            if should_stop():
                policy.set_training_mode(False)
                raise Stopped
            batch = order[start : start + batch_size]
            values, log_prob, _ = policy.evaluate_actions(obs[batch], actions[batch], action_masks=masks[batch])
            loss = -log_prob.mean() + 0.5 * torch.nn.functional.mse_loss(values.flatten(), returns[batch])
            policy.optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
            policy.optimizer.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        chosen = policy.get_distribution(obs, action_masks=masks).get_actions(deterministic=True)
    return float((chosen == actions).float().mean())
