"""Behaviour cloning: the teacher's episodes are recorded faithfully and cloning moves the agent towards them."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
import torch
from sb3_contrib import MaskablePPO

from migsched.policies import make_baseline
from migsched.policies.base import run_episode
from migsched.pretrain import DEMO_SEED, clone, demonstrations
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
