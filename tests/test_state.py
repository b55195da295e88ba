"""Hand-worked examples pinning each rule of MIG_MODEL.md sections 3-5 (levels, masks, transitions)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from conftest import small_env
from hypothesis import given, settings
from hypothesis import strategies as st

from migsched import make_env
from migsched.state import Decision, discretization_step, to_levels

INF = math.inf
# With a 100 s task and M = 10 a level is 10 s: costs in levels are the table's / 10.
LONG = [100.0, 60.0, 45.0, 35.0, 22.0]  # levels 10 6 5 4 3


def env_at(version: str, tasks, partition: int | None = None, busy=None, n: int = 4, m: int = 10, **config):
    env = make_env(version, {"N": n, "M": m, **config})
    options = {"tasks": tasks}
    if partition is not None:
        options.update(partition=partition, busy=busy)
    env.reset(options=options)
    return env


def valid(env) -> list[int]:
    return np.flatnonzero(env.action_masks()).tolist()


def run_action(slot: int, instance: int) -> int:
    return 17 + 7 * slot + instance


# -- discretization and canonical state (section 3) ---------------------------------------


def test_levels_round_up_clamp_to_1_M_and_inf_is_0() -> None:
    tasks = np.array([[100.0, 55.0, 41.0, 30.0, INF], [10.0, 9.0, 1.0, 0.5, 95.0]])
    step = discretization_step(tasks, 10)
    assert step == 10.0
    assert to_levels(tasks, step, 10) == [(10, 6, 5, 3, 0), (1, 1, 1, 1, 10)]


def test_discretization_uses_the_largest_finite_time_of_the_episode() -> None:
    env = env_at("online", [[8.0, 4.0, 4.0, 4.0, 4.0], [80.0, INF, INF, INF, INF], [40.0] * 5], n=1, m=8)
    assert env.state.step_seconds == 10.0
    assert env.state.task_levels == [(1, 1, 1, 1, 1), (8, 0, 0, 0, 0), (4, 4, 4, 4, 4)]


def test_equal_level_vectors_are_one_type_sorted_ascending_first_come_first_run() -> None:
    tasks = [LONG, [10.0, 10.0, 10.0, 10.0, 10.0], [100.0, 58.0, 44.0, 31.0, 21.0], [9.0] * 5]
    env = env_at("float", tasks, partition=2, busy=[0, 0])
    state = env.state
    assert state.keys == [(1, 1, 1, 1, 1), (10, 6, 5, 4, 3)]
    assert state.queues == [[1, 3], [0, 2]]
    obs_slots = env.encoder.encode(state)[1 : 1 + 6 * 4].reshape(4, 6)
    assert obs_slots[0].tolist() == pytest.approx([0.1] * 5 + [0.5])
    assert obs_slots[2:].sum() == 0.0, "unused slots are zeros and come last"
    env.step(run_action(1, 0))
    assert env.decision_log[-1] == Decision("run", 0, 0)
    env.step(run_action(1, 1))
    assert env.decision_log[-1] == Decision("run", 2, 1)
    assert state.keys == [(1, 1, 1, 1, 1)], "an emptied slot is removed"


# -- masks (section 4) ----------------------------------------------------------------------


def test_wait_needs_a_busy_slice() -> None:
    env = env_at("float", [LONG], partition=2, busy=[0, 0])
    assert 0 not in valid(env)
    env = env_at("float", [LONG], partition=2, busy=[0, 1])
    assert 0 in valid(env)


def test_run_needs_an_idle_existing_instance_and_a_finite_time() -> None:
    tasks = [[100.0, INF, 50.0, 40.0, 30.0]]  # does not fit 2 slices
    env = env_at("float", tasks, partition=3, busy=[0, 0, 2])  # instances 4 2 1, the 1g busy
    runs = [a for a in valid(env) if a >= 17]
    assert runs == [run_action(0, 0)]  # 4g idle; 2g does not fit; 1g busy; no instance 3
    env = env_at("float", tasks, partition=16, busy=[0] * 7)
    assert [a for a in valid(env) if a >= 17] == [run_action(0, j) for j in range(7)]


def test_reconfiguration_needs_a_ready_task_and_another_partition() -> None:
    env = env_at("float", [LONG], partition=2, busy=[0, 0])
    assert [a for a in valid(env) if 1 <= a <= 16] == [q for q in range(1, 17) if q != 2]
    env.step(run_action(0, 0))
    assert [a for a in valid(env) if 1 <= a <= 16] == [], "no ready task left"


def test_idle_rule_forbids_touching_busy_slices() -> None:
    env = env_at("float", [LONG], partition=2, busy=[0, 3])  # 3g busy
    reconfigs = [a for a in valid(env) if 1 <= a <= 16]
    # only partitions that keep the 3g at slice 4 and change nothing else busy
    assert reconfigs == [5, 8, 11, 14]


def test_direct_rule_allows_busy_slices_but_not_two_reconfigurations_in_a_row() -> None:
    env = env_at("direct_reconfig", [LONG, LONG], partition=2, busy=[0, 3])
    assert [a for a in valid(env) if 1 <= a <= 16] == [q for q in range(1, 17) if q != 2]
    env.step(16)
    assert [a for a in valid(env) if 1 <= a <= 16] == [], "a run is valid, so no second reconfiguration"
    env.step(run_action(0, 0))
    assert [a for a in valid(env) if 1 <= a <= 16] != []


def test_direct_rule_allows_a_second_reconfiguration_when_nothing_can_run() -> None:
    only_1g = [[100.0, INF, INF, INF, INF]]
    env = env_at("direct_reconfig", only_1g, partition=16, busy=[0] * 7)
    env.step(2)  # to 4 3: the task fits no instance now
    assert [a for a in valid(env) if a >= 17] == []
    assert [a for a in valid(env) if 1 <= a <= 16] == [q for q in range(1, 17) if q != 2]


def test_online_shows_the_reconfiguration_flag() -> None:
    env = env_at("online", [LONG, LONG], n=2)
    obs, *_ = env.step(16)
    assert obs[-1] == 1.0
    obs, *_ = env.step(run_action(0, 0))
    assert obs[-1] == 0.0


# -- transitions and rewards (section 5) -----------------------------------------------------


def test_wait_advances_every_slice_by_the_smallest_positive_remaining_time() -> None:
    env = env_at("float", [LONG], partition=3, busy=[3, 0, 5])  # 4 2 1
    _, reward, terminated, _, _ = env.step(0)
    assert reward == -3.0 and not terminated
    assert env.state.rem == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]


def test_remaining_times_below_1e_9_become_exactly_zero() -> None:
    env = env_at("float", [LONG], partition=2, busy=[1, 1])
    env.state.rem[4:] = [1.0 + 5e-10] * 3
    env.step(0)
    assert env.state.rem == [0.0] * 7 and env.state.busy_bits == 0


def test_run_makes_the_instance_busy_for_the_level_on_its_size() -> None:
    env = env_at("float", [LONG, LONG], partition=2, busy=[0, 0])
    _, reward, _, _, _ = env.step(run_action(0, 1))  # the 3g instance: level of 45 s = 5
    assert reward == 0.0
    assert env.state.rem == [0.0] * 4 + [5.0] * 3
    assert env.state.keys == [(10, 6, 5, 4, 3)] and env.state.queues == [[1]]


def test_idle_reconfiguration_makes_changed_slices_busy_until_created() -> None:
    env = env_at("float", [LONG], partition=2, busy=[2, 0])  # 4 3 -> 3 = 4 2 1 keeps the busy 4g
    _, reward, _, _, _ = env.step(3)
    assert reward == 0.0
    destroy3, create2, create1 = 0.021, 0.017, 0.016
    assert env.state.rem == pytest.approx([2.0] * 4 + [destroy3 + create2] * 2 + [destroy3 + create1])
    assert env.state.partition == 3


def test_direct_reconfiguration_waits_for_busy_changed_slices_and_moves_the_clock() -> None:
    env = env_at("direct_reconfig", [LONG], partition=2, busy=[6, 4])  # 3g busy 4 levels
    _, reward, _, _, _ = env.step(3)  # 4 2 1: 2g@4 ready 4 + 0.021 + 0.017, 1g@6 4 + 0.021 + 0.016
    latest = 4 + 0.021 + 0.017
    assert reward == pytest.approx(-latest)
    assert env.state.rem == pytest.approx([6 - latest] * 4 + [0.0] * 3)
    assert env.state.time == pytest.approx(latest)


def test_reconfiguration_to_11_is_relabelled_to_8_with_slices_swapped() -> None:
    env = env_at("float", [LONG], partition=8, busy=[0, 0, 0, 5])  # 2 1 1 3, 3g busy
    env.step(11)  # 1 1 2 3: 1g@0, 1g@1 (from the 2g), 2g@2 (from two 1g)
    one, two = 0.020 + 0.016, 0.020 + 0.017
    assert env.state.partition == 8
    assert env.state.rem == pytest.approx([two, two, one, one, 5.0, 5.0, 5.0])
    assert env.decision_log[-1] == Decision("reconfigure", 11)


@pytest.mark.parametrize(("relabelled", "canonical"), [(12, 9), (13, 10)])
def test_12_and_13_are_relabelled_too(relabelled: int, canonical: int) -> None:
    env = env_at("direct_reconfig", [LONG], partition=16, busy=[0] * 7)
    env.step(relabelled)
    assert env.state.partition == canonical


def test_an_initial_state_may_show_11_to_13() -> None:
    env = env_at("float", [LONG], partition=12, busy=[3, 0, 0, 0, 0])  # 1 1 2 2 1
    assert env.state.partition == 12
    assert env.state.rem == [3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert run_action(0, 1) in valid(env) and run_action(0, 0) not in valid(env)


def test_online_refill_adds_the_next_queued_task_to_the_ready_slots() -> None:
    small = [10.0] * 5
    env = env_at("online", [LONG, small, LONG, small], n=2)
    state = env.state
    assert state.keys == [(1, 1, 1, 1, 1), (10, 6, 5, 4, 3)] and state.next_task == 2
    env.step(run_action(1, 0))  # task 0 starts: task 2 (same type) joins
    assert state.keys == [(1, 1, 1, 1, 1), (10, 6, 5, 4, 3)] and state.queues == [[1], [2]]
    env.step(16)
    env.step(run_action(0, 0))  # task 1 starts: task 3 joins its type again
    assert state.queues == [[3], [2]] and state.ready_total == 2 and state.next_task == 4


def test_episode_ends_when_nothing_is_left_and_all_slices_are_idle() -> None:
    env = env_at("float", [LONG], partition=1, busy=[0])
    _, _, terminated, _, info = env.step(run_action(0, 0))
    assert not terminated and info == {}
    _, reward, terminated, _, info = env.step(0)
    assert terminated and reward == -3.0
    assert info["makespan_levels"] == 3.0 and info["makespan"] == 22.0
    assert info["lower_bound"] == pytest.approx(max(min(1 * 100, 2 * 60, 3 * 45, 4 * 35, 7 * 22) / 7, 22.0))


# -- refused steps ---------------------------------------------------------------------------


def snapshot(env):
    s = env.state
    return copy.deepcopy((s.partition, s.rem, s.keys, s.queues, s.slot_features.tolist(), list(s.log), s.time, s.prev_reconfig, s.next_task))


@settings(max_examples=40, deadline=None)
@given(version=st.sampled_from(["one_hot", "float", "direct_reconfig", "online"]), seed=st.integers(0, 10_000), steps=st.integers(0, 12), data=st.data())
def test_a_masked_action_raises_and_changes_nothing(version: str, seed: int, steps: int, data) -> None:
    env = small_env(version)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        if env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))[2]:
            break
    masked = np.flatnonzero(~env.action_masks()).tolist() + [-1, env.action_space.n]
    action = data.draw(st.sampled_from(masked))
    before = snapshot(env)
    with pytest.raises(ValueError, match="masked"):
        env.step(action)
    assert snapshot(env) == before


# -- observations (section 7) ----------------------------------------------------------------


def test_float_observation_scales_each_feature_into_0_1() -> None:
    env = env_at("float", [LONG, [10.0] * 5], partition=4, busy=[12, 0, 3, 0], n=2)  # 4 1 1 1; busy 12 > M
    obs = env.encoder.encode(env.state)
    assert obs[0] == pytest.approx(3 / 15)
    assert obs[1:13].tolist() == pytest.approx([0.1] * 5 + [0.5] + [1.0, 0.6, 0.5, 0.4, 0.3, 0.5])
    assert obs[13:].tolist() == pytest.approx([1.0] * 4 + [0.0, 0.3, 0.0]), "remaining times / M, clipped at 1"


def test_one_hot_observation_keeps_integers_rounding_remaining_times_up() -> None:
    env = env_at("one_hot", [LONG, [100.0, INF, 50.0, 40.0, 30.0]], partition=2, busy=[0, 0], n=2)
    env.step(3)  # 4 3 -> 4 2 1: new instances busy 0.038 and 0.037 levels
    obs = env.encoder.encode(env.state)
    assert obs[0] == 2
    assert obs[1:13].tolist() == [10, 0, 5, 4, 3, 1, 10, 6, 5, 4, 3, 1]
    assert obs[13:].tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert obs.dtype == np.int64 and env.observation_space.contains(obs)
