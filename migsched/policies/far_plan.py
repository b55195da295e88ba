"""FAR's planner: the schedule FAR builds for one batch of tasks on a MIG A100.

FAR (Villarrubia et al., JPDC 2025) plans on a fixed repartitioning tree of MIG instances, as
described in FAR.md, whose rules this module follows:

1. Phase 1 (``allocation_family``) builds a family of candidate allocations (one size per task).
2. Phase 2 (``tree_schedule``) turns each allocation into a tree schedule: LPT list scheduling per
   size, nodes split when their size runs out of tasks, and one serialised clock for every create
   and destroy. The candidate with the smallest makespan wins (ties: the earliest).
3. Phase 3 (``refine``) moves tasks from critical nodes to same-size nodes that finish earlier,
   working only on the per-slice end estimate S, with the three bugs of the public code fixed.
4. ``retime`` runs the Phase-2 loop again with the refined per-node lists fixed. FAR keeps this
   re-timed refined tree even where it is worse than the Phase-2 best.

``plan_far`` runs all of it. Times are in seconds, one row per task in the order of ``SIZES``;
``math.inf`` means the task does not fit that size. Tasks are identified by their row index.
The tree constants and ``TreePlan`` expose what the step-by-step policy of FAR.md section 10
needs: each node's ordered task list, each task's planned start and end, and the tree's shape.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

import migsched.a100 as a100
from migsched.a100 import NUM_SLICES, SIZE_INDEX, SIZES

CREATE_COST: Mapping[int, float] = MappingProxyType(a100.CREATE_COST)
DESTROY_COST: Mapping[int, float] = MappingProxyType(a100.DESTROY_COST)

# Phase 3 moves a task only if the receiving node then ends more than EPS seconds before the
# giving node's old end.
EPS = 1e-4
# Phase 3 stops after this many moves per task, as a safety net.
MOVES_PER_TASK = 100

Node = tuple[int, int]
"""A node of the repartitioning tree, i.e. a MIG instance: (start slice, size)."""

ROOT: Node = (0, 7)

# The adapted 13-node tree (FAR.md section 1): each node's children, in order.
CHILDREN: Mapping[Node, tuple[Node, ...]] = MappingProxyType(
    {
        (0, 7): ((0, 4), (4, 3)),
        (0, 4): ((0, 2), (2, 2)),
        (0, 2): ((0, 1), (1, 1)),
        (0, 1): (),
        (1, 1): (),
        (2, 2): ((2, 1), (3, 1)),
        (2, 1): (),
        (3, 1): (),
        (4, 3): ((4, 2), (6, 1)),
        (4, 2): ((4, 1), (5, 1)),
        (4, 1): (),
        (5, 1): (),
        (6, 1): (),
    }
)

PARENT: Mapping[Node, Node] = MappingProxyType({child: node for node, children in CHILDREN.items() for child in children})


def _preorder(node: Node) -> tuple[Node, ...]:
    """The subtree of ``node`` in DFS preorder, left child first."""
    return (node,) + tuple(n for child in CHILDREN[node] for n in _preorder(child))


DFS_ORDER: tuple[Node, ...] = _preorder(ROOT)
LEAVES: tuple[Node, ...] = tuple(node for node in DFS_ORDER if not CHILDREN[node])


def node_slices(node: Node) -> range:
    """The compute slices covered by a node's instance."""
    start, size = node
    return range(start, start + size)


def task_time(times: Sequence[Sequence[float]], task: int, size: int) -> float:
    """Execution time of ``task`` on an instance of ``size`` slices."""
    return times[task][SIZE_INDEX[size]]


@dataclass(frozen=True)
class TreePlan:
    """A timed schedule on the tree.

    ``node_lists`` holds every node (in DFS order) with the tasks it runs, in run order;
    ``start`` and ``end`` give each task's planned times; ``slice_end`` is FAR's per-slice end
    vector S[0..6] (the latest end along each root-to-leaf path) and ``makespan`` is max(S).
    """

    node_lists: Mapping[Node, tuple[int, ...]]
    start: Mapping[int, float]
    end: Mapping[int, float]
    slice_end: tuple[float, ...]
    makespan: float

    def node_of(self, task: int) -> Node:
        """The node that runs ``task``."""
        return next(node for node, tasks in self.node_lists.items() if task in tasks)


class Move(NamedTuple):
    """One Phase-3 move: ``task`` leaves node ``source`` for the same-size node ``target``."""

    task: int
    source: Node
    target: Node


@dataclass(frozen=True)
class Refinement:
    """The outcome of Phase 3: the new per-node lists, the updated S and the moves made."""

    node_lists: Mapping[Node, tuple[int, ...]]
    slice_end: tuple[float, ...]
    moves: tuple[Move, ...]


@dataclass(frozen=True)
class FarPlan:
    """Everything ``plan_far`` decides for one batch; task ids are row indices of the input.

    ``plan`` is FAR's final schedule (the refined tree, re-timed) and ``makespan`` its length.
    ``phase2`` is the best Phase-2 schedule, built from family member ``allocation_index``, whose
    sizes ``allocation`` lists per task (None for an unschedulable task). ``refined_estimate``
    is max(S) after Phase 3 (what the public implementation prints). ``unschedulable`` lists the
    tasks that fit no size; they appear nowhere in the plans.
    """

    plan: TreePlan
    makespan: float
    phase2: TreePlan
    phase2_makespan: float
    refined_estimate: float
    allocation_index: int
    allocation: tuple[int | None, ...]
    moves: tuple[Move, ...]
    unschedulable: tuple[int, ...]


# Phase 1: the family of candidate allocations (FAR.md section 3).


def best_size(row: Sequence[float], above: int = 0) -> int | None:
    """The fitting size above ``above`` with the least area s * t(s); ties: the larger size."""
    fitting = [size for size in SIZES if size > above and math.isfinite(row[SIZE_INDEX[size]])]
    if not fitting:
        return None
    return min(fitting, key=lambda size: (size * row[SIZE_INDEX[size]], -size))


def allocation_family(times: Sequence[Sequence[float]]) -> list[list[int]]:
    """Phase 1: start from each task's least-area size, then repeatedly move the longest task up.

    Every task must fit at least one size. The family ends when the longest task (ties: the
    lowest index) already has the whole GPU, or when it fits no larger size (the guard).
    """
    alloc = []
    for task, row in enumerate(times):
        size = best_size(row)
        if size is None:
            raise ValueError(f"task {task} fits no instance size")
        alloc.append(size)
    family = [list(alloc)]
    while alloc:
        longest = max(range(len(alloc)), key=lambda task: task_time(times, task, alloc[task]))
        if alloc[longest] == 7:
            break
        larger = best_size(times[longest], alloc[longest])
        if larger is None:
            break
        alloc[longest] = larger
        family.append(list(alloc))
    return family


# Phase 2 and re-timing: the event-driven walk down the tree (FAR.md section 4).


def _run_tree(
    times: Sequence[Sequence[float]],
    queue_of: Callable[[Node], deque[int]],
    queues: Collection[deque[int]],
    create: Mapping[int, float],
    destroy: Mapping[int, float],
) -> TreePlan:
    """Walk the tree in time order; node n takes its tasks from ``queue_of(n)``.

    A popped node takes the next task of its queue (created first if it has none yet). When its
    queue is empty but some queue still holds tasks, it splits: it is destroyed if it ran tasks
    and its children become free when it does. Otherwise it is dropped. Nodes pop in order of
    the time they become free, ties first-in first-out; creates and destroys share one clock.
    """
    free = dict.fromkeys(DFS_ORDER, 0.0)
    lists: dict[Node, list[int]] = {node: [] for node in DFS_ORDER}
    start: dict[int, float] = {}
    end: dict[int, float] = {}
    clock = 0.0
    heap: list[tuple[float, int, Node]] = []
    pushes = 0

    def push(node: Node) -> None:
        nonlocal pushes
        heapq.heappush(heap, (free[node], pushes, node))
        pushes += 1

    push(ROOT)
    while heap:
        _, _, node = heapq.heappop(heap)
        size = node[1]
        queue = queue_of(node)
        if queue:
            task = queue.popleft()
            if not lists[node]:
                clock = max(clock, free[node]) + create[size]
                free[node] = clock
            start[task] = free[node]
            free[node] += task_time(times, task, size)
            end[task] = free[node]
            lists[node].append(task)
            push(node)
        elif any(queues):
            if lists[node]:
                clock = max(clock, free[node]) + destroy[size]
            for child in CHILDREN[node]:
                free[child] = free[node]
                push(child)

    slice_end = tuple(max(free[node] for node in DFS_ORDER if k in node_slices(node)) for k in range(NUM_SLICES))
    return TreePlan(
        node_lists={node: tuple(tasks) for node, tasks in lists.items()},
        start=start,
        end=end,
        slice_end=slice_end,
        makespan=max(slice_end),
    )


def tree_schedule(
    times: Sequence[Sequence[float]],
    alloc: Sequence[int],
    create: Mapping[int, float] = CREATE_COST,
    destroy: Mapping[int, float] = DESTROY_COST,
) -> TreePlan:
    """Phase 2: schedule one allocation; the first free node of a size takes its longest task."""
    by_size = {
        size: deque(
            sorted(
                (task for task, s in enumerate(alloc) if s == size),
                key=lambda task: (-task_time(times, task, size), task),
            )
        )
        for size in SIZES
    }
    return _run_tree(times, lambda node: by_size[node[1]], by_size.values(), create, destroy)


def retime(
    times: Sequence[Sequence[float]],
    node_lists: Mapping[Node, Sequence[int]],
    create: Mapping[int, float] = CREATE_COST,
    destroy: Mapping[int, float] = DESTROY_COST,
) -> TreePlan:
    """The Phase-2 walk with fixed per-node lists: each node runs its own list, in order."""
    by_node = {node: deque(node_lists.get(node, ())) for node in DFS_ORDER}
    return _run_tree(times, lambda node: by_node[node], by_node.values(), create, destroy)


# Phase 3: refinement on the slice-end estimate S (FAR.md section 6).


def pick(durations: Sequence[float], budget: float, eps: float = EPS) -> int | None:
    """Index of the duration shorter than ``budget - eps`` closest to ``budget / 2``, or None.

    ``durations`` is in decreasing order. This is the public implementation's binary search
    (with signed indices): it probes both neighbours of budget / 2, and on an exact tie in
    distance the first probed wins.
    """
    half = budget / 2
    best, best_gap = None, math.inf
    lo, hi = 0, len(durations) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        duration = durations[mid]
        if duration < budget - eps and abs(duration - half) < best_gap:
            best, best_gap = mid, abs(duration - half)
        if duration >= half:
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def refine(times: Sequence[Sequence[float]], plan: TreePlan, eps: float = EPS) -> Refinement:
    """Phase 3: move tasks off critical nodes to the same-size node that ends earliest.

    Each round queues the leaves whose span M(n) (largest S over their slices) equals max(S), in
    DFS order. A queued node hands the task chosen by ``pick`` to its alternative (the same-size
    node with the smallest span below its own); if it cannot, its parent is queued unless
    already visited. Reaching the root ends Phase 3; a queue that runs dry starts a new round.
    Only S is updated, not the times; the moved task goes before tasks of equal time.
    """
    lists = {node: list(plan.node_lists.get(node, ())) for node in DFS_ORDER}
    slice_end = list(plan.slice_end)
    moves: list[Move] = []
    max_moves = MOVES_PER_TASK * sum(len(tasks) for tasks in lists.values())

    def span(node: Node) -> float:
        return max(slice_end[k] for k in node_slices(node))

    def durations(node: Node) -> list[float]:
        return [task_time(times, task, node[1]) for task in lists[node]]

    def result() -> Refinement:
        return Refinement(
            node_lists={node: tuple(tasks) for node, tasks in lists.items()},
            slice_end=tuple(slice_end),
            moves=tuple(moves),
        )

    while True:
        critical = max(slice_end)
        queue = deque(leaf for leaf in LEAVES if span(leaf) == critical)
        visited: set[Node] = set()
        while queue:
            node = queue.popleft()
            visited.add(node)
            if node == ROOT:
                return result()
            alt = _alternative(node, span)
            index = None if alt is None else pick(durations(node), span(node) - span(alt), eps)
            if index is None:
                if PARENT[node] not in visited:
                    queue.append(PARENT[node])
                continue
            task = lists[node].pop(index)
            duration = task_time(times, task, node[1])
            _insert_decreasing(lists[alt], task, duration, durations(alt))
            for k in node_slices(node):
                slice_end[k] -= duration
            for k in node_slices(alt):
                slice_end[k] += duration
            moves.append(Move(task, node, alt))
            if len(moves) >= max_moves:
                return result()


def _alternative(node: Node, span: Callable[[Node], float]) -> Node | None:
    """The node of the same size with the smallest span below ``node``'s; ties: first in DFS."""
    candidates = [other for other in DFS_ORDER if other[1] == node[1] and span(other) < span(node)]
    return min(candidates, key=span, default=None)


def _insert_decreasing(tasks: list[int], task: int, duration: float, durations: Sequence[float]) -> None:
    """Insert ``task`` into a list sorted by decreasing duration, before equal durations."""
    position = next((k for k, d in enumerate(durations) if d <= duration), len(tasks))
    tasks.insert(position, task)


# The whole planner.


def plan_far(
    times: Sequence[Sequence[float]],
    create: Mapping[int, float] = CREATE_COST,
    destroy: Mapping[int, float] = DESTROY_COST,
) -> FarPlan:
    """Run FAR on a batch: drop tasks that fit nowhere, run Phases 1-3, re-time the result."""
    _check_times(times)
    kept = [task for task, row in enumerate(times) if any(map(math.isfinite, row))]
    unschedulable = tuple(sorted(set(range(len(times))) - set(kept)))
    batch = [times[task] for task in kept]

    family = allocation_family(batch)
    candidates = [tree_schedule(batch, alloc, create, destroy) for alloc in family]
    allocation_index = min(range(len(candidates)), key=lambda c: candidates[c].makespan)
    best = candidates[allocation_index]
    refined = refine(batch, best)
    final = retime(batch, refined.node_lists, create, destroy)

    allocation: list[int | None] = [None] * len(times)
    for task, size in zip(kept, family[allocation_index]):
        allocation[task] = size
    return FarPlan(
        plan=_relabel(final, kept),
        makespan=final.makespan,
        phase2=_relabel(best, kept),
        phase2_makespan=best.makespan,
        refined_estimate=max(refined.slice_end),
        allocation_index=allocation_index,
        allocation=tuple(allocation),
        moves=tuple(Move(kept[m.task], m.source, m.target) for m in refined.moves),
        unschedulable=unschedulable,
    )


def _check_times(times: Sequence[Sequence[float]]) -> None:
    """Reject rows that do not have one positive time (or inf) per size."""
    for task, row in enumerate(times):
        if len(row) != len(SIZES):
            raise ValueError(f"task {task} has {len(row)} times, expected {len(SIZES)}")
        if not all(t > 0 for t in row):
            raise ValueError(f"task {task} has a time that is not positive: {list(row)}")


def _relabel(plan: TreePlan, ids: Sequence[int]) -> TreePlan:
    """The same plan with task k renamed ``ids[k]``."""
    return TreePlan(
        node_lists={node: tuple(ids[t] for t in tasks) for node, tasks in plan.node_lists.items()},
        start={ids[t]: value for t, value in plan.start.items()},
        end={ids[t]: value for t, value in plan.end.items()},
        slice_end=plan.slice_end,
        makespan=plan.makespan,
    )
