"""The two training rewards of the `reward` env_config key: "levels" (MIG_MODEL.md section 5) and
"real" (the growth of the real-time makespan of section 8, in levels)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_golden, rollout, small_env

from migsched import make_env
from migsched.replay import replay

GOLDEN = [(k, version) for k, episode in enumerate(load_golden()) for version in episode["versions"]]


def real_return(env, info: dict) -> float:
    """The "real" reward's definition: minus (real makespan - initial busy tail) in levels."""
    return -(info["makespan"] - max(env.initial_free)) / env.state.step_seconds


def play_golden(index: int, version: str, reward: str) -> tuple[object, list[float], dict]:
    episode = load_golden()[index]
    env = make_env(version, {"N": episode["N"], "M": episode["M"], "reward": reward})
    options = {"tasks": episode["tasks"]}
    if episode.get("partition") is not None:
        options.update(partition=episode["partition"], busy=episode["busy"])
    env.reset(options=options)
    rewards = []
    for record in episode["steps"]:
        _, reward, terminated, _, info = env.step(record["action"])
        rewards.append(reward)
    assert terminated
    return env, rewards, info


@pytest.mark.parametrize(("index", "version"), GOLDEN, ids=[f"ep{k}-{v}" for k, v in GOLDEN])
def test_golden_returns_match_each_rewards_definition(index: int, version: str) -> None:
    _, level_rewards, level_info = play_golden(index, version, "levels")
    env, real_rewards, info = play_golden(index, version, "real")
    assert level_info == info, "the reward does not change the episode"
    assert math.fsum(level_rewards) == pytest.approx(-info["makespan_levels"], rel=1e-9, abs=1e-12)
    assert math.fsum(real_rewards) == pytest.approx(real_return(env, info), rel=1e-9, abs=1e-12)
    assert all(r <= 0.0 for r in real_rewards)


@pytest.mark.parametrize("seed", range(6))
def test_random_rollouts_return_each_rewards_definition(version: str, seed: int) -> None:
    for type_tasks in ("wide_times", "good_scaling"):
        levels_env = small_env(version, n=5, m=7, type_tasks=type_tasks, reward="levels")
        real_env = small_env(version, n=5, m=7, type_tasks=type_tasks, reward="real")
        levels = rollout(levels_env, np.random.default_rng(seed), seed=seed)
        real = rollout(real_env, np.random.default_rng(seed), seed=seed)  # rollout asserts every reward <= 0
        assert real["actions"] == levels["actions"] and real["info"] == levels["info"]
        assert levels["return"] == pytest.approx(-levels["info"]["makespan_levels"], rel=1e-9, abs=1e-12)
        assert real["return"] == pytest.approx(real_return(real_env, real["info"]), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_real_reward_follows_the_replayed_makespan_step_by_step(version: str, seed: int) -> None:
    env = small_env(version, n=6, m=9, type_tasks="wide_times", reward="real")
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    st = env.state
    previous = max(env.initial_free)
    while True:
        _, reward, terminated, _, _ = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        schedule = replay(st.tasks, st.log, st.initial_partition, env.initial_free, record=False)
        makespan = schedule.makespan
        assert st.real_free == schedule.free and st.real_makespan == makespan
        assert reward == pytest.approx(-(makespan - previous) / st.step_seconds, rel=1e-12, abs=1e-12)
        previous = makespan
        if terminated:
            break


def test_the_reward_kind_is_exposed_and_an_unknown_one_is_a_clear_error(version: str) -> None:
    assert small_env(version).reward_kind == "levels"
    assert make_env(version, {"N": 3, "M": 3, "reward": "real"}, "good_scaling").reward_kind == "real"
    with pytest.raises(ValueError, match="reward must be one of levels, real, got 'makespan'"):
        make_env(version, {"N": 3, "M": 3, "reward": "makespan"})
