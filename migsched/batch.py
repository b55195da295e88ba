"""Many episodes of the MDP in arrays: `BatchEnv` steps all its lanes in one call.

`BatchEnv` is a Stable-Baselines3 `VecEnv` of `num_envs` lanes of one version. Each lane is
one episode of exactly the model `SchedState` and `MigSchedEnv` implement (MIG_MODEL.md
sections 3-8): the same masks, observations, rewards, terminations and final `info`, bit for
bit (tests/test_batch.py holds the two against each other). The lanes' state lives in numpy
arrays; the transitions, masks and observations of all lanes are one loop compiled by numba
(`cache=True`: the first use on a machine compiles for a few seconds, later ones load the cache).

Each lane draws its episodes from its own generator, seeded `seed + i` for lane `i` (SB3's
`VecEnv.seed` convention). By default that is a SplitMix64 generator inside the compiled loop,
drawing the distributions of `workloads.generate` and `MigSchedEnv.reset`. With `scalar_rng`
it is numpy's generator driven with exactly the scalar env's calls, so lane `i` plays the very
episodes of a scalar env reset with `seed=seed + i`, at the price of about 30 us of Python per
episode start. `episode_options(lane)` gives the reset options that load a lane's current
episode into a scalar env either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from numba import njit
from stable_baselines3.common.vec_env import VecEnv

import migsched.a100 as a100
from migsched.env import check_reset_options
from migsched.state import DUST, FIRST_RUN_ACTION
from migsched.versions import load_env_class
from migsched.workloads import check_workload, class_counts

NUM_SLICES = a100.NUM_SLICES
NUM_SIZES = len(a100.SIZES)

# --- the A100's tables (MIG_MODEL.md section 1) as arrays the compiled loop reads -------------

_ROWS = a100.NUM_PARTITIONS + 1  # row 0 is unused: partitions are numbered from 1
INST_COUNT = np.zeros(_ROWS, np.int64)
INST_START = np.zeros((_ROWS, NUM_SLICES), np.int64)
INST_SIZE = np.zeros((_ROWS, NUM_SLICES), np.int64)
INST_COLUMN = np.zeros((_ROWS, NUM_SLICES), np.int64)
INST_BITS = np.zeros((_ROWS, NUM_SLICES), np.int64)
LABEL_COLUMN = np.zeros((_ROWS, NUM_SLICES), np.int64)  # size column of the instance covering each slice
NEW_COUNT = np.zeros((_ROWS, _ROWS), np.int64)  # how many instances a reconfiguration p -> q creates
NEW_INSTANCE = np.zeros((_ROWS, _ROWS, NUM_SLICES), np.int64)  # their indices among q's instances
for _p, _insts in a100.INSTANCES.items():
    INST_COUNT[_p] = len(_insts)
    for _j, _inst in enumerate(_insts):
        INST_START[_p, _j], INST_SIZE[_p, _j], INST_COLUMN[_p, _j], INST_BITS[_p, _j] = _inst.start, _inst.size, _inst.column, _inst.bits
        LABEL_COLUMN[_p, list(_inst.slices)] = _inst.column
for (_p, _q), _insts in a100.NEW_INSTANCES.items():
    NEW_COUNT[_p, _q] = len(_insts)
    NEW_INSTANCE[_p, _q, : len(_insts)] = [a100.INSTANCES[_q].index(_inst) for _inst in _insts]
RELABEL_TO = np.arange(_ROWS)
RELABEL_TO[list(a100.RELABEL)] = list(a100.RELABEL.values())
CREATE_SECONDS = np.array([a100.CREATE_COST[s] for s in a100.SIZES])
DESTROY_SECONDS = np.array([a100.DESTROY_COST[s] for s in a100.SIZES])
SIZE_FACTOR = np.array(a100.SIZES, np.float64)
RECONFIGURE_OK = a100.RECONFIGURE_OK
NOT_SELF = a100.NOT_SELF
# IDLE_COLUMN[p, busy, j]: the size column of instance j of p when it exists and is idle, else -1.
IDLE_COLUMN = np.where(a100.IDLE_INSTANCE, a100.SIZE_COLUMN[:, None, :], -1).astype(np.int64)
# RUN_PATTERN[p, busy, fits]: bit j set iff a slot fitting the size columns `fits` can run on instance j.
RUN_PATTERN = np.zeros((_ROWS, 1 << NUM_SLICES, 1 << NUM_SIZES), np.int64)
for _j in range(NUM_SLICES):
    _column = IDLE_COLUMN[:, :, _j, None]
    _fits = ((np.arange(1 << NUM_SIZES) >> np.maximum(_column, 0)) & 1) == 1
    RUN_PATTERN |= np.where((_column >= 0) & _fits, 1 << _j, 0)

# Columns of a lane's integer state `ints` and real state `reals`.
PART, BUSY, PREV, NTASKS, NEXT, READY, NTYPES, INITIAL = range(8)
MAKESPAN, CLOCK, STEP, LOWER = range(4)
# Columns of a ready slot in `slots`: its five levels, how many of its tasks are ready, the first and last of
# them (their FIFO runs through `link`), and which sizes it fits as a bit set (bit c: size column c).
COUNT, HEAD, TAIL, FITS = 5, 6, 7, 8
# Observation encodings, as the compiled loop takes them.
ONE_HOT, FLOAT, FLOAT_FLAG = range(3)
ENCODINGS = {"one_hot": ONE_HOT, "float": FLOAT, "float_reconfig_flag": FLOAT_FLAG}


# --- the compiled core: one lane's rules, exactly as state.py applies them ---------------------


@njit(cache=True, inline="always")
def _block_sum(values: np.ndarray, start: int, n: int) -> float:
    """numpy's float64 sum of at most 128 values: eight running sums, combined pairwise, then the rest."""
    if n < 8:
        total = -0.0
        for i in range(start, start + n):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    i = 8
    while i < n - n % 8:
        b = start + i
        r0 += values[b]
        r1 += values[b + 1]
        r2 += values[b + 2]
        r3 += values[b + 3]
        r4 += values[b + 4]
        r5 += values[b + 5]
        r6 += values[b + 6]
        r7 += values[b + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += values[start + i]
        i += 1
    return total


@njit(cache=True)
def _pairwise_sum(values: np.ndarray, n: int) -> float:
    """numpy's float64 sum of values[:n] (pairwise: halves of more than 128 values are summed
    apart), so the lower bound matches `replay.lower_bound` bit for bit. Iterative, with its own
    stack: numba's cache cannot hold a recursive function."""
    starts, counts, stages, lefts = np.empty(64, np.int64), np.empty(64, np.int64), np.zeros(64, np.int64), np.empty(64)
    starts[0], counts[0], depth, result = 0, n, 1, 0.0
    while depth:
        top = depth - 1
        count = counts[top]
        if count <= 128:
            result = _block_sum(values, starts[top], count)
            depth -= 1
            continue
        half = count // 2
        half -= half % 8
        if stages[top] == 0:
            stages[top] = 1
            starts[depth], counts[depth], stages[depth] = starts[top], half, 0
            depth += 1
        elif stages[top] == 1:
            lefts[top], stages[top] = result, 2
            starts[depth], counts[depth], stages[depth] = starts[top] + half, count - half, 0
            depth += 1
        else:
            result = lefts[top] + result
            depth -= 1
    return result


@njit(cache=True, inline="always")
def _compare_key(slots: np.ndarray, lane: int, slot: int, levels: np.ndarray, task: int) -> int:
    """-1, 0 or 1 as slot `slot`'s level vector is below, equal to or above task `task`'s (lexicographic)."""
    for c in range(NUM_SIZES):
        if slots[lane, slot, c] != levels[lane, task, c]:
            return -1 if slots[lane, slot, c] < levels[lane, task, c] else 1
    return 0


@njit(cache=True, inline="always")
def _add_ready(lane: int, task: int, ints: np.ndarray, levels: np.ndarray, slots: np.ndarray, link: np.ndarray) -> None:
    """A task joins the ready slots (MIG_MODEL.md section 3): the end of its type's queue, or a new slot inserted in order."""
    n = ints[lane, NTYPES]
    i, order = 0, 1
    while i < n:
        order = _compare_key(slots, lane, i, levels, task)
        if order >= 0:
            break
        i += 1
    link[lane, task] = -1
    if i < n and order == 0:
        slots[lane, i, COUNT] += 1
        link[lane, slots[lane, i, TAIL]] = task
        slots[lane, i, TAIL] = task
    else:
        for k in range(n, i, -1):
            for c in range(slots.shape[2]):
                slots[lane, k, c] = slots[lane, k - 1, c]
        fits = 0
        for c in range(NUM_SIZES):
            slots[lane, i, c] = levels[lane, task, c]
            if levels[lane, task, c] > 0:
                fits |= 1 << c
        slots[lane, i, COUNT], slots[lane, i, HEAD], slots[lane, i, TAIL], slots[lane, i, FITS] = 1, task, task, fits
        ints[lane, NTYPES] = n + 1
    ints[lane, READY] += 1


@njit(cache=True, inline="always")
def _take_task(lane: int, slot: int, ints: np.ndarray, slots: np.ndarray, link: np.ndarray) -> int:
    """Start the earliest-arrived ready task of a slot's type; its count drops and an emptied slot is removed."""
    task = slots[lane, slot, HEAD]
    slots[lane, slot, HEAD] = link[lane, task]
    ints[lane, READY] -= 1
    slots[lane, slot, COUNT] -= 1
    if slots[lane, slot, COUNT] == 0:
        n = ints[lane, NTYPES]
        for k in range(slot, n - 1):
            for c in range(slots.shape[2]):
                slots[lane, k, c] = slots[lane, k + 1, c]
        for c in range(slots.shape[2]):
            slots[lane, n - 1, c] = 0
        ints[lane, NTYPES] = n - 1
    return task


@njit(cache=True, inline="always")
def _advance(lane: int, elapsed: float, ints: np.ndarray, reals: np.ndarray, rem: np.ndarray) -> None:
    """The clock moves on by `elapsed` levels; remaining times below DUST become exactly 0."""
    bits = 0
    for s in range(NUM_SLICES):
        r = rem[lane, s] - elapsed
        if r < DUST:
            rem[lane, s] = 0.0
        else:
            rem[lane, s] = r
            bits |= 1 << s
    ints[lane, BUSY] = bits
    reals[lane, CLOCK] += elapsed


@njit(cache=True, inline="always")
def _apply(
    lane: int, action: int, direct: bool, ints: np.ndarray, reals: np.ndarray, costs: np.ndarray, rem: np.ndarray, free: np.ndarray,
    times: np.ndarray, levels: np.ndarray, link: np.ndarray, slots: np.ndarray,
) -> float:  # fmt: skip
    """Apply a valid action to a lane (MIG_MODEL.md section 5) and return its `levels` reward."""
    p = ints[lane, PART]
    if action == 0:
        elapsed = np.inf
        for s in range(NUM_SLICES):
            if 0.0 < rem[lane, s] < elapsed:
                elapsed = rem[lane, s]
        _advance(lane, elapsed, ints, reals, rem)
        ints[lane, PREV] = 0
        return -elapsed
    if action < FIRST_RUN_ACTION:
        q = action
        latest = 0.0
        for k in range(NEW_COUNT[p, q]):
            j = NEW_INSTANCE[p, q, k]
            start, size = INST_START[q, j], INST_SIZE[q, j]
            ready = rem[lane, start] + costs[lane, 1, LABEL_COLUMN[p, start]]
            for s in range(start + 1, start + size):
                value = rem[lane, s] + costs[lane, 1, LABEL_COLUMN[p, s]]
                if value > ready:
                    ready = value
            ready += costs[lane, 0, INST_COLUMN[q, j]]
            for s in range(start, start + size):
                rem[lane, s] = ready
            ints[lane, BUSY] |= INST_BITS[q, j]
            if ready > latest:
                latest = ready
        reward = 0.0
        if direct:
            _advance(lane, latest, ints, reals, rem)
            reward = -latest
        for k in range(NEW_COUNT[p, q]):
            j = NEW_INSTANCE[p, q, k]
            start, size = INST_START[q, j], INST_SIZE[q, j]
            ready = free[lane, start] + DESTROY_SECONDS[LABEL_COLUMN[p, start]]
            for s in range(start + 1, start + size):
                value = free[lane, s] + DESTROY_SECONDS[LABEL_COLUMN[p, s]]
                if value > ready:
                    ready = value
            ready += CREATE_SECONDS[INST_COLUMN[q, j]]
            for s in range(start, start + size):
                free[lane, s] = ready
            if ready > reals[lane, MAKESPAN]:
                reals[lane, MAKESPAN] = ready
        if RELABEL_TO[q] != q:
            for s in range(2):  # RELABEL_SLICE_ORDER swaps slices 0, 1 with 2, 3
                rem[lane, s], rem[lane, s + 2] = rem[lane, s + 2], rem[lane, s]
                free[lane, s], free[lane, s + 2] = free[lane, s + 2], free[lane, s]
            bits = 0
            for s in range(NUM_SLICES):
                if rem[lane, s] > 0.0:
                    bits |= 1 << s
            ints[lane, BUSY] = bits
            q = RELABEL_TO[q]
        ints[lane, PART] = q
        ints[lane, PREV] = 1
        return reward
    slot, j = divmod(action - FIRST_RUN_ACTION, NUM_SLICES)
    start, size, column = INST_START[p, j], INST_SIZE[p, j], INST_COLUMN[p, j]
    level = float(slots[lane, slot, column])
    for s in range(start, start + size):
        rem[lane, s] = level
    ints[lane, BUSY] |= INST_BITS[p, j]
    task = _take_task(lane, slot, ints, slots, link)
    end = free[lane, start] + times[lane, task, column]
    for s in range(start, start + size):
        free[lane, s] = end
    if end > reals[lane, MAKESPAN]:
        reals[lane, MAKESPAN] = end
    if ints[lane, NEXT] < ints[lane, NTASKS]:
        _add_ready(lane, ints[lane, NEXT], ints, levels, slots, link)
        ints[lane, NEXT] += 1
    ints[lane, PREV] = 0
    return 0.0


@njit(cache=True, inline="always")
def _refresh(lane: int, slots_changed: bool, direct: bool, encoding: int, n_levels: int, ints: np.ndarray, rem: np.ndarray, slots: np.ndarray,
             mask: np.ndarray, obs_float: np.ndarray, obs_int: np.ndarray) -> None:  # fmt: skip
    """A lane's action mask (MIG_MODEL.md section 4) and observation (section 7), as observations.py encodes it;
    the slot features are rewritten only when `slots_changed`."""
    p, busy, n_slots, n_types = ints[lane, PART], ints[lane, BUSY], slots.shape[1], ints[lane, NTYPES]
    mask[lane, 0] = busy != 0
    any_run = False
    for i in range(n_types):
        base = FIRST_RUN_ACTION + NUM_SLICES * i
        pattern = RUN_PATTERN[p, busy, slots[lane, i, FITS]]
        any_run |= pattern != 0
        for j in range(NUM_SLICES):
            mask[lane, base + j] = ((pattern >> j) & 1) == 1
    for a in range(FIRST_RUN_ACTION + NUM_SLICES * n_types, mask.shape[1]):
        mask[lane, a] = False
    if ints[lane, READY] == 0:
        for q in range(a100.NUM_PARTITIONS):
            mask[lane, 1 + q] = False
    elif not direct:
        for q in range(a100.NUM_PARTITIONS):
            mask[lane, 1 + q] = RECONFIGURE_OK[p, busy, q]
    elif ints[lane, PREV] != 0 and any_run:
        for q in range(a100.NUM_PARTITIONS):
            mask[lane, 1 + q] = False
    else:
        for q in range(a100.NUM_PARTITIONS):
            mask[lane, 1 + q] = NOT_SELF[p, q]
    slots_end = 1 + 6 * n_slots
    if encoding == ONE_HOT:
        obs_int[lane, 0] = p - 1
        if slots_changed:
            for i in range(n_slots):
                for c in range(NUM_SIZES + 1):
                    obs_int[lane, 1 + 6 * i + c] = slots[lane, i, c]
        for s in range(NUM_SLICES):
            obs_int[lane, slots_end + s] = min(int(np.ceil(rem[lane, s])), n_levels)
        return
    inv_levels, inv_slots = 1.0 / n_levels, 1.0 / n_slots
    obs_float[lane, 0] = (p - 1) / (a100.NUM_PARTITIONS - 1)
    if slots_changed:
        for i in range(n_slots):
            for c in range(NUM_SIZES):
                obs_float[lane, 1 + 6 * i + c] = float(slots[lane, i, c]) * inv_levels
            obs_float[lane, 6 + 6 * i] = float(slots[lane, i, COUNT]) * inv_slots
    for s in range(NUM_SLICES):
        r = rem[lane, s]
        obs_float[lane, slots_end + s] = r * inv_levels if r < n_levels else 1.0
    if encoding == FLOAT_FLAG:
        obs_float[lane, slots_end + NUM_SLICES] = float(ints[lane, PREV])


@njit(cache=True)
def _first_masked(actions: np.ndarray, mask: np.ndarray) -> int:
    """The first lane whose action is out of range or masked, or -1."""
    for lane in range(actions.shape[0]):
        a = actions[lane]
        if a < 0 or a >= mask.shape[1] or not mask[lane, a]:
            return lane
    return -1


@njit(cache=True)
def _step_lanes(
    actions: np.ndarray, real: bool, direct: bool, encoding: int, n_levels: int, ints: np.ndarray, reals: np.ndarray, costs: np.ndarray,
    rem: np.ndarray, free: np.ndarray, times: np.ndarray, levels: np.ndarray, link: np.ndarray, slots: np.ndarray,
    mask: np.ndarray, obs_float: np.ndarray, obs_int: np.ndarray, rewards: np.ndarray, dones: np.ndarray,
) -> None:  # fmt: skip
    """Every lane takes its (valid) action: the reward, whether the episode ended, the next mask and observation.

    The `real` reward is minus the growth of the real-time makespan in levels, as `MigSchedEnv.step` computes it."""
    for lane in range(actions.shape[0]):
        before = reals[lane, MAKESPAN]
        reward = _apply(lane, actions[lane], direct, ints, reals, costs, rem, free, times, levels, link, slots)
        rewards[lane] = (before - reals[lane, MAKESPAN]) / reals[lane, STEP] if real else reward
        dones[lane] = ints[lane, READY] == 0 and ints[lane, NEXT] == ints[lane, NTASKS] and ints[lane, BUSY] == 0
        _refresh(lane, actions[lane] >= FIRST_RUN_ACTION, direct, encoding, n_levels, ints, rem, slots, mask, obs_float, obs_int)


@njit(cache=True, inline="always")
def _synthesize(k: int, n: int, first: np.ndarray, normal: np.ndarray, leave: np.ndarray, order: np.ndarray,
                limits: np.ndarray, membound: np.ndarray, out: np.ndarray) -> None:  # fmt: skip
    """`workloads.generate`'s tasks from its random draws (MIG_MODEL.md section 2), with its arithmetic: out[k, i] is task order[k, i]."""
    times = np.empty(NUM_SLICES)
    for i in range(n):
        row = order[k, i]
        limit, bound, t = limits[row], membound[row], first[k, row]
        times[0] = t
        for size in range(2, 8):
            z = normal[k, row, size - 2]
            if size > limit or (bound and size == 4):
                d = min(max(0.75 + 0.25 * z, 0.5), 1.0)
            elif bound:
                d = min(max(-0.3 + 0.3 * z, -0.5), 0.0)
                bound = not leave[k, row, size - 2] < 0.025
            else:
                d = min(max(0.05 + 0.05 * z, 0.0), 0.1)
            t = (size - 1 + d) / size * t
            times[size - 1] = t
        out[k, i, 0], out[k, i, 1], out[k, i, 2], out[k, i, 3], out[k, i, 4] = times[0], times[1], times[2], times[3], times[6]


@njit(cache=True, inline="always")
def _next_bits(state: np.ndarray, lane: int) -> np.uint64:
    """SplitMix64: the next 64 random bits of a lane's own generator (its state is one uint64)."""
    z = state[lane] + np.uint64(0x9E3779B97F4A7C15)
    state[lane] = z
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, inline="always")
def _uniform(state: np.ndarray, lane: int) -> float:
    """A uniform float in [0, 1) with 53 random bits."""
    return float(_next_bits(state, lane) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(cache=True, inline="always")
def _below(state: np.ndarray, lane: int, n: int) -> int:
    """A uniform integer in 0..n-1 (n far below 2**53, so the bias is below 2**-30)."""
    return min(int(_uniform(state, lane) * n), n - 1)


@njit(cache=True)
def _draw_lanes(
    lanes: np.ndarray, state: np.ndarray, draw_tasks: np.ndarray, draw_partition: np.ndarray, draw_busy: np.ndarray, online: bool,
    count: int, low: float, high: float, n_levels: int, n_tasks: np.ndarray, first: np.ndarray, normal: np.ndarray, leave: np.ndarray,
    order: np.ndarray, partitions: np.ndarray, busy_levels: np.ndarray,
) -> None:  # fmt: skip
    """Draw what the options left open for each lane from its own generator, with the distributions of `workloads.generate`
    and `MigSchedEnv.reset` (MIG_MODEL.md sections 2 and 6): uniform first times, standard normals (Box-Muller), the
    memory-bound exits, a uniform shuffle, a uniform partition and uniform busy levels 0..M."""
    for k in range(lanes.shape[0]):
        lane = lanes[k]
        if draw_tasks[k]:
            n_tasks[k] = count
            for i in range(count):
                first[k, i] = low + (high - low) * _uniform(state, lane)
            for i in range(count):
                for c in range(0, 6, 2):  # Box-Muller: two normals from two uniforms
                    radius = np.sqrt(-2.0 * np.log(1.0 - _uniform(state, lane)))
                    angle = 2.0 * np.pi * _uniform(state, lane)
                    normal[k, i, c], normal[k, i, c + 1] = radius * np.cos(angle), radius * np.sin(angle)
                for c in range(6):
                    leave[k, i, c] = _uniform(state, lane)
            for i in range(count):
                order[k, i] = i
            for i in range(count - 1, 0, -1):
                j = _below(state, lane, i + 1)
                order[k, i], order[k, j] = order[k, j], order[k, i]
        if draw_partition[k]:
            partitions[k] = 1 if online else 1 + _below(state, lane, a100.NUM_PARTITIONS)
        if draw_busy[k]:
            busy_levels[k] = 0
            if not online:
                for j in range(INST_COUNT[partitions[k]]):
                    busy_levels[k, j] = _below(state, lane, n_levels + 1)


@njit(cache=True)
def _load_lanes(
    lanes: np.ndarray, given: np.ndarray, n_tasks: np.ndarray, partitions: np.ndarray, busy_levels: np.ndarray, stage: np.ndarray,
    first: np.ndarray, normal: np.ndarray, leave: np.ndarray, order: np.ndarray, limits: np.ndarray, membound: np.ndarray,
    direct: bool, encoding: int, n_levels: int, ints: np.ndarray, reals: np.ndarray, costs: np.ndarray, rem: np.ndarray, free: np.ndarray,
    times: np.ndarray, levels: np.ndarray, link: np.ndarray, slots: np.ndarray, mask: np.ndarray, obs_float: np.ndarray, obs_int: np.ndarray,
) -> None:  # fmt: skip
    """Start an episode in each of `lanes` (k-th: staged tasks, or synthesized from staged draws), as `SchedState.load` and
    `MigSchedEnv.reset` do: discretization (MIG_MODEL.md section 3), initial busy slices, lower bound (section 8)."""
    n_slots = slots.shape[1]
    for k in range(lanes.shape[0]):
        lane, n = lanes[k], n_tasks[k]
        if not given[k]:
            _synthesize(k, n, first, normal, leave, order, limits, membound, stage)
        largest = 0.0
        for t in range(n):
            for c in range(NUM_SIZES):
                x = stage[k, t, c]
                times[lane, t, c] = x
                if x != np.inf and x > largest:
                    largest = x
        step = largest / n_levels
        for t in range(n):
            for c in range(NUM_SIZES):
                x = times[lane, t, c]
                levels[lane, t, c] = int(min(max(np.ceil(x / step), 1.0), float(n_levels))) if x != np.inf else 0
        for c in range(NUM_SIZES):
            costs[lane, 0, c] = CREATE_SECONDS[c] / step
            costs[lane, 1, c] = DESTROY_SECONDS[c] / step
        p = partitions[k]
        rem[lane] = 0.0
        for j in range(INST_COUNT[p]):
            for s in range(INST_START[p, j], INST_START[p, j] + INST_SIZE[p, j]):
                rem[lane, s] = float(busy_levels[k, j])
        bits, makespan, busy_seconds = 0, 0.0, 0.0
        for s in range(NUM_SLICES):
            free[lane, s] = rem[lane, s] * step
            busy_seconds += free[lane, s]
            if rem[lane, s] > 0.0:
                bits |= 1 << s
            if s == 0 or free[lane, s] > makespan:
                makespan = free[lane, s]
        least = np.empty(n)
        shortest = 0.0
        for t in range(n):
            area, fastest = np.inf, np.inf
            for c in range(NUM_SIZES):
                area = min(area, times[lane, t, c] * SIZE_FACTOR[c])
                fastest = min(fastest, times[lane, t, c])
            least[t] = area
            if t == 0 or fastest > shortest:
                shortest = fastest
        spread = (_pairwise_sum(least, n) + busy_seconds) / NUM_SLICES
        ints[lane, PART], ints[lane, BUSY], ints[lane, PREV], ints[lane, INITIAL] = p, bits, 0, p
        reals[lane, MAKESPAN], reals[lane, CLOCK], reals[lane, STEP] = makespan, 0.0, step
        reals[lane, LOWER] = shortest if shortest > spread else spread
        slots[lane] = 0
        ready = min(n_slots, n)
        ints[lane, NTASKS], ints[lane, NEXT], ints[lane, READY], ints[lane, NTYPES] = n, ready, 0, 0
        for t in range(ready):
            _add_ready(lane, t, ints, levels, slots, link)
        _refresh(lane, True, direct, encoding, n_levels, ints, rem, slots, mask, obs_float, obs_int)


# --- the vectorized environment ----------------------------------------------------------------


class BatchEnv(VecEnv):
    """`num_envs` episodes of a version's `SchedEnv` stepped together, as a Stable-Baselines3 `VecEnv`.

    `env_config` and `type_tasks` are the scalar environment's (checked by it). `reset(options=...)`
    takes one dict of the scalar reset options per lane (or one dict for all lanes, or none), as
    does `set_options` before `reset()`. `step` takes one action per lane; a lane whose episode
    ends starts its next one at once, its info holding `terminal_observation` and the scalar
    env's final `info` (makespan, lower_bound, makespan_ratio, makespan_levels). Rewards are
    float64, the scalar env's exact floats. `seed` seeds lane `i` with `seed + i` at the first reset.
    """

    def __init__(self, version: str, env_config: dict[str, Any] | None = None, type_tasks: str = "good_scaling", num_envs: int = 1,
                 seed: int | None = None, scalar_rng: bool = False) -> None:  # fmt: skip
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        scalar = load_env_class(version)(env_config, type_tasks)
        self.version = version
        self.type_tasks = type_tasks
        self.N, self.M, self.queue_len, self.reward_kind = scalar.N, scalar.M, scalar.queue_len, scalar.reward_kind
        self.online = scalar.online
        self.num_actions = scalar.state.num_actions
        self.render_mode = None
        self._direct = scalar.reconfiguration == "direct"
        self._encoding = ENCODINGS[scalar.observation_encoding]
        super().__init__(int(num_envs), scalar.observation_space, spaces.Discrete(self.num_actions))
        self._episode_tasks = self.queue_len if self.online else self.N
        self._limits, self._membound = self._workload_classes(type_tasks, self._episode_tasks)
        self._time_range = check_workload(type_tasks).time_range
        self.scalar_rng = scalar_rng
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs  # with scalar_rng: each lane's numpy generator
        self._rng_state = np.zeros(self.num_envs, np.uint64)  # otherwise: each lane's SplitMix64 state
        self._lane_seeded = np.zeros(self.num_envs, bool)
        self._lane_index = np.arange(self.num_envs)
        self._allocate(self._episode_tasks)
        if seed is not None:
            self.seed(seed)

    @staticmethod
    def _workload_classes(type_tasks: str, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The scaling limit and memory-bound flag of each generated task before the shuffle, as `workloads.generate` lists them."""
        limits, membound = [], []
        for limit, (count, n_membound) in class_counts(type_tasks, n).items():
            limits += [limit] * count
            membound += [k < n_membound for k in range(count)]
        return np.array(limits, np.int64), np.array(membound, bool)

    def _allocate(self, capacity: int) -> None:
        """The lanes' arrays, for episodes of up to `capacity` tasks (MIG_MODEL.md sections 3-5)."""
        lanes, n = self.num_envs, self.N
        self._capacity = capacity
        self._ints = np.zeros((lanes, 8), np.int64)
        self._reals = np.zeros((lanes, 4))
        self._costs = np.zeros((lanes, 2, NUM_SIZES))  # create and destroy costs in levels, per size
        self._rem = np.zeros((lanes, NUM_SLICES))
        self._free = np.zeros((lanes, NUM_SLICES))  # real second at which each slice frees (section 8)
        self._times = np.zeros((lanes, capacity, NUM_SIZES))
        self._levels = np.zeros((lanes, capacity, NUM_SIZES), np.int64)
        self._link = np.zeros((lanes, capacity), np.int64)  # per ready task, the next ready task of its type (-1: none)
        self._slots = np.zeros((lanes, n, FITS + 1), np.int64)  # the ready type slots in canonical order (section 3)
        self._mask = np.zeros((lanes, self.num_actions), bool)
        width = self.observation_space.shape[0]
        self._obs_float = np.zeros((lanes, 0 if self._encoding == ONE_HOT else width), np.float32)
        self._obs_int = np.zeros((lanes, width if self._encoding == ONE_HOT else 0), np.int64)
        self._rewards = np.zeros(lanes)
        self._dones = np.zeros(lanes, bool)
        # one row per lane being loaded: given or synthesized tasks, and the generator's draws
        self._stage = np.zeros((lanes, capacity, NUM_SIZES))
        self._first = np.zeros((lanes, self._episode_tasks))
        self._normal = np.zeros((lanes, self._episode_tasks, 6))
        self._leave = np.zeros((lanes, self._episode_tasks, 6))
        self._order = np.zeros((lanes, self._episode_tasks), np.int64)
        self._given = np.zeros(lanes, bool)
        self._draw_partition = np.zeros(lanes, bool)
        self._draw_busy = np.zeros(lanes, bool)
        self._n_tasks = np.zeros(lanes, np.int64)
        self._partitions = np.zeros(lanes, np.int64)
        self._busy_levels = np.zeros((lanes, NUM_SLICES), np.int64)
        self._initial_busy = np.zeros((lanes, NUM_SLICES), np.int64)  # per lane, the busy levels its episode started with
        self._actions: np.ndarray | None = None

    @property
    def _obs(self) -> np.ndarray:
        return self._obs_int if self._encoding == ONE_HOT else self._obs_float

    # --- episodes ------------------------------------------------------------------------------

    def reset(self, options: Sequence[Mapping[str, Any] | None] | Mapping[str, Any] | None = None) -> np.ndarray:
        """Start an episode in every lane and return the observations. `options`: a list of one
        scalar-env reset options dict (or None) per lane, or one dict for every lane; without it,
        those of `set_options`. Every lane's options and seed are checked before anything changes."""
        if options is None:
            pending = list(self._options)
        else:
            pending = [options] * self.num_envs if isinstance(options, Mapping) else list(options)
        if len(pending) != self.num_envs:
            raise ValueError(f"reset options must be one dict per lane: {len(pending)} given for {self.num_envs} lanes")
        checked = []
        for lane, lane_options in enumerate(pending):
            if lane and lane_options is pending[lane - 1]:  # one dict shared by many lanes (search loads the start state everywhere): checked once
                checked.append(checked[-1])
                continue
            try:
                checked.append(check_reset_options(lane_options or None, self.online, self.N))
            except ValueError as exc:
                raise ValueError(f"lane {lane}: {exc}") from None
        if self.scalar_rng:
            rngs = [seeding.np_random(seed)[0] if seed is not None or rng is None else rng for seed, rng in zip(self._seeds, self._rngs)]
        else:
            fresh = [seed is not None or not seeded for seed, seeded in zip(self._seeds, self._lane_seeded)]
            states = [np.random.SeedSequence(seed).generate_state(1, np.uint64)[0] if new else None for seed, new in zip(self._seeds, fresh)]
        longest = max([self._episode_tasks] + [len(tasks) for tasks, _, _ in checked if tasks is not None])
        if longest > self._capacity:
            self._allocate(longest)
        if self.scalar_rng:
            self._rngs = rngs
        else:
            for lane, state in enumerate(states):
                if state is not None:
                    self._rng_state[lane] = state
            self._lane_seeded[:] = True
        self._load(self._lane_index, checked)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return self._obs.copy()

    def _load(self, lanes: np.ndarray, checked: Sequence[tuple[np.ndarray | None, int | None, list[int] | None]] | None = None) -> None:
        """Start the next episode of `lanes`: what `checked` options do not give is drawn from each lane's generator
        (with `scalar_rng`, numpy's, with the calls and in the order of `MigSchedEnv.reset` and `workloads.generate`)."""
        k = lanes.shape[0]
        self._given[:k] = False
        self._draw_partition[:k] = True
        self._draw_busy[:k] = True
        if checked is not None:
            if all(entry is checked[0] for entry in checked):  # the same options in every lane: staged at once
                self._stage_options(slice(0, k), checked[0])
            else:
                for row, entry in enumerate(checked):
                    self._stage_options(row, entry)
        if self.scalar_rng:
            for row, lane in enumerate(lanes.tolist()):
                self._draw_numpy(row, self._rngs[lane])
        else:
            low, high = self._time_range
            _draw_lanes(
                lanes, self._rng_state, ~self._given[:k], self._draw_partition[:k], self._draw_busy[:k], self.online, self._episode_tasks,
                low, high, self.M, self._n_tasks, self._first, self._normal, self._leave, self._order, self._partitions, self._busy_levels,
            )  # fmt: skip
        self._initial_busy[lanes] = self._busy_levels[:k]
        _load_lanes(
            lanes, self._given, self._n_tasks, self._partitions, self._busy_levels, self._stage, self._first, self._normal, self._leave,
            self._order, self._limits, self._membound, self._direct, self._encoding, self.M, self._ints, self._reals, self._costs,
            self._rem, self._free, self._times, self._levels, self._link, self._slots, self._mask, self._obs_float, self._obs_int,
        )  # fmt: skip

    def _stage_options(self, rows: int | slice, checked: tuple[np.ndarray | None, int | None, list[int] | None]) -> None:
        """Stage the given tasks, partition and busy levels of checked reset options in staging row(s) `rows`."""
        tasks, partition, busy = checked
        if tasks is not None:
            self._stage[rows, : len(tasks)] = tasks
            self._given[rows] = True
            self._n_tasks[rows] = len(tasks)
        if partition is not None:
            self._partitions[rows] = partition
            self._draw_partition[rows] = False
        if busy is not None:
            self._busy_levels[rows] = 0
            self._busy_levels[rows, : len(busy)] = busy
            self._draw_busy[rows] = False

    def _draw_numpy(self, row: int, rng: np.random.Generator) -> None:
        """Stage row `row`'s open choices drawn from `rng` exactly as a scalar env's reset draws them."""
        count = self._episode_tasks
        if not self._given[row]:
            self._first[row] = rng.uniform(*self._time_range, size=count)
            rng.standard_normal(out=self._normal[row])
            rng.random(out=self._leave[row])
            self._order[row] = rng.permutation(count)
            self._n_tasks[row] = count
        if self._draw_partition[row]:
            self._partitions[row] = 1 if self.online else int(rng.integers(1, a100.NUM_PARTITIONS + 1))
        if self._draw_busy[row]:
            self._busy_levels[row] = 0
            if not self.online:
                instances = int(INST_COUNT[self._partitions[row]])
                self._busy_levels[row, :instances] = rng.integers(0, self.M + 1, instances)

    # --- stepping ------------------------------------------------------------------------------

    def action_masks(self) -> np.ndarray:
        """`(num_envs, num_actions)` boolean masks of the valid actions (MIG_MODEL.md section 4)."""
        return self._mask.copy()

    def episode_options(self, lane: int) -> dict[str, Any]:
        """The reset options that load lane `lane`'s current episode into a scalar env (its tasks, initial partition and busy levels)."""
        p = int(self._ints[lane, INITIAL])
        options: dict[str, Any] = {"tasks": self._times[lane, : self._ints[lane, NTASKS]].tolist(), "partition": p}
        if not self.online:
            options["busy"] = self._initial_busy[lane, : INST_COUNT[p]].tolist()
        return options

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self._check_actions(actions)

    def _check_actions(self, actions: Any) -> np.ndarray:
        """One valid integer action per lane, or ValueError naming the first lane whose action is masked."""
        array = np.asarray(actions)
        if array.dtype.kind not in "iu":
            raise ValueError(f"actions must be integer indices, got dtype {array.dtype}")
        array = array.reshape(-1).astype(np.int64, copy=False)
        if array.shape[0] != self.num_envs:
            raise ValueError(f"expected one action per lane ({self.num_envs}), got {array.shape[0]}")
        lane = _first_masked(array, self._mask)
        if lane >= 0:
            allowed = np.flatnonzero(self._mask[lane]).tolist()
            if not allowed:
                raise ValueError(f"lane {lane}: action {array[lane]} is masked: no episode is running (none was started); call reset()")
            raise ValueError(f"lane {lane}: action {array[lane]} is masked in this state (valid: {allowed})")
        return array

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Every lane takes its action; finished lanes report their episode and start the next."""
        if self._actions is None:
            raise ValueError("step_wait without step_async: call step(actions)")
        actions, self._actions = self._actions, None
        _step_lanes(
            actions, self.reward_kind == "real", self._direct, self._encoding, self.M, self._ints, self._reals, self._costs, self._rem,
            self._free, self._times, self._levels, self._link, self._slots, self._mask, self._obs_float, self._obs_int, self._rewards,
            self._dones,
        )  # fmt: skip
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        finished = np.flatnonzero(self._dones)
        if finished.size:
            terminal = self._obs[finished]
            reals = self._reals[finished]
            for k, lane in enumerate(finished.tolist()):
                makespan, lower = float(reals[k, MAKESPAN]), float(reals[k, LOWER])
                infos[lane] = {
                    "makespan": makespan,
                    "lower_bound": lower,
                    "makespan_ratio": makespan / lower,
                    "makespan_levels": float(reals[k, CLOCK]),
                    "terminal_observation": terminal[k],
                }
            self._load(finished)
        return self._obs.copy(), self._rewards.copy(), self._dones.copy(), infos

    # --- the rest of the VecEnv interface -------------------------------------------------------

    def close(self) -> None:
        """Nothing to release: the lanes live in this process's arrays."""

    def _indices(self, indices: None | int | Sequence[int]) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: None | int | Sequence[int] = None) -> list[Any]:
        """The attribute of this environment, once per lane asked for (the lanes share it)."""
        value = getattr(self, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: None | int | Sequence[int] = None) -> None:
        """Set an attribute shared by all lanes."""
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: None | int | Sequence[int] = None, **method_kwargs: Any) -> list[Any]:
        """`action_masks` (as sb3-contrib's `get_action_masks` asks): one mask row per lane; other methods are not per lane."""
        if method_name != "action_masks":
            raise AttributeError(f"BatchEnv lanes have no method {method_name!r} (only action_masks)")
        masks = self.action_masks()
        return [masks[i] for i in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: None | int | Sequence[int] = None) -> list[bool]:
        """No lane is wrapped."""
        return [False for _ in self._indices(indices)]
