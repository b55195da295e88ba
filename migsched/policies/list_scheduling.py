"""List scheduling of the ready tasks on one partition: the planning step of `static` and `greedy`.

`plan` estimates, in real seconds, how a partition would serve the ready tasks: the task whose
best achievable finish is latest goes first, onto the instance that finishes it earliest, and
so on (longest first, earliest finish). `next_action` turns such a plan into one env action.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import migsched.a100 as a100
from migsched.state import FIRST_RUN_ACTION, SchedState


class Plan(NamedTuple):
    """A list schedule: its estimated makespan and, in order, (type slot, instance) assignments."""

    makespan: float
    assignments: list[tuple[int, int]]


def instance_free(state: SchedState, partition: int) -> list[float]:
    """Seconds from now until each instance of `partition` is free, if the GPU reconfigured there now."""
    step = state.step_seconds
    rem = state.rem
    if partition == state.partition:
        return [rem[inst.start] * step for inst in a100.INSTANCES[partition]]
    ready = {
        inst.start: max(rem[s] * step + cost for s, cost in zip(inst.slices, destroy)) + create
        for inst, destroy, create in a100.NEW_INSTANCE_COSTS[state.partition, partition]
    }
    return [ready.get(inst.start, rem[inst.start] * step) for inst in a100.INSTANCES[partition]]


def plan(state: SchedState, partition: int) -> Plan:
    """List-schedule the ready tasks on `partition`; the makespan is infinite if one fits no instance
    (the others are still planned)."""
    insts = a100.INSTANCES[partition]
    free = instance_free(state, partition)
    makespan = max(state.rem) * state.step_seconds
    jobs = []
    for slot, queue in enumerate(state.queues):
        for task in queue:
            times = [state.tasks[task][inst.column] for inst in insts]
            best = min(f + t for f, t in zip(free, times))
            if math.isinf(best):
                makespan = math.inf
            else:
                jobs.append((-best, slot, times))
    jobs.sort(key=lambda job: job[0])
    assignments = []
    for _, slot, times in jobs:
        j = min(range(len(insts)), key=lambda k: free[k] + times[k])
        free[j] += times[j]
        assignments.append((slot, j))
    return Plan(max(makespan, *free), assignments)


def next_action(state: SchedState, schedule: Plan) -> int:
    """Run the first planned assignment whose instance is idle now; wait when there is none."""
    for slot, j in schedule.assignments:
        if state.rem[a100.INSTANCES[state.partition][j].start] == 0.0:
            return FIRST_RUN_ACTION + a100.NUM_SLICES * slot + j
    return 0


def same_partition(p: int, q: int) -> bool:
    """Whether p and q are the same partition up to the 11-13 relabelling."""
    return a100.RELABEL.get(p, p) == a100.RELABEL.get(q, q)
