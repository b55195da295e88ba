"""Tests for the CP-SAT reference scheduler."""

from __future__ import annotations

import math
import random

import pytest

from migsched.policies.cpsat import PLACEMENTS, SIZES, placement_slices, solve_cpsat

INF = math.inf
IDLE = [0.0] * 7


def random_batch(rng: random.Random, n: int) -> list[list[float]]:
    """Draw ``n`` tasks: 1-slice time in [1, 100] s, each bigger size 0.55-1.0x faster."""
    batch = []
    for _ in range(n):
        row = [rng.uniform(1.0, 100.0)]
        for _ in SIZES[1:]:
            row.append(row[-1] * rng.uniform(0.55, 1.0))
        batch.append(row)
    return batch


def work_lower_bound(times: list[list[float]], initial_free: list[float]) -> float:
    """Area bound and longest-task bound on the real optimum."""
    area = sum(min(s * t for s, t in zip(SIZES, row)) for row in times) + sum(initial_free)
    return max(area / 7, max(min(row) for row in times))


def assert_valid(result, times: list[list[float]], initial_free: list[float]) -> None:
    """Check placements, durations, busy slices and per-slice non-overlap in real seconds."""
    assert len(result.placements) == len(times)
    for i, (placement, row) in enumerate(zip(result.placements, times)):
        assert placement in PLACEMENTS
        duration = row[SIZES.index(placement[0])]
        assert math.isfinite(duration)
        assert result.ends[i] == pytest.approx(result.starts[i] + duration)
        for s in placement_slices(placement):
            assert result.starts[i] >= initial_free[s] - 1e-9
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            if set(placement_slices(result.placements[i])) & set(placement_slices(result.placements[j])):
                assert result.ends[i] <= result.starts[j] + 1e-9 or result.ends[j] <= result.starts[i] + 1e-9
    assert result.makespan == pytest.approx(max(result.ends))
    assert result.makespan <= result.solver_makespan + 1e-9
    assert result.real_lower_bound <= result.makespan + 1e-9


def test_placements_and_slices() -> None:
    assert len(PLACEMENTS) == 13
    assert list(placement_slices((3, 4))) == [4, 5, 6]
    assert list(placement_slices((7, 0))) == list(range(7))
    with pytest.raises(ValueError):
        placement_slices((3, 0))


def test_hand_built_optimum_shares_slices() -> None:
    # Three identical tasks: 1 slice 12 s, 2 slices 7 s, 3 slices 4 s, 4 slices 3.1234 s, no 7.
    # Any task on 1 or 2 slices ends at >= 7 s. Without those, only 4@0 and 3@4 remain, which are
    # disjoint, so one of them runs two tasks back to back: 4@0 twice = 6.2468 s (3@4 twice = 8 s).
    # The optimum 6.2468 s therefore puts two tasks on 4@0 sharing slices 0-3, the third on 3@4.
    # The integer model rounds 3.1234 s up to 3.124 s, so the solver reports 6.248 s.
    times = [[12.0, 7.0, 4.0, 3.1234, INF]] * 3
    result = solve_cpsat(times, IDLE)
    assert result.proven_optimal
    assert result.makespan == pytest.approx(6.2468, abs=1e-9)
    assert result.solver_makespan == pytest.approx(6.248, abs=1e-9)
    assert result.best_bound == pytest.approx(6.248, abs=1e-9)
    assert sorted(result.placements) == [(3, 4), (4, 0), (4, 0)]
    assert_valid(result, times, IDLE)


def test_hand_built_optimum_with_busy_slice() -> None:
    # Slice 0 is busy until 3.0004 s. Task A only fits 7 slices (2 s), so it starts at 3.0004 s and
    # ends at 5.0004 s. Task B only fits 3 slices (2.5 s): on 3@4 it must end before A starts, which
    # it can ([0, 2.5)). Task C only fits 1 slice (1.5 s): slice 0 is busy and slices 4-6 hold B
    # until 2.5 s, so it takes one of slices 1-3 at [0, 1.5). Optimum = 5.0004 s (solver: 5.001 s).
    initial_free = [3.0004, 0, 0, 0, 0, 0, 0]
    times = [[INF, INF, INF, INF, 2.0], [INF, INF, 2.5, INF, INF], [1.5, INF, INF, INF, INF]]
    result = solve_cpsat(times, initial_free)
    assert result.proven_optimal
    assert result.makespan == pytest.approx(5.0004, abs=1e-9)
    assert result.solver_makespan == pytest.approx(5.001, abs=1e-9)
    assert result.placements[0] == (7, 0)
    assert result.placements[1] == (3, 4)
    assert result.placements[2] in {(1, 1), (1, 2), (1, 3)}
    assert result.starts[0] == pytest.approx(3.0004)
    assert_valid(result, times, initial_free)


def test_infinite_sizes_are_never_used() -> None:
    rng = random.Random(7)
    times = []
    for row in random_batch(rng, 6):
        keep = rng.randrange(len(SIZES))
        times.append([t if k == keep or rng.random() < 0.4 else INF for k, t in enumerate(row)])
    initial_free = [0, 5.0, 0, 0, 12.5, 0, 0]
    result = solve_cpsat(times, initial_free, time_limit=5.0)
    for placement, row in zip(result.placements, times):
        assert math.isfinite(row[SIZES.index(placement[0])])
    assert_valid(result, times, initial_free)


def test_random_batch_proven_optimal_above_lower_bound() -> None:
    times = random_batch(random.Random(3), 5)
    initial_free = [0, 0, 10.0, 0, 0, 0, 4.5]
    result = solve_cpsat(times, initial_free, time_limit=10.0)
    assert result.proven_optimal
    assert result.makespan >= work_lower_bound(times, initial_free) - 1e-9
    assert result.best_bound == pytest.approx(result.solver_makespan)
    assert_valid(result, times, initial_free)


def test_options_give_same_optimum() -> None:
    times = random_batch(random.Random(11), 4)
    base = solve_cpsat(times, IDLE, redundant=False)
    assert base.proven_optimal
    hint = list(zip(base.placements, base.starts))
    lower = work_lower_bound(times, IDLE)
    variants = ({"redundant": True}, {"hint": hint}, {"lower_bound": lower}, {"hint": hint, "lower_bound": lower})
    for kwargs in variants:
        result = solve_cpsat(times, IDLE, **kwargs)
        assert result.proven_optimal
        assert result.solver_makespan == pytest.approx(base.solver_makespan, abs=1e-9)
        assert_valid(result, times, IDLE)


def test_no_solution_in_time_raises_without_a_hint() -> None:
    times = random_batch(random.Random(5), 30)
    with pytest.raises(RuntimeError, match="no schedule"):
        solve_cpsat(times, IDLE, time_limit=1e-9, workers=1)
    infinite = [[1.0, 1.0, 1.0, 1.0, INF]] + times[1:]
    with pytest.raises(RuntimeError, match="no schedule"):
        solve_cpsat(infinite, IDLE, time_limit=1e-9, workers=1, hint=[((7, 0), float(i)) for i in range(30)])


def test_no_solution_in_time_returns_the_hint_replayed() -> None:
    # Every task hinted on 7@0, task 0 last: the replay runs them back to back in the hint's
    # order after the busy slice 3 frees, so the makespan is 2.5 s + the sum of the 7-slice times.
    times = random_batch(random.Random(5), 30)
    initial_free = [0, 0, 0, 2.5, 0, 0, 0]
    hint = [((7, 0), float(30 - i)) for i in range(30)]
    result = solve_cpsat(times, initial_free, time_limit=1e-6, workers=1, hint=hint)
    assert result.from_hint and not result.proven_optimal
    assert result.placements == ((7, 0),) * 30
    assert result.makespan == pytest.approx(2.5 + sum(row[4] for row in times))
    assert result.ends[0] == pytest.approx(result.makespan)
    assert result.starts[29] == pytest.approx(2.5)
    assert_valid(result, times, initial_free)


def test_a_found_schedule_is_not_marked_from_hint() -> None:
    times = random_batch(random.Random(11), 4)
    result = solve_cpsat(times, IDLE, hint=[((7, 0), float(i)) for i in range(4)])
    assert result.proven_optimal and not result.from_hint


def test_a_hint_shorter_than_the_solvers_schedule_is_returned() -> None:
    # Rounding up to 1 ms reverses two schedules: back to back on 7@0 the tasks take
    # 1.1 ms each (2 units each, 4 in all) and in parallel on 4@0 and 3@4 they take 3 ms
    # (3 units). CP-SAT proves the parallel one optimal in units, which replays to 3 ms, while
    # the hinted back-to-back schedule replays to 2.2 ms: the hint is returned.
    times = [[INF, INF, 0.003, 0.003, 0.0011]] * 2
    hint = [((7, 0), 0.0), ((7, 0), 0.0011)]
    assert solve_cpsat(times, IDLE).makespan == pytest.approx(0.003)
    result = solve_cpsat(times, IDLE, hint=hint)
    assert result.from_hint and result.proven_optimal
    assert result.makespan == pytest.approx(0.0022)
    assert result.solver_makespan == pytest.approx(0.003)
    assert result.placements == ((7, 0), (7, 0))
    assert_valid(result, times, IDLE)


def test_short_limits_are_never_worse_than_the_hint() -> None:
    # Hinted with a good schedule (CP-SAT's own after 1 s), a solve of 10-100 ms returns
    # that schedule or a better one, whatever it finds in time.
    rng = random.Random(21)
    for _ in range(4):
        times = random_batch(rng, 14)
        good = solve_cpsat(times, IDLE, time_limit=1.0, workers=1)
        hint = list(zip(good.placements, good.starts))
        for limit in (0.01, 0.1):
            result = solve_cpsat(times, IDLE, time_limit=limit, workers=1, hint=hint)
            assert result.makespan <= good.makespan + 1e-9
            assert_valid(result, times, IDLE)


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError):
        solve_cpsat([[INF] * 5], IDLE)
    with pytest.raises(ValueError):
        solve_cpsat([[1.0] * 4], IDLE)
    with pytest.raises(ValueError):
        solve_cpsat([[1.0] * 5], [0.0] * 6)
    with pytest.raises(ValueError):
        solve_cpsat([[1.0] * 5], IDLE, lower_bound=100.0)
