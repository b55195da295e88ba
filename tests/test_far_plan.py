"""Tests for FAR's planner (FAR.md sections 1-9 and 11)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migsched.policies.far_plan import (
    CHILDREN,
    CREATE_COST,
    DESTROY_COST,
    DFS_ORDER,
    LEAVES,
    PARENT,
    ROOT,
    SIZES,
    Move,
    TreePlan,
    allocation_family,
    best_size,
    node_slices,
    pick,
    plan_far,
    refine,
    retime,
    task_time,
    tree_schedule,
)

INF = math.inf
UNIT = {size: 1.0 for size in SIZES}

# FAR.md section 9: tasks A, B, C, D with times for sizes (1, 2, 3, 4, 7).
A, B, C, D = range(4)
EXAMPLE = [
    (INF, 19, 16, 15, 14),
    (16, 7, 5, 5, 3),
    (35, 18, 11, 10, 6),
    (11, 7, 6, 6, 6),
]


def timeline(plan: TreePlan) -> dict[int, tuple[tuple[int, int], float, float]]:
    """Each task's node, start and end."""
    return {task: (plan.node_of(task), plan.start[task], plan.end[task]) for task in plan.start}


# The tree (section 1).


def test_tree_is_the_adapted_13_node_tree():
    assert DFS_ORDER == (
        (0, 7),
        (0, 4),
        (0, 2),
        (0, 1),
        (1, 1),
        (2, 2),
        (2, 1),
        (3, 1),
        (4, 3),
        (4, 2),
        (4, 1),
        (5, 1),
        (6, 1),
    )
    assert ROOT == (0, 7)
    assert CHILDREN[(0, 4)] == ((0, 2), (2, 2))
    assert CHILDREN[(4, 3)] == ((4, 2), (6, 1))
    assert LEAVES == tuple((k, 1) for k in range(7))
    assert PARENT[(0, 2)] == (0, 4) and PARENT[(6, 1)] == (4, 3)
    assert ROOT not in PARENT and len(PARENT) == 12
    for node, children in CHILDREN.items():
        assert sorted(k for child in children for k in node_slices(child)) == (list(node_slices(node)) if children else [])


def test_default_costs_are_the_mig_model_costs():
    assert dict(CREATE_COST) == {1: 0.16, 2: 0.17, 3: 0.20, 4: 0.21, 7: 0.24}
    assert dict(DESTROY_COST) == {1: 0.20, 2: 0.20, 3: 0.21, 4: 0.21, 7: 0.22}


# The worked example (section 9).


def test_example_phase1_family():
    assert allocation_family(EXAMPLE) == [
        [2, 2, 3, 1],
        [3, 2, 3, 1],
        [4, 2, 3, 1],
        [7, 2, 3, 1],
    ]


def test_example_phase2_candidates():
    family = allocation_family(EXAMPLE)
    plans = [tree_schedule(EXAMPLE, alloc, UNIT, UNIT) for alloc in family]
    assert [plan.makespan for plan in plans] == [23, 28, 27, 30]

    f0, f1, f2, f3 = plans
    assert timeline(f0) == {
        C: ((4, 3), 1, 12),
        A: ((0, 2), 2, 21),
        B: ((2, 2), 3, 10),
        D: ((2, 1), 12, 23),
    }
    assert f0.slice_end == (21, 21, 23, 10, 12, 12, 12)
    assert f0.node_lists[(4, 3)] == (C,) and f0.node_lists[(3, 1)] == ()

    assert f1.node_lists[(4, 3)] == (A, C)
    assert (f1.start[A], f1.end[A], f1.start[C], f1.end[C]) == (1, 17, 17, 28)
    assert timeline(f2) == {
        A: ((0, 4), 1, 16),
        C: ((4, 3), 2, 13),
        B: ((4, 2), 15, 22),
        D: ((6, 1), 16, 27),
    }
    assert timeline(f3) == {
        A: ((0, 7), 1, 15),
        C: ((4, 3), 17, 28),
        B: ((0, 2), 18, 25),
        D: ((2, 1), 19, 30),
    }


def test_example_phase3_moves():
    best = tree_schedule(EXAMPLE, allocation_family(EXAMPLE)[0], UNIT, UNIT)
    refined = refine(EXAMPLE, best)
    assert refined.moves == (Move(D, (2, 1), (3, 1)), Move(B, (2, 2), (4, 2)))
    assert refined.slice_end == (21, 21, 5, 14, 19, 19, 12)


def test_example_retimed_plan():
    result = plan_far(EXAMPLE, UNIT, UNIT)
    assert result.allocation_index == 0
    assert result.allocation == (2, 2, 3, 1)
    assert result.phase2_makespan == 23
    assert result.phase2.slice_end == (21, 21, 23, 10, 12, 12, 12)
    assert result.refined_estimate == 21
    assert result.makespan == result.plan.makespan == 21
    assert timeline(result.plan) == {
        C: ((4, 3), 1, 12),
        A: ((0, 2), 2, 21),
        D: ((3, 1), 3, 14),
        B: ((4, 2), 14, 21),
    }
    assert result.unschedulable == ()


# Phase 1 (section 3).


def test_best_size_equal_area_takes_the_larger_size():
    assert best_size((8, 4, INF, 2, INF)) == 4  # areas 8, 8, -, 8, -
    assert best_size((INF, 6, 4, 3, 14)) == 4  # areas -, 12, 12, 12, 98
    assert best_size((8, 4, INF, 2, INF), above=4) is None


def test_best_size_skips_infinite_and_smaller_sizes():
    assert best_size((1, INF, 100, 100, 100)) == 1
    assert best_size((1, INF, 100, 100, 100), above=1) == 3
    assert best_size((INF,) * 5) is None


def test_family_can_jump_more_than_one_size():
    # Areas: 2g 20, 3g 60, 4g 80, 7g 21: the task starts at 2g and jumps straight to 7g.
    assert allocation_family([(INF, 10, 20, 20, 3)]) == [[2], [7]]


def test_family_moves_the_longest_task_with_ties_to_the_lowest_index():
    # Areas 2g 10, 3g 12, 7g 21. Equal times at each step: task 0 moves first.
    times = [(INF, 5, 4, INF, 3), (INF, 5, 4, INF, 3)]
    assert allocation_family(times) == [[2, 2], [3, 2], [3, 3], [7, 3], [7, 7]]


def test_family_guard_stops_when_the_longest_task_fits_no_larger_size():
    # Areas 10, 12, -, 20, -: 1g, then 2g, then 4g, then nothing larger fits.
    assert allocation_family([(10, 6, INF, 5, INF), (1, 1, 1, 1, 1)]) == [
        [1, 1],
        [2, 1],
        [4, 1],
    ]


def test_family_rejects_a_task_that_fits_nowhere():
    with pytest.raises(ValueError):
        allocation_family([(INF,) * 5])


def test_all_infinite_task_is_dropped_and_reported():
    result = plan_far([(INF,) * 5, (2, 1.5, 1, 1, 1), (INF,) * 5, (4, INF, INF, INF, INF)])
    assert result.unschedulable == (0, 2)
    assert result.allocation[0] is None and result.allocation[2] is None
    assert sorted(result.plan.start) == [1, 3]
    assert sorted(t for tasks in result.plan.node_lists.values() for t in tasks) == [1, 3]
    assert sorted(t for tasks in result.phase2.node_lists.values() for t in tasks) == [1, 3]


@pytest.mark.parametrize("row", [(1, 2, 3, 4), (1, 2, 0, 4, 5), (1, -1, 3, 4, 5), (1, math.nan, 1, 1, 1)])
def test_invalid_times_are_rejected(row):
    with pytest.raises(ValueError):
        plan_far([row])


def test_empty_batch():
    result = plan_far([])
    assert result.makespan == 0 and result.unschedulable == () and result.moves == ()


# Phase 2 (section 4).


def test_root_runs_all_7g_tasks_first_and_only_nodes_that_ran_tasks_pay_a_destroy():
    times = [(INF, INF, INF, INF, 5), (INF, INF, INF, INF, 4), (3, INF, INF, INF, INF)]
    create = {size: float(size) for size in SIZES}
    destroy = {size: 10.0 * size for size in SIZES}
    plan = tree_schedule(times, [7, 7, 1], create, destroy)
    # Root: created 0-7, runs 7-12 and 12-16, destroyed 16-86. The empty 4g, 3g and 2g nodes
    # split for free; the first 1g node popped (breadth first: 1g@6) is created 86-87.
    assert plan.node_lists[ROOT] == (0, 1)
    assert timeline(plan) == {0: (ROOT, 7, 12), 1: (ROOT, 12, 16), 2: ((6, 1), 87, 90)}
    assert plan.slice_end == (16, 16, 16, 16, 16, 16, 90)
    assert plan.makespan == 90


def test_no_final_destroy_and_lpt_within_a_size():
    times = [(INF, t, INF, INF, INF) for t in (1, 3, 2, 3)]
    plan = tree_schedule(times, [2, 2, 2, 2], UNIT, UNIT)
    # Breadth first: 2g@0, 2g@2 and 2g@4 are free at 0; longest first, ties to the lower index.
    assert timeline(plan) == {
        1: ((0, 2), 1, 4),
        3: ((2, 2), 2, 5),
        2: ((4, 2), 3, 5),
        0: ((0, 2), 4, 5),
    }
    assert plan.makespan == 5


# Phase 3 (section 6).


def test_pick_probes_both_neighbours_of_half_the_budget():
    # Half is 5. The search probes 7, then 4.5 (closer, below half), then 6.
    assert pick([9, 8, 7, 6, 4.5, 1], 10) == 4
    # It probes 4, then 9 (not below the budget), then 5.5 (closer, above half).
    assert pick([9, 5.5, 4, 3, 2, 1], 10) == 1


def test_pick_bound_ties_and_edges():
    assert pick([], 10) is None
    assert pick([3], 10) == 0  # hi = mid - 1 = -1 must stop the search
    assert pick([5], 5 + 0.5e-4) is None  # not below budget - EPS
    assert pick([5], 5 + 2e-4) == 0
    assert pick([6, 4], 10) == 0  # equal distance: the first probed wins
    assert pick([12, 11], 10) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 20), max_size=12).map(lambda ts: sorted(ts, reverse=True)),
    st.integers(1, 40),
)
def test_pick_matches_the_global_rule_up_to_ties(durations, budget):
    eligible = [t for t in durations if t < budget - 1e-4]
    index = pick(durations, budget)
    if not eligible:
        assert index is None
    else:
        assert abs(durations[index] - budget / 2) == min(abs(t - budget / 2) for t in eligible)


def test_refinement_move_shortens_the_plan():
    times = [(INF, 1, INF, INF, INF)] * 3
    best = tree_schedule(times, [2, 2, 2], UNIT, UNIT)
    # Creates are serialised: 2g@0 runs 1-2, 2g@2 runs 2-3, 2g@4 runs 3-4.
    assert best.slice_end == (2, 2, 3, 3, 4, 4, 0) and best.makespan == 4
    refined = refine(times, best)
    # 1g@4 and 1g@5 are critical with empty lists, so 2g@4 is queued twice. The first visit moves
    # task 2 to 2g@0 (U = 2), in front of the equal-time task 0; the second finds no
    # alternative below 3 and walks up to the root.
    assert refined.moves == (Move(2, (4, 2), (0, 2)),)
    assert refined.node_lists[(0, 2)] == (2, 0)
    assert refined.node_lists[(4, 2)] == ()
    assert refined.slice_end == (3, 3, 3, 3, 3, 3, 0)
    final = retime(times, refined.node_lists, UNIT, UNIT)
    assert timeline(final) == {2: ((0, 2), 1, 2), 1: ((2, 2), 2, 3), 0: ((0, 2), 2, 3)}
    assert final.makespan == 3


def test_refinement_alternative_ties_go_to_the_first_node_in_dfs_order():
    times = [(1, INF, INF, INF, INF)] * 8
    best = tree_schedule(times, [1] * 8, UNIT, UNIT)
    # Breadth first, 1g@6 is created first (1-2) and later takes the eighth task (2-3); the
    # other 1g nodes are created one after another, so 1g@5 ends last, at 8.
    assert best.node_lists[(6, 1)] == (0, 7) and best.node_lists[(5, 1)] == (6,)
    assert best.slice_end == (3, 4, 5, 6, 7, 8, 3)
    refined = refine(times, best)
    # Round 1: 1g@5's alternatives 1g@0 and 1g@6 both end at 3; 1g@0 comes first in DFS order.
    # Round 2: 1g@4 (7) hands task 5 to 1g@6 (3), in front of its equal-time tasks; 1g@5 is
    # critical with an empty list and walks up to the root.
    assert refined.moves == (Move(6, (5, 1), (0, 1)), Move(5, (4, 1), (6, 1)))
    assert refined.node_lists[(0, 1)] == (6, 1)
    assert refined.node_lists[(6, 1)] == (5, 0, 7)
    assert refined.slice_end == (4, 4, 5, 6, 6, 7, 4)
    assert retime(times, refined.node_lists, UNIT, UNIT).makespan == 6


def test_refinement_does_not_requeue_a_node_that_moved_a_task():
    times = [(3, 7, 14, 11, 11), (8, 14, 3, 11, 9), (1, 13, 2, 6, 10)]
    best = tree_schedule(times, [1, 3, 1], UNIT, UNIT)
    assert timeline(best) == {1: ((4, 3), 1, 4), 0: ((0, 1), 2, 5), 2: ((1, 1), 3, 4)}
    assert best.slice_end == (5, 4, 0, 0, 4, 4, 4)
    refined = refine(times, best)
    # Round 1 moves task 0 from 1g@0 to 1g@2 and the queue runs dry; round 2 (max S = 4) moves
    # task 2 from 1g@1 to 1g@3, then walks up from the empty critical leaves to the root.
    assert refined.moves == (Move(0, (0, 1), (2, 1)), Move(2, (1, 1), (3, 1)))
    assert refined.slice_end == (2, 3, 3, 1, 4, 4, 4)


def test_far_keeps_the_retimed_refined_tree_even_when_it_is_worse():
    times = [(4, INF, 10, 2, 1), (2, 3, 14, 7, 12), (14, 15, 10, 3, INF)]
    result = plan_far(times, UNIT, UNIT)
    assert result.allocation == (1, 1, 4)
    assert timeline(result.phase2) == {2: ((0, 4), 1, 4), 0: ((6, 1), 2, 6), 1: ((4, 1), 3, 5)}
    assert result.moves == (Move(0, (6, 1), (5, 1)), Move(1, (4, 1), (6, 1)))
    # S says 4, but re-timing pays the creates again: 1g@5 is created after 1g@6.
    assert result.refined_estimate == 4
    assert timeline(result.plan) == {2: ((0, 4), 1, 4), 1: ((6, 1), 2, 4), 0: ((5, 1), 3, 7)}
    assert result.phase2_makespan == 6 and result.makespan == 7


def test_refinement_stops_at_the_root_without_moves():
    times = [(INF, INF, INF, INF, 5)]
    best = tree_schedule(times, [7])
    refined = refine(times, best)
    assert refined.moves == () and refined.node_lists == best.node_lists


# Properties of whole plans.

finite_time = st.floats(1, 100, allow_nan=False)
task_row = st.lists(st.one_of(st.just(INF), finite_time), min_size=5, max_size=5).filter(lambda row: any(math.isfinite(t) for t in row))


def assert_valid_plan(times: list[list[float]], plan: TreePlan) -> None:
    """Each task once, on a fitting node; no two tasks overlap on a node or along a path."""
    placed = [task for tasks in plan.node_lists.values() for task in tasks]
    assert sorted(placed) == list(range(len(times)))
    assert sorted(plan.start) == sorted(plan.end) == list(range(len(times)))
    intervals = {}
    for node, tasks in plan.node_lists.items():
        intervals[node] = []
        for task in tasks:
            duration = task_time(times, task, node[1])
            assert math.isfinite(duration)
            assert plan.end[task] - plan.start[task] == pytest.approx(duration)
            intervals[node].append((plan.start[task], plan.end[task]))
        for (_, end), (start, _) in zip(intervals[node], intervals[node][1:]):
            assert end <= start
    for node in DFS_ORDER:
        ancestor = PARENT.get(node)
        while ancestor is not None:
            for s1, e1 in intervals[node]:
                for s2, e2 in intervals[ancestor]:
                    assert e1 <= s2 or e2 <= s1
            ancestor = PARENT.get(ancestor)
    assert plan.makespan == max(plan.end.values())
    assert plan.makespan >= max(min(t for t in row if math.isfinite(t)) for row in times)


@settings(max_examples=150, deadline=None)
@given(st.lists(task_row, min_size=1, max_size=14))
def test_plans_are_valid_for_random_batches(times):
    result = plan_far(times)
    assert result.unschedulable == ()
    assert_valid_plan(times, result.plan)
    assert_valid_plan(times, result.phase2)
    makespans = [tree_schedule(times, alloc).makespan for alloc in allocation_family(times)]
    assert result.allocation_index == makespans.index(min(makespans))
    assert result.phase2_makespan == min(makespans)
