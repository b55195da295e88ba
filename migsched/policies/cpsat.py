"""CP-SAT reference schedule for one batch of tasks on a MIG-partitioned A100.

Reconfiguration costs are ignored: every task picks one valid placement
(instance size and start slice) whose execution time is finite and a start
time; tasks sharing a compute slice never run at the same time, and no task
uses a slice before it becomes free. The makespan (latest task end) is
minimized.

Rounding. CP-SAT needs integers, so times are expressed in units of
``RESOLUTION`` seconds and every duration, and every initial busy period, is
rounded UP (and a task lasts at least one unit). Hence any schedule of the
integer model stays feasible with the real times: replaying the solver's
placements and per-slice order as a left-shifted schedule in real seconds
starts each task no later than the solver does, so the reported ``makespan``
(the replay) is never above ``solver_makespan``. Conversely, rounding adds
at most one unit per item on a critical chain (at most the number of tasks
plus one busy period), so the optimum of the integer model exceeds the real
optimum by at most ``(n_tasks + 1) * RESOLUTION``; ``real_lower_bound``
subtracts that slack from the solver's bound and is a valid lower bound on the
real optimum. ``proven_optimal`` refers to the integer model, whose optimum
replays within ``(n_tasks + 1) * RESOLUTION`` of the real optimum. A real
lower bound ``L`` passed as ``lower_bound`` is safe to impose as
``makespan >= ceil(L / RESOLUTION)`` because every integer solution is at
least as long as its real replay.

Hints: a hint's own placements and start order are replayed the same way, and when that
schedule is shorter than the solver's (CP-SAT found none in time, or only a worse one at a short
limit) it is returned, marked ``from_hint``: the result is never worse than its hint. Without a
hint (or with one that is not a schedule) and no solution in time, it raises.

Determinism: with several workers and a time limit, CP-SAT may return
different (equally valid) solutions from run to run unless it proves
optimality; ``seed`` and ``workers`` fix what can be fixed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

import migsched.a100 as a100
from migsched.a100 import NUM_SLICES, SIZES
from migsched.cli import CPSAT_SECONDS

# Every (size, start slice) that some partition has: 7@0, 4@0, 3@4, 2@0, 2@2, 2@4, 1@0..1@6.
PLACEMENTS: tuple[tuple[int, int], ...] = tuple(
    sorted({(inst.size, inst.start) for insts in a100.INSTANCES.values() for inst in insts}, key=lambda p: (-p[0], p[1]))
)
RESOLUTION = 1e-3
"""Seconds per integer time unit of the CP-SAT model."""

_UNITS_PER_SECOND = round(1 / RESOLUTION)
_BOUND_TOLERANCE = 1e-6
"""Units forgiven when scaling ``lower_bound``, so float noise never cuts off the optimum."""


def placement_slices(placement: tuple[int, int]) -> range:
    """Return the slices occupied by a (size, start slice) placement."""
    if placement not in PLACEMENTS:
        raise ValueError(f"invalid placement {placement!r}")
    size, start = placement
    return range(start, start + size)


@dataclass(frozen=True)
class CpsatResult:
    """Best schedule found by CP-SAT, replayed in real seconds.

    ``placements[i]``, ``starts[i]`` and ``ends[i]`` describe task ``i`` in the
    real-time replay; ``makespan`` is the largest end, initially busy slices included.
    ``solver_makespan`` and ``best_bound`` are the solver's objective and
    bound on the rounded-up integer model, in seconds. ``from_hint``: this is
    the hint's schedule, replayed, because the solver found none in time (then
    ``solver_makespan`` is the hint's makespan and ``best_bound`` the solver's
    bound if it had one, else 0) or only a longer one.
    """

    makespan: float
    solver_makespan: float
    proven_optimal: bool
    best_bound: float
    real_lower_bound: float
    placements: tuple[tuple[int, int], ...]
    starts: tuple[float, ...]
    ends: tuple[float, ...]
    wall_time: float
    from_hint: bool = False


def _to_units(seconds: float) -> int:
    """Round non-negative seconds up to integer units, guarding float error."""
    units = math.ceil(seconds * _UNITS_PER_SECOND)
    return units + 1 if units / _UNITS_PER_SECOND < seconds else units


def _validate(times: Sequence[Sequence[float]], initial_free: Sequence[float]) -> None:
    if len(initial_free) != NUM_SLICES:
        raise ValueError(f"initial_free must have {NUM_SLICES} entries")
    if any(not (math.isfinite(f) and f >= 0) for f in initial_free):
        raise ValueError("initial_free entries must be finite and >= 0")
    for i, row in enumerate(times):
        if len(row) != len(SIZES):
            raise ValueError(f"task {i}: expected {len(SIZES)} times, got {len(row)}")
        if any(math.isnan(t) or t < 0 for t in row):
            raise ValueError(f"task {i}: times must be >= 0 or math.inf")
        if all(math.isinf(t) for t in row):
            raise ValueError(f"task {i}: no instance size has a finite time")


def _replay(
    times: Sequence[Sequence[float]],
    initial_free: Sequence[float],
    chosen: Sequence[tuple[int, int]],
    order: Sequence[float],
) -> tuple[list[float], list[float]]:
    """Left-shift placements in real seconds, taking the tasks by `order` (their starts in any unit)."""
    free = [float(f) for f in initial_free]
    starts = [0.0] * len(chosen)
    ends = [0.0] * len(chosen)
    for i in sorted(range(len(chosen)), key=lambda i: (order[i], i)):
        slices = placement_slices(chosen[i])
        starts[i] = max(free[s] for s in slices)
        ends[i] = starts[i] + times[i][SIZES.index(chosen[i][0])]
        for s in slices:
            free[s] = ends[i]
    return starts, ends


def _is_schedule(times: Sequence[Sequence[float]], hint: Sequence[tuple[tuple[int, int], float]]) -> bool:
    """Whether every task's hinted placement exists and has a finite time for it."""
    return all(tuple(placement) in PLACEMENTS and math.isfinite(row[SIZES.index(placement[0])]) for row, (placement, _) in zip(times, hint))


def solve_cpsat(
    times: Sequence[Sequence[float]],
    initial_free: Sequence[float],
    time_limit: float = CPSAT_SECONDS,
    workers: int = 2,
    hint: Sequence[tuple[tuple[int, int], float]] | None = None,
    seed: int = 0,
    redundant: bool = True,
    lower_bound: float | None = None,
) -> CpsatResult:
    """Minimize the batch makespan with CP-SAT, ignoring reconfiguration costs.

    ``times[i]`` holds task ``i``'s execution times for sizes ``SIZES``
    (``math.inf``: does not fit); ``initial_free[s]`` is when slice ``s``
    becomes free. ``hint`` gives one ((size, start slice), start seconds) per
    task; ``redundant`` adds a cumulative constraint (capacity 7, demand =
    size); ``lower_bound`` (seconds) must be a valid lower bound on the real
    optimum. Returns the hint's schedule replayed (``from_hint``) where it is
    shorter than the solver's or the solver found none; with neither, raises RuntimeError.
    """
    _validate(times, initial_free)
    if hint is not None and len(hint) != len(times):
        raise ValueError("hint must give one (placement, start) per task")

    busy = [_to_units(f) for f in initial_free]
    options: list[list[tuple[tuple[int, int], int]]] = [
        [(p, max(1, _to_units(row[SIZES.index(p[0])]))) for p in PLACEMENTS if math.isfinite(row[SIZES.index(p[0])])] for row in times
    ]
    horizon = max(busy) + sum(min(d for _, d in opts) for opts in options)

    model = cp_model.CpModel()
    makespan = model.NewIntVar(0, horizon, "makespan")
    slice_intervals: list[list[cp_model.IntervalVar]] = [[] for _ in range(NUM_SLICES)]
    all_intervals: list[cp_model.IntervalVar] = []
    demands: list[int] = []
    for s, b in enumerate(busy):
        if b > 0:
            interval = model.NewFixedSizeIntervalVar(0, b, f"busy_{s}")
            slice_intervals[s].append(interval)
            all_intervals.append(interval)
            demands.append(1)

    starts: list[cp_model.IntVar] = []
    presences: list[list[cp_model.IntVar]] = []
    for i, opts in enumerate(options):
        start = model.NewIntVar(0, horizon, f"start_{i}")
        end = model.NewIntVar(0, horizon, f"end_{i}")
        lits = []
        for p, d in opts:
            lit = model.NewBoolVar(f"x_{i}_{p[0]}@{p[1]}")
            interval = model.NewOptionalIntervalVar(start, d, end, lit, f"iv_{i}_{p[0]}@{p[1]}")
            for s in placement_slices(p):
                slice_intervals[s].append(interval)
            all_intervals.append(interval)
            demands.append(p[0])
            lits.append(lit)
        model.AddExactlyOne(lits)
        model.Add(makespan >= end)
        starts.append(start)
        presences.append(lits)

    model.Add(makespan >= max(busy))  # the initially busy instances count, as in the replay
    for intervals in slice_intervals:
        if len(intervals) > 1:
            model.AddNoOverlap(intervals)
    if redundant and all_intervals:
        model.AddCumulative(all_intervals, demands, NUM_SLICES)
    if lower_bound is not None:
        bound_units = math.ceil(lower_bound * _UNITS_PER_SECOND - _BOUND_TOLERANCE)
        if bound_units > horizon:
            raise ValueError(f"lower_bound {lower_bound} s exceeds a feasible schedule's makespan")
        model.Add(makespan >= bound_units)
    if hint is not None:
        for i, (placement, start_seconds) in enumerate(hint):
            model.AddHint(starts[i], math.ceil(start_seconds * _UNITS_PER_SECOND))
            for (p, _), lit in zip(options[i], presences[i]):
                model.AddHint(lit, int(p == tuple(placement)))
    model.Minimize(makespan)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    began = time.perf_counter()
    status = solver.Solve(model)
    wall_time = time.perf_counter() - began
    hinted = _replay_hint(times, initial_free, hint) if hint is not None and _is_schedule(times, hint) else None
    solver_bound = solver.BestObjectiveBound() / _UNITS_PER_SECOND
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        if hinted is None:
            raise RuntimeError(f"CP-SAT found no schedule within {time_limit} s (status {solver.StatusName(status)})")
        bound = solver_bound if math.isfinite(solver_bound) and solver_bound > 0 else 0.0
        return _hint_result(hinted, len(times), hinted[3], False, bound, wall_time)

    chosen = [next(p for (p, _), lit in zip(options[i], presences[i]) if solver.Value(lit)) for i in range(len(times))]
    real_starts, real_ends = _replay(times, initial_free, chosen, [solver.Value(s) for s in starts])
    makespan = max([*real_ends, *initial_free])
    solver_makespan = solver.ObjectiveValue() / _UNITS_PER_SECOND
    if hinted is not None and hinted[3] < makespan:
        return _hint_result(hinted, len(times), solver_makespan, status == cp_model.OPTIMAL, solver_bound, wall_time)
    return CpsatResult(
        makespan=makespan,
        solver_makespan=solver_makespan,
        proven_optimal=status == cp_model.OPTIMAL,
        best_bound=solver_bound,
        real_lower_bound=max(0.0, solver_bound - (len(times) + 1) * RESOLUTION),
        placements=tuple(chosen),
        starts=tuple(real_starts),
        ends=tuple(real_ends),
        wall_time=wall_time,
    )


_Replayed = tuple[tuple[tuple[int, int], ...], list[float], list[float], float]
"""A replayed schedule: placements, starts, ends and makespan in real seconds."""


def _replay_hint(times: Sequence[Sequence[float]], initial_free: Sequence[float], hint: Sequence[tuple[tuple[int, int], float]]) -> _Replayed:
    """The hint's placements and start order, left-shifted in real seconds."""
    chosen = tuple(tuple(placement) for placement, _ in hint)
    hint_starts, hint_ends = _replay(times, initial_free, chosen, [start for _, start in hint])
    return chosen, hint_starts, hint_ends, max([*hint_ends, *initial_free])


def _hint_result(hinted: _Replayed, n_tasks: int, solver_makespan: float, proven_optimal: bool, bound: float, wall_time: float) -> CpsatResult:
    """The hint's schedule as the result, marked ``from_hint``."""
    placements, hint_starts, hint_ends, makespan = hinted
    return CpsatResult(
        makespan=makespan,
        solver_makespan=solver_makespan,
        proven_optimal=proven_optimal,
        best_bound=bound,
        real_lower_bound=max(0.0, bound - (n_tasks + 1) * RESOLUTION),
        placements=placements,
        starts=tuple(hint_starts),
        ends=tuple(hint_ends),
        wall_time=wall_time,
        from_hint=True,
    )
