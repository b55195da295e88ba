"""Behaviour cloning: the teacher's episodes are recorded faithfully and cloning moves the agent towards them."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO

from migsched.policies import make_baseline
from migsched.policies.base import run_episode
from migsched.pretrain import DEMO_SEED, clone, demonstrations, imitation_demonstrations
from migsched.search import search
from migsched.versions import make_env

CONFIG = {"N": 3, "M": 5}


@pytest.mark.parametrize("version", ["one_hot", "direct_reconfig", "online"])
def test_demonstrations_record_the_teachers_valid_actions_and_returns(version: str) -> None:
    config = CONFIG | ({"queue_len": 6} if version == "online" else {})
    data = demonstrations(version, config, "mix_scaling_soft", "greedy", episodes=4)
    assert data.masks[np.arange(len(data)), data.actions].all()
    env = make_env(version, config, "mix_scaling_soft")
    assert data.observations.shape == (len(data), *env.observation_space.shape)
    episodes = [run_episode(env, make_baseline("greedy"), seed=DEMO_SEED + k) for k in range(4)]
    assert len(data) == sum(len(e.log) for e in episodes)
    assert data.teacher_ratio == pytest.approx(statistics.mean(e.ratio for e in episodes))
    # the return still to come at each episode's first step is minus its makespan in levels
    firsts = np.cumsum([0] + [len(e.log) for e in episodes[:-1]])
    assert data.returns[firsts] == pytest.approx([-e.makespan_levels for e in episodes])


def test_unknown_teacher_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown teacher 'cpsat'"):
        demonstrations("float", CONFIG, "good_scaling", "cpsat", episodes=1)


def test_cloning_makes_the_agent_follow_the_teacher_and_value_its_returns() -> None:
    torch.manual_seed(0)
    data = demonstrations("float", CONFIG, "bad_scaling", "static", episodes=40)
    model = MaskablePPO("MlpPolicy", make_env("float", CONFIG, "bad_scaling"), learning_rate=1e-3, seed=0)
    obs = torch.as_tensor(data.observations)

    def value_error() -> float:
        with torch.no_grad():
            return float(((model.policy.predict_values(obs).flatten() - torch.as_tensor(data.returns)) ** 2).mean())

    before = value_error()
    first = clone(model, data, epochs=1, seed=0)
    agreement = clone(model, data, epochs=40, seed=0)
    assert agreement > max(first, 0.8)
    assert value_error() < 0.2 * before


@pytest.mark.parametrize("version", ["float", "online"])
def test_imitation_demonstrations_record_the_best_of_the_agents_rollouts(version: str) -> None:
    config = CONFIG | ({"queue_len": 6} if version == "online" else {})
    env = make_env(version, config, "wide_times")
    model = MaskablePPO("MlpPolicy", env, seed=0)
    data = imitation_demonstrations(model, version, config, "wide_times", episodes=3, samples=8, first_seed=500, seed=7)
    assert data.masks[np.arange(len(data)), data.actions].all()
    ratios, deterministic, start = [], [], 0
    for k in range(3):
        found = search(model, env, samples=8, seed=7 + k, reset_seed=500 + k, batch=8, temperature=1.0, hindsight=True)  # imitation's search
        assert found.best.makespan <= found.deterministic.makespan
        # the recorded steps are the best rollout's, and replay it from the episode's start
        steps = len(found.actions)
        assert data.actions[start : start + steps].tolist() == list(found.actions)
        obs, _ = env.reset(seed=500 + k)
        assert np.array_equal(data.observations[start], obs)
        assert data.returns[start] == pytest.approx(-found.best.makespan_levels)  # the levels reward: minus the makespan in levels
        ratios.append(found.best.ratio)
        deterministic.append(found.deterministic.ratio)
        start += steps
    assert start == len(data)
    assert data.teacher_ratio == pytest.approx(statistics.mean(ratios))
    assert data.agent_ratio == pytest.approx(statistics.mean(deterministic))
    again = imitation_demonstrations(model, version, config, "wide_times", episodes=3, samples=8, first_seed=500, seed=7)
    assert np.array_equal(again.actions, data.actions)


def test_search_refuses_an_online_episode_unless_in_hindsight() -> None:
    env = make_env("online", CONFIG | {"queue_len": 6}, "wide_times")
    model = MaskablePPO("MlpPolicy", env, seed=0)
    with pytest.raises(ValueError, match="search is for the offline versions"):
        search(model, env, samples=2, reset_seed=1)
    assert search(model, env, samples=2, reset_seed=1, hindsight=True).rollouts == 2
