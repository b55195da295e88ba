"""Real-time replay of a decision log and the lower bound (MIG_MODEL.md section 8)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from migsched import make_env
from migsched.replay import lower_bound, replay
from migsched.state import Decision

INF = math.inf


def test_runs_start_when_their_slices_are_free_and_last_their_real_time() -> None:
    tasks = np.array([[100.0, 60.0, 45.0, 35.0, 22.0], [50.0, 30.0, 20.0, 12.5, 9.0]])
    log = [Decision("run", 0, 1), Decision("wait"), Decision("run", 1, 1), Decision("run", 1, 0)]
    schedule = replay(tasks, log, 2, [20.0] * 4 + [0.0] * 3)  # 4 3, the 4g busy 20 s
    bars = [(i.kind, i.task, i.start, i.end, i.slices) for i in schedule.intervals]
    assert bars == [
        ("busy", -1, 0.0, 20.0, (0, 1, 2, 3)),
        ("run", 0, 0.0, 45.0, (4, 5, 6)),
        ("run", 1, 45.0, 65.0, (4, 5, 6)),
        ("run", 1, 20.0, 32.5, (0, 1, 2, 3)),
    ]
    assert schedule.makespan == 65.0


def test_waits_do_not_delay_real_starts() -> None:
    tasks = np.array([[10.0] * 5, [10.0] * 5])
    log = [Decision("run", 0, 0), Decision("wait"), Decision("wait"), Decision("run", 1, 1)]
    schedule = replay(tasks, log, 16, [0.0] * 7)
    assert [i.start for i in schedule.intervals] == [0.0, 0.0]


def test_reconfiguration_frees_new_instances_after_destroy_and_create() -> None:
    tasks = np.array([[100.0, 60.0, 45.0, 35.0, 22.0]])
    log = [Decision("reconfigure", 3), Decision("run", 0, 1)]  # 4 3 -> 4 2 1, run on the 2g
    schedule = replay(tasks, log, 2, [20.0] * 4 + [5.0] * 3)
    assert schedule.free[:4] == [20.0] * 4, "the shared 4g instance is untouched"
    assert schedule.free[4:6] == pytest.approx([5.0 + 0.21 + 0.17 + 60.0] * 2)
    assert schedule.free[6] == pytest.approx(5.0 + 0.21 + 0.16)
    reconfig = [i for i in schedule.intervals if i.kind == "reconfigure"]
    assert [(i.slices, i.size) for i in reconfig] == [((4, 5), 2), ((6,), 1)]


def test_new_instance_waits_for_its_latest_slice() -> None:
    tasks = np.array([[10.0] * 5])
    # 2 1 1 3 -> 16: the 2g at slices 0-1 splits; 16 -> 1: one 7g over slices freeing at different times
    schedule = replay(tasks, [Decision("reconfigure", 1)], 16, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    assert schedule.free == pytest.approx([7.0 + 0.20 + 0.24] * 7)


def test_relabelling_swaps_free_times_and_bars_stay_on_physical_slices() -> None:
    tasks = np.array([[10.0, 8.0, 6.0, 5.0, 4.0]])
    log = [Decision("reconfigure", 11), Decision("run", 0, 0)]  # 2 1 1 3 -> 1 1 2 3 = relabelled 2 1 1 3
    schedule = replay(tasks, log, 8, [0.0, 0.0, 0.0, 0.0, 9.0, 9.0, 9.0])
    one, two = 0.20 + 0.16, 0.20 + 0.17
    # model slices 0-1 now hold the new 2g (physically slices 2-3): the run goes there
    run = schedule.intervals[-1]
    assert run.slices == (2, 3) and run.start == pytest.approx(two) and run.end == pytest.approx(two + 8.0)
    assert schedule.free == pytest.approx([two + 8.0, two + 8.0, one, one, 9.0, 9.0, 9.0])
    bars = {i.slices: i.size for i in schedule.intervals if i.kind == "reconfigure"}
    assert bars == {(0,): 1, (1,): 1, (2, 3): 2}


def test_lower_bound_is_area_or_longest_shortest_task() -> None:
    tasks = np.array([[70.0, 30.0, 25.0, 20.0, 14.0], [INF, 10.0, 9.0, 8.0, 7.5]])
    # least areas: min(70, 60, 75, 80, 98) = 60 and min(20, 27, 32, 52.5) = 20
    assert lower_bound(tasks, [0.0] * 7) == pytest.approx(max((60 + 20) / 7, 14.0))
    assert lower_bound(tasks, [10.0] * 7) == pytest.approx((60 + 20 + 70) / 7)
    one_long = np.array([[INF, INF, INF, INF, 50.0]])
    assert lower_bound(one_long, [0.0] * 7) == 50.0


def test_environment_makespan_matches_an_independent_replay_of_its_log() -> None:
    env = make_env("direct_reconfig", {"N": 6, "M": 7}, "wide_times")
    env.reset(seed=4)
    rng = np.random.default_rng(4)
    while True:
        _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
        if terminated:
            break
    state = env.state
    initial_free = [r * state.step_seconds for r in state.initial_rem]
    assert replay(state.tasks, state.log, state.initial_partition, initial_free).makespan == info["makespan"]
    assert info["lower_bound"] == lower_bound(state.tasks, initial_free)
