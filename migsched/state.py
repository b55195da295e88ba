"""The discretized scheduling MDP of MIG_MODEL.md sections 3-5, without Gymnasium.

`SchedState` holds one episode: the partition, the per-slice remaining time in levels, the
ready task types in canonical order and, online, the queue behind them. It computes the action
mask and applies transitions with table lookups and preallocated arrays, so a step does no
searching. Every decision is appended to `log` for the real-time replay (`replay.py`); with
`real_time` it also keeps that replay's per-slice free times as it goes (`real_free`).
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

import numpy as np

import migsched.a100 as a100

NUM_SLICES = a100.NUM_SLICES
FIRST_RUN_ACTION = 1 + a100.NUM_PARTITIONS
DUST = 1e-9

WAIT, RECONFIGURE, RUN = "wait", "reconfigure", "run"


class Decision(NamedTuple):
    """One step of an episode: wait, reconfigure to partition `target`, or run task `target` on instance `instance`."""

    kind: str
    target: int = 0
    instance: int = -1


WAIT_DECISION = Decision(WAIT)


def action_index(action: object) -> int:
    """`action` as a Python int: an int, a numpy integer, or a 0-d / one-element integer array (as
    a policy's `predict` returns); bools and floats (even integral ones) raise ValueError."""
    if isinstance(action, np.ndarray) and action.size == 1:
        action = action.reshape(()).item() if action.dtype.kind in "iu" else action
    if isinstance(action, (int, np.integer)) and not isinstance(action, (bool, np.bool_)):
        return int(action)
    raise ValueError(f"an action must be an integer index, got {action!r} of type {type(action).__name__}")


def discretization_step(tasks: np.ndarray, levels: int) -> float:
    """Seconds per level: the largest finite task time divided by the number of levels M."""
    return float(np.max(tasks[np.isfinite(tasks)])) / levels


def to_levels(tasks: np.ndarray, step: float, levels: int) -> list[tuple[int, ...]]:
    """Each task's five times as levels `min(M, max(1, ceil(t / step)))`, with 0 for an infinite time."""
    finite = np.isfinite(tasks)
    level = np.clip(np.ceil(np.where(finite, tasks, 0.0) / step), 1, levels)
    return [tuple(row) for row in np.where(finite, level, 0).astype(int).tolist()]


class SchedState:
    """One episode of the MDP: state, action mask and transitions.

    `direct_reconfig` selects the reconfiguration rule of direct_reconfig and online (changed
    slices may be busy, the clock jumps to the new instances' ready time); otherwise changed
    slices must be idle and become busy until their new instance is ready. Tasks beyond the
    first `N` of `load` wait in a queue and join the ready slots one per task started.
    With `real_time`, `real_free` holds per slice the real second at which the decisions so far
    free it, updated with exactly the arithmetic of `replay.replay` (MIG_MODEL.md section 8), and
    `real_makespan` their latest; otherwise `real_free` is None and nothing is tracked.
    """

    def __init__(self, n_slots: int, levels: int, direct_reconfig: bool, real_time: bool = False) -> None:
        self.N = n_slots
        self.M = levels
        self.direct_reconfig = direct_reconfig
        self.real_time = real_time
        self.real_free: list[float] | None = None
        self.real_makespan = 0.0
        self.num_actions = FIRST_RUN_ACTION + NUM_SLICES * n_slots
        self.slot_features = np.zeros((n_slots, 6))  # five levels and the count, per type slot
        self.fits = np.zeros((n_slots, 6), dtype=bool)  # level > 0; column 5 is never set
        self.slots_version = 0  # changes whenever the slots change, so encoders can reuse their work
        self._mask = np.zeros(self.num_actions, dtype=bool)
        self._mask_fresh = True  # no episode yet: nothing is valid until `load`
        # Run action 17 + 7i + j is valid iff fits[i, size column of instance j] and instance j is idle:
        # per partition, where each run action looks in `fits`, and per (partition, busy slices)
        # which run actions have an idle instance.
        slots = np.arange(n_slots)[:, None]
        self._fit_index = np.stack([(slots * 6 + a100.SIZE_COLUMN[p]).ravel() for p in range(a100.NUM_PARTITIONS + 1)])
        self._idle_runs = np.tile(a100.IDLE_INSTANCE, (1, 1, n_slots))

    def load(self, tasks: np.ndarray, partition: int, busy_levels: list[int]) -> None:
        """Start an episode: `tasks` in seconds (ready first, then queued), the initial partition
        and one busy level per instance of it."""
        self.tasks = tasks
        self.step_seconds = discretization_step(tasks, self.M)
        self.task_levels = to_levels(tasks, self.step_seconds, self.M)
        self.create_levels = {s: c / self.step_seconds for s, c in a100.CREATE_COST.items()}
        self.destroy_levels = {s: c / self.step_seconds for s, c in a100.DESTROY_COST.items()}
        self.initial_partition = partition
        self.partition = partition
        self.rem = [0.0] * NUM_SLICES
        for info, level in zip(a100.INSTANCES[partition], busy_levels):
            for s in info.slices:
                self.rem[s] = float(level)
        self.initial_rem = list(self.rem)
        if self.real_time:
            self.task_times = tasks.tolist()
            self.real_free = [level * self.step_seconds for level in self.initial_rem]
            self.real_makespan = max(self.real_free)
        self.busy_bits = self._busy_bits()
        self.next_task = min(self.N, len(tasks))
        self.ready_total = self.next_task
        types: dict[tuple[int, ...], list[int]] = {}
        for task in range(self.next_task):
            types.setdefault(self.task_levels[task], []).append(task)
        self.keys = sorted(types)
        self.queues = [types[key] for key in self.keys]
        self.slot_features[:] = 0.0
        self.fits[:] = False
        n = len(self.keys)
        self.slot_features[:n, :5] = self.keys
        self.slot_features[:n, 5] = [len(queue) for queue in self.queues]
        self.fits[:n, :5] = self.slot_features[:n, :5] > 0
        self.slots_version += 1
        self.prev_reconfig = False
        self.time = 0.0
        self.log: list[Decision] = []
        self._mask_fresh = False

    @property
    def done(self) -> bool:
        """No task is left to run and every slice is idle."""
        return self.ready_total == 0 and self.next_task == len(self.tasks) and self.busy_bits == 0

    def action_masks(self) -> np.ndarray:
        """The valid actions of MIG_MODEL.md section 4 (a cached buffer: copy it to keep it)."""
        if self._mask_fresh:
            return self._mask
        mask, p, busy = self._mask, self.partition, self.busy_bits
        mask[0] = busy != 0
        runs = mask[FIRST_RUN_ACTION:]
        np.logical_and(self.fits.take(self._fit_index[p]), self._idle_runs[p, busy], out=runs)
        if self.ready_total == 0:
            mask[1:FIRST_RUN_ACTION] = False
        elif not self.direct_reconfig:
            mask[1:FIRST_RUN_ACTION] = a100.RECONFIGURE_OK[p, busy]
        elif self.prev_reconfig and runs.any():
            mask[1:FIRST_RUN_ACTION] = False
        else:
            mask[1:FIRST_RUN_ACTION] = a100.NOT_SELF[p]
        self._mask_fresh = True
        return mask

    def step(self, action: int) -> float:
        """Apply a valid action and return its reward; a masked action raises ValueError and changes nothing."""
        if type(action) is not int:
            action = action_index(action)
        if not 0 <= action < self.num_actions or not self.action_masks()[action]:
            if not self.action_masks().any():
                raise ValueError(f"action {action} is masked: no episode is running (it has ended, or none was started); call reset()")
            raise ValueError(f"action {action} is masked in this state (valid: {np.flatnonzero(self.action_masks()).tolist()})")
        self._mask_fresh = False
        if action == 0:
            return self._wait()
        if action < FIRST_RUN_ACTION:
            return self._reconfigure(action)
        slot, instance = divmod(action - FIRST_RUN_ACTION, NUM_SLICES)
        self._run(slot, instance)
        return 0.0

    def _wait(self) -> float:
        elapsed = min(r for r in self.rem if r > 0.0)
        self._advance(elapsed)
        self.prev_reconfig = False
        self.log.append(WAIT_DECISION)
        return -elapsed

    def _run(self, slot: int, instance: int) -> None:
        info = a100.INSTANCES[self.partition][instance]
        level = float(self.keys[slot][info.column])
        for s in info.slices:
            self.rem[s] = level
        self.busy_bits |= info.bits
        task = self.queues[slot].pop(0)
        self.log.append(Decision(RUN, task, instance))
        free = self.real_free
        if free is not None:
            # replay starts the run at the max of its slices' free times; they are all equal
            # (an instance's slices are only ever set together), so its first slice's is that max
            end = free[info.start] + self.task_times[task][info.column]
            for s in info.slices:
                free[s] = end
            if end > self.real_makespan:
                self.real_makespan = end
        self._remove_one(slot)
        if self.next_task < len(self.tasks):
            self._add_ready(self.next_task)
            self.next_task += 1
        self.prev_reconfig = False

    def _reconfigure(self, target: int) -> float:
        rem, old_labels = self.rem, a100.LABELS[self.partition]
        latest = 0.0
        for inst in a100.NEW_INSTANCES[self.partition, target]:
            ready = max(rem[s] + self.destroy_levels[old_labels[s]] for s in inst.slices) + self.create_levels[inst.size]
            for s in inst.slices:
                rem[s] = ready
            self.busy_bits |= inst.bits
            latest = max(latest, ready)
        reward = 0.0
        if self.direct_reconfig:
            self._advance(latest)
            reward = -latest
        self.log.append(Decision(RECONFIGURE, target))
        free = self.real_free
        if free is not None:
            for inst, destroy, create in a100.NEW_INSTANCE_COSTS[self.partition, target]:
                ready = max(free[s] + cost for s, cost in zip(inst.slices, destroy)) + create
                for s in inst.slices:
                    free[s] = ready
                if ready > self.real_makespan:
                    self.real_makespan = ready
        if target in a100.RELABEL:
            self.rem = [self.rem[s] for s in a100.RELABEL_SLICE_ORDER]
            if free is not None:
                free[:] = [free[s] for s in a100.RELABEL_SLICE_ORDER]
            self.busy_bits = self._busy_bits()
            target = a100.RELABEL[target]
        self.partition = target
        self.prev_reconfig = True
        return reward

    def _advance(self, elapsed: float) -> None:
        """Move the clock on by `elapsed` levels; remaining times below DUST become exactly 0."""
        bits = 0
        rem = self.rem
        for s in range(NUM_SLICES):
            r = rem[s] - elapsed
            if r < DUST:
                rem[s] = 0.0
            else:
                rem[s] = r
                bits |= 1 << s
        self.busy_bits = bits
        self.time += elapsed

    def _busy_bits(self) -> int:
        return sum(1 << s for s, r in enumerate(self.rem) if r > 0.0)

    def _add_ready(self, task: int) -> None:
        """A task joins the ready slots: its type's count grows, or a new slot is inserted in order."""
        key = self.task_levels[task]
        i = bisect.bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            self.queues[i].append(task)
            self.slot_features[i, 5] += 1.0
        else:
            n = len(self.keys)
            self.keys.insert(i, key)
            self.queues.insert(i, [task])
            self.slot_features[i + 1 : n + 1] = self.slot_features[i:n]
            self.fits[i + 1 : n + 1] = self.fits[i:n]
            self.slot_features[i, :5] = key
            self.slot_features[i, 5] = 1.0
            self.fits[i, :5] = [level > 0 for level in key]
        self.ready_total += 1
        self.slots_version += 1

    def _remove_one(self, slot: int) -> None:
        """One task of a slot has started: its count drops and an emptied slot is removed."""
        self.ready_total -= 1
        self.slots_version += 1
        if self.queues[slot]:
            self.slot_features[slot, 5] -= 1.0
            return
        n = len(self.keys)
        del self.keys[slot]
        del self.queues[slot]
        self.slot_features[slot : n - 1] = self.slot_features[slot + 1 : n]
        self.fits[slot : n - 1] = self.fits[slot + 1 : n]
        self.slot_features[n - 1] = 0.0
        self.fits[n - 1] = False
