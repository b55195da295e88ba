"""Measuring a schedule on real time (MIG_MODEL.md section 8).

`replay` turns an episode's decision log back into a real-time schedule: every slice keeps the
second at which it becomes free, a task starts when all its instance's slices are free, and a
reconfiguration makes each new instance free once the old ones are destroyed and it is created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

import migsched.a100 as a100
from migsched.state import RECONFIGURE, RUN, Decision

BUSY = "busy"


class Interval(NamedTuple):
    """A bar of the schedule, in real seconds: a task run ("run"), an instance's reconfiguration
    ("reconfigure") or an instance busy at the start with the previous batch ("busy")."""

    kind: str
    start: float
    end: float
    slices: tuple[int, ...]
    task: int = -1  # the task index, for runs
    size: int = 0  # the instance size
    step: int = -1  # the index of the decision in the log that made it


@dataclass
class Schedule:
    """The replayed schedule: its bars, on the GPU's own slices, and the latest free time of each slice."""

    intervals: list[Interval] = field(default_factory=list)
    free: list[float] = field(default_factory=list)

    @property
    def makespan(self) -> float:
        return max(self.free)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: the makespan, each slice's free time and every bar."""
        return {"makespan": self.makespan, "free": list(self.free), "intervals": [{**bar._asdict(), "slices": list(bar.slices)} for bar in self.intervals]}


def replay(
    tasks: np.ndarray,
    log: Sequence[Decision],
    initial_partition: int,
    initial_free: Sequence[float],
    record: bool = True,
) -> Schedule:
    """Replay `log` on the real task times from the initial partition and per-slice free times
    (seconds). With `record=False` only the free times are kept (enough for the makespan)."""
    schedule = Schedule(free=[float(f) for f in initial_free])
    free, partition, times, bars = schedule.free, initial_partition, tasks.tolist(), schedule.intervals
    if record:
        for inst in a100.INSTANCES[initial_partition]:
            if free[inst.start] > 0.0:
                bars.append(Interval(BUSY, 0.0, free[inst.start], inst.slices, size=inst.size))
    swapped = False  # whether an odd number of 11-13 relabellings has renamed the slices
    for step, decision in enumerate(log):
        if decision.kind == RUN:
            inst = a100.INSTANCES[partition][decision.instance]
            start = max(free[s] for s in inst.slices)
            end = start + times[decision.target][inst.column]
            for s in inst.slices:
                free[s] = end
            if record:
                slices = _physical(inst.slices) if swapped else inst.slices
                bars.append(Interval(RUN, start, end, slices, decision.target, inst.size, step))
        elif decision.kind == RECONFIGURE:
            target = decision.target
            for inst, destroy, create in a100.NEW_INSTANCE_COSTS[partition, target]:
                ready = max(free[s] + cost for s, cost in zip(inst.slices, destroy)) + create
                if record:
                    slices = _physical(inst.slices) if swapped else inst.slices
                    bars.append(Interval(RECONFIGURE, max(free[s] for s in inst.slices), ready, slices, size=inst.size, step=step))
                for s in inst.slices:
                    free[s] = ready
            if target in a100.RELABEL:
                free[:] = [free[s] for s in a100.RELABEL_SLICE_ORDER]
                swapped = not swapped
                target = a100.RELABEL[target]
            partition = target
    return schedule


def _physical(slices: tuple[int, ...]) -> tuple[int, ...]:
    """The GPU's own slices behind model slices renamed by an 11-13 relabelling (0,1 <-> 2,3)."""
    return tuple(sorted(a100.RELABEL_SLICE_ORDER[s] for s in slices))


def lower_bound(tasks: np.ndarray, initial_free: Sequence[float]) -> float:
    """The larger of the total least work plus initial busy slice-seconds over 7 slices, and the longest shortest task."""
    least_area = (tasks * np.array(a100.SIZES)).min(axis=1)
    shortest = tasks.min(axis=1)
    return max((float(least_area.sum()) + sum(initial_free)) / a100.NUM_SLICES, float(shortest.max()))
