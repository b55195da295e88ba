"""Measuring a schedule on real time (MIG_MODEL.md section 8).

`replay` turns an episode's decision log back into a real-time schedule: every slice keeps the
second at which it becomes free, a task starts when all its instance's slices are free, and a
reconfiguration makes each new instance free once the old ones are destroyed and it is created.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from migsched import a100
from migsched.state import RECONFIGURE, RUN, Decision


@dataclass(frozen=True)
class Interval:
    """A bar of the schedule: a task or a reconfiguration on some slices, in real seconds."""

    kind: str  # "run" or "reconfigure"
    start: float
    end: float
    slices: tuple[int, ...]
    task: int = -1  # the task index for runs
    size: int = 0  # instance size


@dataclass
class Schedule:
    """The replayed schedule: its bars and the latest free time of each slice."""

    intervals: list[Interval] = field(default_factory=list)
    free: list[float] = field(default_factory=list)

    @property
    def makespan(self) -> float:
        return max(self.free)


def replay(
    tasks: np.ndarray,
    log: Sequence[Decision],
    initial_partition: int,
    initial_free: Sequence[float],
) -> Schedule:
    """Replay `log` on the real task times from the initial partition and per-slice free times (seconds)."""
    schedule = Schedule(free=[float(f) for f in initial_free])
    free, partition = schedule.free, initial_partition
    for decision in log:
        if decision.kind == RUN:
            inst = a100.INSTANCES[partition][decision.instance]
            start = max(free[s] for s in inst.slices)
            end = start + float(tasks[decision.target][a100.SIZE_INDEX[inst.size]])
            for s in inst.slices:
                free[s] = end
            schedule.intervals.append(Interval(RUN, start, end, inst.slices, decision.target, inst.size))
        elif decision.kind == RECONFIGURE:
            target, old_labels = decision.target, a100.LABELS[partition]
            for inst in a100.NEW_INSTANCES[partition, target]:
                begin = min(free[s] for s in inst.slices)
                ready = max(free[s] + a100.DESTROY_COST[old_labels[s]] for s in inst.slices)
                ready += a100.CREATE_COST[inst.size]
                for s in inst.slices:
                    free[s] = ready
                schedule.intervals.append(Interval(RECONFIGURE, begin, ready, inst.slices, size=inst.size))
            if target in a100.RELABEL:
                free[:] = [free[s] for s in a100.RELABEL_SLICE_ORDER]
                schedule.intervals[:] = [_relabelled(i) for i in schedule.intervals]
                target = a100.RELABEL[target]
            partition = target
    return schedule


def _relabelled(interval: Interval) -> Interval:
    """The same bar drawn on the slices it has after an 11-13 relabelling swaps slices 0,1 with 2,3."""
    order = a100.RELABEL_SLICE_ORDER
    slices = tuple(sorted(order.index(s) for s in interval.slices))
    return Interval(interval.kind, interval.start, interval.end, slices, interval.task, interval.size)


def lower_bound(tasks: np.ndarray, initial_free: Sequence[float]) -> float:
    """The larger of the total least work plus initial busy slice-seconds over 7 slices, and the longest shortest task."""
    areas = [min(size * t for size, t in zip(a100.SIZES, task) if math.isfinite(t)) for task in tasks.tolist()]
    shortest = [min(t for t in task if math.isfinite(t)) for task in tasks.tolist()]
    return max((sum(areas) + sum(initial_free)) / a100.NUM_SLICES, max(shortest))
