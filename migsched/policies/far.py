"""FAR as a step-by-step policy in a version's environment (FAR.md section 10).

`far_plan.plan_far` plans a batch on FAR's repartitioning tree assuming an empty GPU. `FarPolicy`
executes that plan event by event: it keeps the frontier F (the tree nodes alive now, a cut of the
tree and so one of the 16 partitions), splits a node once it has run its list and is idle, moves
the GPU to F's partition, and starts each node's tasks in order, earliest planned start first.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

import migsched.a100 as a100
from migsched.env import MigSchedEnv
from migsched.policies.base import Policy
from migsched.policies.far_plan import CHILDREN, DFS_ORDER, ROOT, Node, plan_far
from migsched.state import FIRST_RUN_ACTION, RECONFIGURE, SchedState

WAIT_ACTION = 0

PARTITION_OF: dict[tuple[int, ...], int] = {sizes: p for p, sizes in a100.PARTITIONS.items()}
"""The partition id of a cut, given as its instance sizes in slice order."""

DFS_INDEX: dict[Node, int] = {node: k for k, node in enumerate(DFS_ORDER)}


def _subtree(node: Node) -> tuple[Node, ...]:
    """``node`` and all its descendants."""
    return (node,) + tuple(n for child in CHILDREN[node] for n in _subtree(child))


SUBTREE: dict[Node, tuple[Node, ...]] = {node: _subtree(node) for node in DFS_ORDER}


def model_node(node: Node, swapped: bool) -> Node:
    """The environment's instance behind FAR's ``node``.

    FAR's nodes live on the GPU's own slices. After an odd number of reconfigurations to
    partitions 11-13 the environment shows slices 0,1 and 2,3 exchanged, which moves the 1g and
    2g nodes of the left half (the 4g and 7g nodes cover both pairs and stay put).
    """
    start, size = node
    if swapped and size <= 2 and start < 4:
        return (start ^ 2, size)
    return node


def node_bits(node: Node) -> int:
    """The slices of ``node`` as a bit set."""
    start, size = node
    return ((1 << size) - 1) << start


def cut_partition(nodes: Iterable[Node], swapped: bool) -> int:
    """The partition id (1..16, in the environment's slice frame) whose instances are ``nodes``."""
    return PARTITION_OF[tuple(size for _, size in sorted(model_node(n, swapped) for n in nodes))]


def _ready_tasks(state: SchedState) -> set[int]:
    """The ids of the ready tasks, i.e. those a run action can start now."""
    return {task for queue in state.queues for task in queue}


class FarPolicy(Policy):
    """FAR's plan, executed event by event as in FAR.md section 10; deterministic.

    Planning. Offline, ``reset`` plans the whole batch with ``plan_far`` (real seconds, default
    MIG_MODEL costs). Online, the plan covers one ready window at a time: ``reset`` plans the
    window, and once every task of the current plan has started, the tasks then ready (those
    that joined meanwhile) are planned as the next window. With ``replan_each_start=True`` the
    window is re-planned instead whenever it holds a task the plan does not, i.e. after every
    start while the queue lasts (tasks leaving the window by starting never trigger it). Either
    way a plan starts afresh from ``open(root)`` as if the GPU were empty; running tasks are
    respected because a busy instance only delays the frontier nodes that use its slices, and
    the slices a reconfiguration changes must be idle first (step 2). Re-planning at every start
    keeps sending the frontier back to the tree's top (7g, 4g+3g) while smaller instances are
    busy, which is why it is not the default.

    Each decision, in this order:
      1. a frontier node that is idle, has started its whole list and has a descendant with
         unstarted tasks splits into ``open`` of its children (subtrees without tasks stay whole);
      2. if the frontier's partition differs from the current one, reconfigure to it, provided
         the slices it changes are idle and the action is valid. The policy never reconfigures
         busy slices, not even where the direct rule allows it: waiting until they are idle ends
         at the same time and leaves the other instances free to run planned tasks meanwhile;
      3. among the frontier nodes that are idle instances of the current partition and have
         unstarted tasks, run the next task of the node whose next task has the earliest planned
         start (ties: DFS order). This also covers the start of an episode, where the initial
         partition is busy: nodes it shares with the frontier run as soon as they are idle;
      4. wait, if valid (some slice is busy).
    Fallback, for a state the plan does not cover (e.g. the direct rule masks a reconfiguration
    right after another and no planned run is possible): the first valid run action, otherwise
    the first valid action. Every action returned is valid under ``env.action_masks()``.

    A run action starts the oldest ready task of a type, so the policy runs the slot of its
    planned task's type; if the environment starts another task of that type, the two tasks
    swap places in the plan. Started tasks are read back from the environment at every decision.

    Slice frame. FAR's tree is symmetric under exchanging slices 0,1 with 2,3, the exchange
    behind the relabelling of partitions 11-13. At each (re)plan the policy picks the frame that
    changes the fewest busy, then the fewest, slices of the current partition (ties: FAR's own
    frame), and it follows every relabelling the environment applies afterwards.
    """

    name = "far"

    def __init__(self, replan_each_start: bool = False) -> None:
        """``replan_each_start`` selects the online re-planning rule (see above)."""
        self.replan_each_start = replan_each_start

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        """Plan the ready tasks of the episode ``env`` has just started (``seed`` is unused)."""
        self._online = env.online
        self._queues: dict[Node, list[int]] = {node: [] for node in DFS_ORDER}
        self._start: dict[int, float] = {}
        self._frontier: list[Node] = [ROOT]
        self._swapped = False
        self._log_seen = len(env.decision_log)
        self._plan(env.state, _ready_tasks(env.state))

    def act(self, env: MigSchedEnv) -> int:
        """The next action: split, reconfigure, run the planned task, wait, or the fallback."""
        state = env.state
        self._follow_relabelling(env)
        ready = _ready_tasks(state)
        for queue in self._queues.values():
            queue[:] = [task for task in queue if task in ready]
        if self._online and self._window_needs_plan(ready):
            self._plan(state, ready)
        self._split_finished(state.busy_bits)
        mask = env.action_masks()

        target = cut_partition(self._frontier, self._swapped)
        if target != state.partition and not a100.CHANGED_BITS[state.partition, target] & state.busy_bits and mask[target]:
            return target
        run = self._planned_run(state, mask)
        if run is not None:
            return run
        if mask[WAIT_ACTION]:
            return WAIT_ACTION
        runs = np.flatnonzero(mask[FIRST_RUN_ACTION:])
        return int(runs[0]) + FIRST_RUN_ACTION if runs.size else int(np.flatnonzero(mask)[0])

    def _window_needs_plan(self, ready: set[int]) -> bool:
        """Online: whether to re-plan the ready window now (see the class docstring)."""
        if self.replan_each_start:
            return not ready <= self._start.keys()
        return bool(ready) and not any(self._queues.values())

    def _plan(self, state: SchedState, tasks: Iterable[int]) -> None:
        """Plan ``tasks`` with FAR and start a fresh frontier at ``open(root)``."""
        ids = sorted(tasks)
        self._queues = {node: [] for node in DFS_ORDER}
        self._start = {}
        if ids:
            plan = plan_far([state.tasks[task].tolist() for task in ids]).plan
            self._queues = {node: [ids[t] for t in plan.node_lists[node]] for node in DFS_ORDER}
            self._start = {ids[t]: start for t, start in plan.start.items()}
        self._frontier = self._open(ROOT)
        self._swapped = min((False, True), key=lambda swapped: self._frame_cost(state, swapped))

    def _frame_cost(self, state: SchedState, swapped: bool) -> tuple[int, int, bool]:
        """How much reaching the frontier in this slice frame disturbs the current partition."""
        target = cut_partition(self._frontier, swapped)
        changed = 0 if target == state.partition else a100.CHANGED_BITS[state.partition, target]
        return (changed & state.busy_bits).bit_count(), changed.bit_count(), swapped

    def _follow_relabelling(self, env: MigSchedEnv) -> None:
        """Flip the slice frame for every reconfiguration to 11-13 applied since the last call."""
        log = env.decision_log
        for decision in log[self._log_seen :]:
            if decision.kind == RECONFIGURE and decision.target in a100.RELABEL:
                self._swapped = not self._swapped
        self._log_seen = len(log)

    def _has_tasks(self, node: Node) -> bool:
        """Whether some node of ``node``'s subtree still has unstarted tasks."""
        return any(self._queues[n] for n in SUBTREE[node])

    def _open(self, node: Node) -> list[Node]:
        """The nodes that replace ``node`` when it becomes available: FAR.md's open()."""
        if self._queues[node] or not self._has_tasks(node):
            return [node]
        return [n for child in CHILDREN[node] for n in self._open(child)]

    def _split_finished(self, busy_bits: int) -> None:
        """Step 1: split every idle frontier node whose list is done while its subtree is not."""
        frontier: list[Node] = []
        for node in self._frontier:
            finished = not self._queues[node] and not node_bits(model_node(node, self._swapped)) & busy_bits
            if finished and any(self._has_tasks(child) for child in CHILDREN[node]):
                frontier.extend(n for child in CHILDREN[node] for n in self._open(child))
            else:
                frontier.append(node)
        self._frontier = frontier

    def _planned_run(self, state: SchedState, mask: np.ndarray) -> int | None:
        """Step 3: the run action for the next planned task that can start now, if any."""
        instance_index = {(inst.start, inst.size): j for j, inst in enumerate(a100.INSTANCES[state.partition])}
        candidates = []
        for node in self._frontier:
            instance = model_node(node, self._swapped)
            if self._queues[node] and instance in instance_index and not node_bits(instance) & state.busy_bits:
                task = self._queues[node][0]
                candidates.append((self._start[task], DFS_INDEX[node], node, instance_index[instance]))
        for _, _, node, j in sorted(candidates):
            task = self._queues[node][0]
            slot = state.keys.index(state.task_levels[task])
            action = FIRST_RUN_ACTION + a100.NUM_SLICES * slot + j
            if mask[action]:
                self._started(node, state.queues[slot][0])
                return action
        return None

    def _started(self, node: Node, started: int) -> None:
        """``node``'s next task is being run, and the environment starts ``started`` (same type).

        If ``started`` is another task, it was planned elsewhere: the planned task takes its place.
        """
        planned = self._queues[node].pop(0)
        if started == planned:
            return
        for queue in self._queues.values():
            if started in queue:
                queue[queue.index(started)] = planned
                self._start[planned], self._start[started] = self._start[started], self._start[planned]
                return
