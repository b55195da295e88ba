"""The agent's search: never worse than the deterministic rollout, reproducible, anytime, offline only."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import small_env
from sb3_contrib import MaskablePPO

from migsched import VERSIONS
from migsched import search as search_module
from migsched.batch import BatchEnv
from migsched.policies import agent as agent_module
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import run_episode
from migsched.search import _PolicyNet, _run_batch, deterministic_episodes, search, search_episodes, start_options

OFFLINE = ("float", "direct_reconfig", "one_hot")


def small_model(env) -> MaskablePPO:
    """An untrained agent: its policy is close to uniform over the valid actions, so rollouts differ."""
    return MaskablePPO("MlpPolicy", env, seed=0, policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32])))


@pytest.fixture(scope="module", params=OFFLINE)
def agent(request):
    env = small_env(request.param)
    return small_model(env), env


def test_best_is_the_minimum_and_never_worse_than_deterministic(agent) -> None:
    model, env = agent
    for reset_seed in (3, 4):
        result = search(model, env, samples=40, batch=16, seed=1, reset_seed=reset_seed)
        assert result.rollouts == 40 and result.batches == 3
        assert len(result.makespans) + result.dropped == 40
        assert result.best.makespan <= result.deterministic.makespan
        assert result.best.makespan == min(result.deterministic.makespan, *result.makespans)
        expected = run_episode(env, AgentPolicy(model), seed=reset_seed)
        assert result.deterministic.log == expected.log and result.deterministic.makespan == expected.makespan


def test_env_afterwards_holds_the_best_schedule(agent) -> None:
    model, env = agent
    result = search(model, env, samples=30, seed=2, reset_seed=5)
    assert env.state.done
    assert env.schedule().makespan == result.best.makespan
    assert tuple(env.decision_log) == result.best.log
    assert result.best.schedule.makespan == result.best.makespan
    assert result.best.makespan >= result.best.lower_bound - 1e-9


def test_same_seed_same_schedule_other_seed_other_rollouts(agent) -> None:
    model, env = agent
    first = search(model, env, samples=24, batch=8, seed=7, reset_seed=11)
    again = search(model, env, samples=24, batch=8, seed=7, reset_seed=11)
    other = search(model, env, samples=24, batch=8, seed=8, reset_seed=11)
    assert first.makespans == again.makespans
    assert first.best.log == again.best.log and first.actions == again.actions
    assert first.makespans != other.makespans


def test_temperature_scales_the_logits(agent) -> None:
    # Near zero the rollouts are the argmax policy's, so each is the deterministic episode; the
    # same noise at a high temperature plays rollouts of many lengths.
    model, env = agent
    cold = search(model, env, samples=16, seed=7, reset_seed=11, temperature=1e-9)
    assert cold.makespans == (cold.deterministic.makespan,) * 16
    hot = search(model, env, samples=16, seed=7, reset_seed=11, temperature=20.0)
    assert len(set(hot.makespans)) > 4


def test_pinned_episode_without_a_seed() -> None:
    env = small_env("float")
    model = small_model(env)
    options = {
        "tasks": [[8.0, 5.0, 4.0, 3.5, 2.0], [6.0, 3.2, 2.5, 2.0, 1.5], [3.0, 2.0, 1.8, 1.7, 1.6], [9.0, 4.0, 3.0, 2.5, 2.2]],
        "partition": 4,
        "busy": [1, 0, 2, 0],
    }
    first = search(model, env, samples=20, options=options)
    second = search(model, env, samples=20, options=options)
    assert first.makespans == second.makespans and first.best.log == second.best.log


class TickingClock:
    """A stand-in for the `time` module whose clock advances `tick` seconds per reading, so the
    search's deadline logic is tested the same on a quiet and on a busy machine."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 0.0, tick

    def perf_counter(self) -> float:
        self.now += self.tick
        return self.now


def test_time_limit_is_honoured_within_ten_percent_by_its_clock(agent, monkeypatch) -> None:
    model, env = agent
    for limit, tick in ((0.5, 1e-3), (0.05, 1e-4), (2.0, 1e-2)):
        monkeypatch.setattr(search_module, "time", TickingClock(tick))
        result = search(model, env, time_limit=limit, seed=3, reset_seed=6)
        assert 0.9 * limit <= result.seconds <= 1.1 * limit, (limit, result.seconds)
        assert result.batches > 1 and result.rollouts > 0
        assert env.schedule().makespan == result.best.makespan


def test_time_limit_holds_on_the_real_clock(agent) -> None:
    # The wall clock of a shared machine can stall any step, so only gross misses fail here;
    # the 10% is checked above on a clock that only the search advances.
    model, env = agent
    result = search(model, env, time_limit=0.5, seed=3, reset_seed=6)
    assert 0.25 <= result.seconds <= 1.5, result.seconds
    assert env.schedule().makespan == result.best.makespan


def test_samples_stop_before_the_time_limit() -> None:
    env = small_env("float")
    result = search(small_model(env), env, samples=5, time_limit=30.0, reset_seed=1)
    assert result.rollouts == 5 and result.seconds < 30.0


def test_online_and_bad_arguments_are_refused() -> None:
    online = small_env("online")
    with pytest.raises(ValueError, match="offline"):
        search(small_model(online), online, samples=4)
    env = small_env("float")
    model = small_model(env)
    for kwargs in ({}, {"samples": -1}, {"time_limit": 0.0}, {"samples": 4, "batch": 0}, {"samples": 4, "temperature": 0.0}):
        with pytest.raises(ValueError):
            search(model, env, **kwargs)


def test_lanes_past_the_step_cap_are_dropped() -> None:
    env = small_env("float")
    model = small_model(env)
    env.reset(seed=2)
    lanes = BatchEnv("float", {"N": 4, "M": 5}, "mix_scaling_soft", 8, seed=0)
    outcome = _run_batch(lanes, start_options(env), _PolicyNet(model), np.random.default_rng(0), 6, 1, 1.0, math.inf)
    assert outcome.finished == [] and outcome.dropped == 6 and not outcome.interrupted
    cut = _run_batch(lanes, start_options(env), _PolicyNet(model), np.random.default_rng(0), 6, 100, 1.0, 0.0)
    assert cut.finished == [] and cut.dropped == 0 and cut.interrupted


@pytest.mark.parametrize("version", VERSIONS)
def test_policy_net_gives_sb3s_logits_and_actions(version) -> None:
    env = small_env(version)
    model = small_model(env)
    rng = np.random.default_rng(0)
    space = env.observation_space
    obs = np.stack([space.sample() for _ in range(64)]) if version == "one_hot" else rng.random((64, *space.shape), dtype=np.float32)
    masks = rng.random((64, env.action_space.n)) < 0.3
    masks[np.arange(64), rng.integers(0, env.action_space.n, 64)] = True
    net = _PolicyNet(model)
    policy = model.policy
    with torch.no_grad():
        tensor, _ = policy.obs_to_tensor(obs)
        expected = policy.action_net(policy.mlp_extractor.forward_actor(policy.extract_features(tensor, policy.pi_features_extractor))).numpy()
        normalized = policy.get_distribution(tensor).distribution.logits.numpy()
    logits = net.forward(obs)
    assert logits.dtype == np.float32 and np.array_equal(logits, expected)
    assert np.allclose(torch.log_softmax(torch.from_numpy(logits), dim=1).numpy(), normalized, atol=1e-6)
    chosen = np.argmax(net.logits(obs, masks), axis=1)
    predicted = [int(model.predict(obs[k], action_masks=masks[k], deterministic=True)[0]) for k in range(64)]
    assert chosen.tolist() == predicted and all(masks[np.arange(64), chosen])


@pytest.mark.parametrize("version", VERSIONS)
def test_start_options_reload_the_episode_and_rollouts_replay_to_their_makespans(version) -> None:
    env = small_env(version)
    model = small_model(env)
    obs, _ = env.reset(seed=9)
    masks = env.action_masks()
    env.step(int(np.flatnonzero(masks)[-1]))
    start = start_options(env)  # from the episode's start, whatever was played since
    twin = small_env(version)
    assert np.array_equal(twin.reset(options=start)[0], obs) and np.array_equal(twin.action_masks(), masks)
    assert twin.state.initial_rem == env.state.initial_rem and twin.lower_bound == env.lower_bound
    lanes = BatchEnv(version, {"N": env.N, "M": env.M, **({"queue_len": env.queue_len} if env.online else {})}, env.type_tasks, 8, seed=0)
    outcome = _run_batch(lanes, start, _PolicyNet(model), np.random.default_rng(1), 6, 500, 3.0, math.inf)
    assert len(outcome.finished) == 6 and outcome.dropped == 0
    assert len({tuple(actions) for _, actions in outcome.finished}) > 1
    for makespan, actions in outcome.finished:
        twin.reset(options=start)
        for action in actions:
            _, _, terminated, _, info = twin.step(action)
        assert terminated and info["makespan"] == makespan


def test_online_search_in_hindsight() -> None:
    env = small_env("online")
    result = search(small_model(env), env, samples=12, batch=5, seed=1, reset_seed=2, hindsight=True)
    assert result.rollouts == 12 and result.batches == 3
    assert result.best.makespan == min(result.deterministic.makespan, *result.makespans)
    assert env.state.done and env.schedule().makespan == result.best.makespan


def test_sample_lanes_draws_softmax_of_masked_logits_and_steps_idle_lanes_validly() -> None:
    from migsched.sampling import sample_lanes

    rng = np.random.default_rng(0)
    logits = np.array([[0.5, 2.0, -1.0, 1.0, 3.0]], np.float32)
    masks = np.array([[False, True, True, True, False], [False, False, True, True, False]])
    temperature, draws = 2.0, 40_000
    counts = np.zeros(5)
    actions = np.zeros(2, np.int64)
    for uniform in rng.random(draws):
        sample_lanes(logits, masks, np.array([0]), temperature, np.array([uniform]), actions)
        counts[actions[0]] += 1
        assert actions[1] == 2  # not running: its first valid action
    expected = np.where(masks[0], np.exp(logits[0] / temperature), 0.0)
    assert np.allclose(counts / draws, expected / expected.sum(), atol=0.01)
    assert counts[~masks[0]].sum() == 0
    sample_lanes(logits, masks, np.array([0]), 1e-9, np.array([0.999]), actions)
    assert actions[0] == 1  # near zero temperature: the best valid action, the masked 3.0 ignored


@pytest.mark.parametrize("version", VERSIONS)
def test_deterministic_episodes_are_the_agents_episodes_played_together(version) -> None:
    env = small_env(version)
    model = small_model(env)
    seeds = list(range(40, 52))
    together = deterministic_episodes(model, env, seeds, lanes=5)  # three BatchEnvs, the last one smaller
    for seed, result in zip(seeds, together):
        alone = run_episode(env, AgentPolicy(model), seed=seed)
        assert (result.makespan, result.lower_bound, result.log) == (alone.makespan, alone.lower_bound, alone.log)
        assert result.schedule == alone.schedule


def test_deterministic_episodes_past_the_step_cap_sample_as_the_agent_does(monkeypatch) -> None:
    env = small_env("direct_reconfig")
    model = small_model(env)
    for module in (search_module, agent_module):  # two argmax steps, then the seeded sampling of AgentPolicy
        monkeypatch.setattr(module, "deterministic_steps", lambda n_tasks: 2)
    seeds = [3, 4, 5]
    together = deterministic_episodes(model, env, seeds)
    alone = [run_episode(env, AgentPolicy(model), seed=seed) for seed in seeds]
    assert [r.log for r in together] == [r.log for r in alone]
    assert all(len(r.log) > 2 for r in alone)


@pytest.mark.parametrize("version", ["float", "online"])
def test_search_episodes_are_the_searches_one_by_one(version) -> None:
    env = small_env(version)
    model = small_model(env)
    reset_seeds, seeds = [10, 11, 12, 13, 14], [7, 8, 9, 10, 11]
    together = search_episodes(model, env, reset_seeds, 6, seeds, temperature=1.5, lanes=13, hindsight=True)  # two episodes per BatchEnv
    for reset_seed, seed, found in zip(reset_seeds, seeds, together):
        alone = search(model, env, samples=6, seed=seed, reset_seed=reset_seed, batch=6, temperature=1.5, hindsight=True)
        assert found.actions == alone.actions
        assert (found.best_makespan, found.deterministic_makespan, found.lower_bound) == (
            alone.best.makespan,
            alone.deterministic.makespan,
            alone.best.lower_bound,
        )
    with pytest.raises(ValueError, match="one seed per episode"):
        search_episodes(model, env, reset_seeds, 6, seeds[:2], hindsight=True)
    if version == "online":
        with pytest.raises(ValueError, match="offline versions"):
            search_episodes(model, env, reset_seeds, 6, seeds)
