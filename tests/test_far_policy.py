"""Tests for FAR's step-by-step policy (FAR.md section 10)."""

from __future__ import annotations

import math
import statistics
from collections import Counter

import numpy as np
import pytest

from migsched import VERSIONS, make_env
from migsched.env import MigSchedEnv
from migsched.policies.base import EpisodeResult, RandomPolicy, run_episode
from migsched.policies.cpsat import solve_cpsat
from migsched.policies.far import FarPolicy
from migsched.policies.far_plan import node_slices, plan_far
from migsched.state import RECONFIGURE, RUN, WAIT, Decision
from migsched.workloads import WORKLOAD_NAMES

INF = math.inf
IDLE_GPU = {"partition": 1, "busy": [0]}

# FAR.md section 9's tasks A, B, C, D, times (1g, 2g, 3g, 4g, 7g) scaled to a tenth: with the
# MIG_MODEL costs (about 0.2 s) FAR then makes section 9's plan, which assumed unit costs.
A, B, C, D = range(4)
EXAMPLE = [
    [INF, 1.9, 1.6, 1.5, 1.4],
    [1.6, 0.7, 0.5, 0.5, 0.3],
    [3.5, 1.8, 1.1, 1.0, 0.6],
    [1.1, 0.7, 0.6, 0.6, 0.6],
]


def reconfigure(target: int) -> Decision:
    return Decision(RECONFIGURE, target)


def run(task: int, instance: int) -> Decision:
    return Decision(RUN, task, instance)


def moves(log: tuple[Decision, ...]) -> list[Decision]:
    """The decisions other than waits."""
    return [decision for decision in log if decision.kind != WAIT]


def play_checked(env: MigSchedEnv, policy: FarPolicy, seed: int, options: dict | None = None) -> EpisodeResult:
    """Play one episode like `run_episode`, asserting that every action is valid when chosen."""
    env.reset(seed=seed, options=options)
    policy.reset(env, seed)
    for _ in range(10_000):
        action = policy.act(env)
        assert env.action_masks()[action], f"masked action {action}"
        _, _, terminated, _, info = env.step(action)
        if terminated:
            return EpisodeResult(info["makespan"], info["lower_bound"], info["makespan_levels"], tuple(env.decision_log), env.schedule())
    raise AssertionError("the episode did not end")


def test_scaled_example_gets_section_9_plan() -> None:
    plan = plan_far(EXAMPLE).plan
    tasks = {node: tasks for node, tasks in plan.node_lists.items() if tasks}
    assert tasks == {(0, 2): (A,), (3, 1): (D,), (4, 3): (C,), (4, 2): (B,)}
    assert sorted(plan.start, key=plan.start.get) == [C, A, D, B]


def test_worked_example_direct_rule() -> None:
    env = make_env("direct_reconfig", {"N": 4, "M": 35})
    result = play_checked(env, FarPolicy(), 0, {"tasks": EXAMPLE, **IDLE_GPU})
    assert moves(result.log) == [
        reconfigure(8),
        run(C, 3),
        run(A, 0),
        run(D, 2),
        reconfigure(9),
        run(B, 3),
    ]
    assert result.log[4] == Decision(WAIT)  # 1g@2 stays idle until C is done


def test_worked_example_idle_rule() -> None:
    # The new instances are busy while they are created: the 1g one is ready first (0.38 s),
    # then the 2g (0.39 s), then the 3g (0.42 s), and each task starts once its node is idle.
    env = make_env("float", {"N": 4, "M": 35})
    result = play_checked(env, FarPolicy(), 0, {"tasks": EXAMPLE, **IDLE_GPU})
    assert moves(result.log) == [
        reconfigure(8),
        run(D, 2),
        run(A, 0),
        run(C, 3),
        reconfigure(9),
        run(B, 3),
    ]


def test_initial_partition_11_is_used_through_the_slice_swap() -> None:
    # FAR's [2,1,1,3] seen with slices 0,1 and 2,3 exchanged is partition 11: no reconfiguration
    # is needed, FAR's 2g@0 is instance 2 and its 1g@3 instance 1; splitting 3g@4 then needs
    # [1,1,2,2,1] = 12, which the environment relabels to 9.
    env = make_env("direct_reconfig", {"N": 4, "M": 35})
    result = play_checked(env, FarPolicy(), 0, {"tasks": EXAMPLE, "partition": 11, "busy": [0] * 4})
    assert moves(result.log) == [run(C, 3), run(A, 2), run(D, 1), reconfigure(12), run(B, 3)]
    assert env.state.partition == 9


@pytest.mark.parametrize("version", ["float", "direct_reconfig"])
def test_runs_land_on_the_planned_instances(version: str) -> None:
    """From an idle GPU every task runs on its FAR node's slices, across 11-13 relabellings."""
    relabelled = 0
    for type_tasks in WORKLOAD_NAMES:
        env = make_env(version, {"N": 14, "M": 1000}, type_tasks)
        for seed in range(4):
            result = play_checked(env, FarPolicy(), seed, IDLE_GPU)
            plan = plan_far(env.state.tasks.tolist()).plan
            relabelled += any(d.kind == RECONFIGURE and d.target in (11, 12, 13) for d in result.log)
            runs = [bar for bar in result.schedule.intervals if bar.kind == RUN]
            assert len(runs) == 14
            for bar in runs:
                assert bar.slices == tuple(node_slices(plan.node_of(bar.task)))
    assert relabelled > 0


def test_tasks_of_one_type_swap_places_in_the_plan() -> None:
    """With few levels many tasks share a type; the plan's shape must survive the FIFO order."""
    env = make_env("float", {"N": 14, "M": 2}, "mix_scaling_soft")
    for seed in range(5):
        result = play_checked(env, FarPolicy(), seed, IDLE_GPU)
        state = env.state
        plan = plan_far(state.tasks.tolist()).plan
        planned = Counter((state.task_levels[k], tuple(node_slices(plan.node_of(k)))) for k in range(14))
        runs = [bar for bar in result.schedule.intervals if bar.kind == RUN]
        assert Counter((state.task_levels[bar.task], bar.slices) for bar in runs) == planned
        assert sorted(bar.task for bar in runs) == list(range(14))


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("type_tasks", WORKLOAD_NAMES)
def test_valid_deterministic_and_above_the_lower_bound(version: str, type_tasks: str) -> None:
    config = {"N": 6, "M": 8, **({"queue_len": 15} if version == "online" else {})}
    policies = [FarPolicy(), FarPolicy(replan_each_start=True)] if version == "online" else [FarPolicy()]
    for policy in policies:
        for seed in range(4):
            first = play_checked(make_env(version, config, type_tasks), policy, seed)
            again = play_checked(make_env(version, config, type_tasks), policy, seed)
            assert first.log == again.log
            assert first.makespan >= first.lower_bound - 1e-9
            assert sum(d.kind == RUN for d in first.log) == (15 if version == "online" else 6)


@pytest.mark.parametrize(
    ("start", "options", "seeds"),
    [("idle GPU", IDLE_GPU, 10), ("random start", None, 30)],
)
def test_beats_random_on_14_task_batches(start: str, options: dict | None, seeds: int) -> None:
    """Mean makespan / lower bound per workload (float, N = M = 14).

    From a random busy start FAR, which plans for an empty GPU, loses about a third of the
    episodes of some workloads to random play, so that case needs more seeds.
    """
    for type_tasks in WORKLOAD_NAMES:
        env = make_env("float", {"N": 14, "M": 14}, type_tasks)
        far = np.mean([play_checked(env, FarPolicy(), seed, options).ratio for seed in range(seeds)])
        rand = np.mean([run_episode(env, RandomPolicy(), seed, options).ratio for seed in range(seeds)])
        print(f"{start}, {type_tasks}: far {far:.3f}, random {rand:.3f}")
        assert far < rand


def test_never_below_the_cpsat_optimum() -> None:
    compared = 0
    for type_tasks in WORKLOAD_NAMES:
        env = make_env("float", {"N": 5, "M": 10}, type_tasks)
        for seed in range(2):
            result = play_checked(env, FarPolicy(), seed, IDLE_GPU)
            reference = solve_cpsat(env.state.tasks.tolist(), [0.0] * 7, time_limit=3.0)
            if reference.proven_optimal:
                compared += 1
                assert result.makespan >= reference.real_lower_bound - 1e-9
    assert compared > 0


@pytest.mark.parametrize("type_tasks", WORKLOAD_NAMES)
def test_far_lies_between_cpsat_and_random_on_14_task_batches(type_tasks: str) -> None:
    from migsched.evaluation import evaluate

    rows, _ = evaluate("float", {"N": 14, "M": 14}, type_tasks, 3, 100, ["random", "far", "cpsat"], cpsat_time=1.0)
    mean = {name: statistics.mean(r.ratio for r in rows if r.policy == name) for name in ("random", "far", "cpsat")}
    assert mean["cpsat"] <= mean["far"] <= mean["random"]
