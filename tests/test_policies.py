"""The baseline schedulers: valid, deterministic, and ordered as they should be."""

from __future__ import annotations

import copy
import statistics

import numpy as np
import pytest
from conftest import small_env

from migsched import VERSIONS, make_env
from migsched.policies.base import Policy, RandomPolicy, run_episode
from migsched.policies.cpsat import solve_cpsat
from migsched.policies.greedy import GreedyPolicy
from migsched.policies.list_scheduling import plan
from migsched.policies.static import StaticPolicy
from migsched.workloads import WORKLOAD_NAMES

POLICIES = [RandomPolicy, StaticPolicy, GreedyPolicy]


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: p.name)
@pytest.mark.parametrize("type_tasks", WORKLOAD_NAMES)
def test_baselines_are_valid_and_deterministic(version: str, type_tasks: str, policy: type[Policy]) -> None:
    env = small_env(version, n=5, m=6, type_tasks=type_tasks)
    for seed in (1, 2):
        first = run_episode(env, policy(), seed=seed)  # a masked move would raise
        second = run_episode(env, policy(), seed=seed)
        assert first.log == second.log and first.makespan == second.makespan
        assert first.makespan >= first.lower_bound - 1e-9


class Partition1Only(Policy):
    """Everything on the whole GPU: reconfigure to 7g, then run the tasks one after another."""

    def act(self, env) -> int:
        mask = env.action_masks()
        if env.state.partition != 1:
            return 1 if mask[1] else 0
        runs = np.flatnonzero(mask[17:])
        return 17 + int(runs[0]) if len(runs) else 0


@pytest.mark.parametrize("version", ["float", "direct_reconfig", "online"])
def test_static_is_never_worse_than_partition_1_alone(version: str) -> None:
    env = small_env(version, n=6, m=8)
    for seed in range(8):
        static = run_episode(env, StaticPolicy(), seed=seed)
        whole = run_episode(env, Partition1Only(), seed=seed)
        assert static.makespan <= whole.makespan + 1e-9


def test_static_stays_on_one_partition() -> None:
    env = make_env("direct_reconfig", {"N": 8, "M": 8}, "mix_scaling_soft")
    for seed in range(5):
        log = run_episode(env, StaticPolicy(), seed=seed).log
        assert sum(d.kind == "reconfigure" for d in log) <= 1


@pytest.mark.parametrize("version", ["float", "direct_reconfig", "online"])
@pytest.mark.parametrize("type_tasks", WORKLOAD_NAMES)
def test_greedy_beats_random_on_average(version: str, type_tasks: str) -> None:
    env = small_env(version, n=8, m=10, type_tasks=type_tasks)
    greedy = statistics.mean(run_episode(env, GreedyPolicy(), seed=s).ratio for s in range(12))
    random = statistics.mean(run_episode(env, RandomPolicy(), seed=s).ratio for s in range(12))
    assert greedy < random - 0.1


def test_greedy_reconfigures_when_another_partition_fits_the_tasks_better() -> None:
    # Seven 1-slice tasks on an idle 7g GPU: seven 1g instances run them all at once.
    env = make_env("float", {"N": 7, "M": 10})
    tasks = [[10.0, 9.9, 9.8, 9.7, 9.6]] * 7
    env.reset(options={"tasks": tasks, "partition": 1, "busy": [0]})
    assert GreedyPolicy().act(env) == 16
    assert plan(env.state, 16).makespan < plan(env.state, 1).makespan


def test_cpsat_is_a_lower_reference_for_every_policy_on_small_batches() -> None:
    env = make_env("direct_reconfig", {"N": 5, "M": 10}, "wide_times")
    for seed in range(3):
        env.reset(seed=seed)
        reference = solve_cpsat(env.state.tasks.tolist(), env.initial_free, time_limit=5.0)
        assert reference.makespan >= env.lower_bound - 1e-6
        assert reference.proven_optimal
        for policy in POLICIES:
            result = run_episode(copy.deepcopy(env), policy(), seed=seed)
            assert result.makespan >= reference.makespan - 1e-3 * 6  # within the solver's rounding


def test_far_is_available_to_every_version() -> None:
    from migsched.policies import make_baseline

    for version in VERSIONS:
        env = small_env(version, n=4, m=5)
        result = run_episode(env, make_baseline("far"), seed=0)
        assert result.makespan >= result.lower_bound - 1e-9
