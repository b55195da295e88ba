"""The NVIDIA A100 under MIG: partitions, slice labels, instances and reconfiguration costs.

Everything a transition needs about a pair of partitions is computed here once, at import,
so that a step only looks values up (MIG_MODEL.md section 1).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

NUM_SLICES = 7
SIZES = (1, 2, 3, 4, 7)
SIZE_INDEX = {size: k for k, size in enumerate(SIZES)}
NUM_PARTITIONS = 16

PARTITIONS: dict[int, tuple[int, ...]] = {
    1: (7,),
    2: (4, 3),
    3: (4, 2, 1),
    4: (4, 1, 1, 1),
    5: (2, 2, 3),
    6: (2, 2, 2, 1),
    7: (2, 2, 1, 1, 1),
    8: (2, 1, 1, 3),
    9: (2, 1, 1, 2, 1),
    10: (2, 1, 1, 1, 1, 1),
    11: (1, 1, 2, 3),
    12: (1, 1, 2, 2, 1),
    13: (1, 1, 2, 1, 1, 1),
    14: (1, 1, 1, 1, 3),
    15: (1, 1, 1, 1, 2, 1),
    16: (1, 1, 1, 1, 1, 1, 1),
}

# Partitions 11-13 are 8-10 with slice pairs (0,1) and (2,3) exchanged.
RELABEL = {11: 8, 12: 9, 13: 10}
RELABEL_SLICE_ORDER = (2, 3, 0, 1, 4, 5, 6)

CREATE_COST = {1: 0.16, 2: 0.17, 3: 0.20, 4: 0.21, 7: 0.24}
DESTROY_COST = {1: 0.20, 2: 0.20, 3: 0.21, 4: 0.21, 7: 0.22}


class Instance(NamedTuple):
    """One GPU instance of a partition: its size, first slice, slices, slices as a bit set
    (bit s = slice s) and the index of its size in SIZES."""

    size: int
    start: int
    slices: tuple[int, ...]
    bits: int
    column: int


def make_instance(size: int, start: int) -> Instance:
    """The instance of `size` slices starting at slice `start`."""
    return Instance(size, start, tuple(range(start, start + size)), ((1 << size) - 1) << start, SIZE_INDEX[size])


def instances(partition: int) -> tuple[Instance, ...]:
    """The instances of a partition in slice order (instance j is the j-th entry)."""
    result, start = [], 0
    for size in PARTITIONS[partition]:
        result.append(make_instance(size, start))
        start += size
    return tuple(result)


def labels(partition: int) -> tuple[int, ...]:
    """Per slice, the size of the instance that covers it."""
    return tuple(inst.size for inst in instances(partition) for _ in inst.slices)


def new_instances(old: int, new: int) -> tuple[Instance, ...]:
    """The instances of `new` that a reconfiguration from `old` must create.

    An instance is shared (kept) exactly where both partitions label all its slices alike.
    """
    old_labels, new_labels = labels(old), labels(new)
    return tuple(inst for inst in instances(new) if any(old_labels[s] != new_labels[s] for s in inst.slices))


def changed_bits(old: int, new: int) -> int:
    """The slices a reconfiguration from `old` to `new` changes, as a bit set."""
    bits = 0
    for inst in new_instances(old, new):
        bits |= inst.bits
    return bits


def _reconfigure_ok_table() -> np.ndarray:
    """ok[p, busy, q-1]: reconfiguring p -> q touches no busy slice (and q != p)."""
    table = np.zeros((NUM_PARTITIONS + 1, 1 << NUM_SLICES, NUM_PARTITIONS), dtype=bool)
    for p in PARTITIONS:
        for q in PARTITIONS:
            if q == p:
                continue
            changed = changed_bits(p, q)
            for busy in range(1 << NUM_SLICES):
                table[p, busy, q - 1] = (changed & busy) == 0
    return table


def _idle_instance_table() -> np.ndarray:
    """idle[p, busy, j]: instance j of partition p exists and none of its slices is busy."""
    table = np.zeros((NUM_PARTITIONS + 1, 1 << NUM_SLICES, NUM_SLICES), dtype=bool)
    for p in PARTITIONS:
        for j, inst in enumerate(instances(p)):
            for busy in range(1 << NUM_SLICES):
                table[p, busy, j] = (inst.bits & busy) == 0
    return table


def _size_column_table() -> np.ndarray:
    """col[p, j]: index into (1,2,3,4,7) of instance j's size, 5 where p has no instance j."""
    table = np.full((NUM_PARTITIONS + 1, NUM_SLICES), len(SIZES), dtype=np.intp)
    for p in PARTITIONS:
        for j, inst in enumerate(instances(p)):
            table[p, j] = SIZE_INDEX[inst.size]
    return table


INSTANCES = {p: instances(p) for p in PARTITIONS}
LABELS = {p: labels(p) for p in PARTITIONS}
NEW_INSTANCES = {(p, q): new_instances(p, q) for p in PARTITIONS for q in PARTITIONS if p != q}
CHANGED_BITS = {pair: changed_bits(*pair) for pair in NEW_INSTANCES}
# Per (old, new): each created instance with the destroy cost of each of its slices' old
# instance and its own create cost, in seconds.
NEW_INSTANCE_COSTS = {
    (p, q): tuple((inst, tuple(DESTROY_COST[LABELS[p][s]] for s in inst.slices), CREATE_COST[inst.size]) for inst in insts)
    for (p, q), insts in NEW_INSTANCES.items()
}
RECONFIGURE_OK = _reconfigure_ok_table()
IDLE_INSTANCE = _idle_instance_table()
SIZE_COLUMN = _size_column_table()
NOT_SELF = np.array([[q != p for q in PARTITIONS] for p in range(NUM_PARTITIONS + 1)])


def describe(partition: int) -> str:
    """A partition as its instance sizes, e.g. '2 1 1 3'."""
    return " ".join(str(size) for size in PARTITIONS[partition])
