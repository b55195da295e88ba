"""The A100 model of MIG_MODEL.md section 1: partitions, labels, shared instances, costs, tables."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from migsched import a100


def test_sixteen_partitions_tile_seven_slices_with_allowed_sizes() -> None:
    assert sorted(a100.PARTITIONS) == list(range(1, 17))
    assert len(set(a100.PARTITIONS.values())) == 16
    for sizes in a100.PARTITIONS.values():
        assert sum(sizes) == 7
        assert set(sizes) <= set(a100.SIZES)


def test_table_rows_as_in_the_model() -> None:
    assert a100.PARTITIONS[1] == (7,)
    assert a100.PARTITIONS[3] == (4, 2, 1)
    assert a100.PARTITIONS[9] == (2, 1, 1, 2, 1)
    assert a100.PARTITIONS[13] == (1, 1, 2, 1, 1, 1)
    assert a100.PARTITIONS[16] == (1,) * 7


def test_labels_and_instance_slices() -> None:
    assert a100.LABELS[3] == (4, 4, 4, 4, 2, 2, 1)
    assert [inst.slices for inst in a100.INSTANCES[8]] == [(0, 1), (2,), (3,), (4, 5, 6)]
    assert [inst.bits for inst in a100.INSTANCES[2]] == [0b0001111, 0b1110000]


def test_no_3g_instance_at_slice_0_and_2g_only_at_even_slices() -> None:
    starts = {(inst.size, inst.start) for insts in a100.INSTANCES.values() for inst in insts}
    assert {start for size, start in starts if size == 3} == {4}
    assert {start for size, start in starts if size == 2} == {0, 2, 4}
    assert {start for size, start in starts if size in (4, 7)} == {0}


@pytest.mark.parametrize(("relabelled", "canonical"), [(11, 8), (12, 9), (13, 10)])
def test_11_to_13_are_8_to_10_with_slice_pairs_exchanged(relabelled: int, canonical: int) -> None:
    assert a100.RELABEL[relabelled] == canonical
    swapped = tuple(a100.LABELS[relabelled][s] for s in a100.RELABEL_SLICE_ORDER)
    assert swapped == a100.LABELS[canonical]


def test_shared_instances_are_kept_and_changed_slices_rebuilt() -> None:
    # 2 (4 3) -> 3 (4 2 1): the 4g instance is shared, the 3g one is split.
    assert [(i.size, i.start) for i in a100.new_instances(2, 3)] == [(2, 4), (1, 6)]
    assert a100.changed_bits(2, 3) == 0b1110000
    # 5 (2 2 3) -> 8 (2 1 1 3): only the 2g at slice 2 changes.
    assert [(i.size, i.start) for i in a100.new_instances(5, 8)] == [(1, 2), (1, 3)]
    # 11 (1 1 2 3) -> 8 (2 1 1 3): labels differ on slices 0-3 although both have the same sizes.
    assert a100.changed_bits(11, 8) == 0b0001111


def test_a_new_instance_is_shared_iff_its_slices_keep_their_labels() -> None:
    for p, q in itertools.permutations(a100.PARTITIONS, 2):
        old, new = a100.LABELS[p], a100.LABELS[q]
        created = set(a100.new_instances(p, q))
        for inst in a100.INSTANCES[q]:
            kept = all(old[s] == new[s] for s in inst.slices)
            assert (inst not in created) == kept
            # a kept instance really is an instance of the old partition
            assert not kept or inst in a100.INSTANCES[p]
        assert created, "a different partition always changes some slice"


def test_reconfiguration_costs() -> None:
    assert a100.CREATE_COST == {1: 0.16, 2: 0.17, 3: 0.20, 4: 0.21, 7: 0.24}
    assert a100.DESTROY_COST == {1: 0.20, 2: 0.20, 3: 0.21, 4: 0.21, 7: 0.22}


def test_precomputed_tables_match_direct_computation() -> None:
    rng = np.random.default_rng(0)
    for p in a100.PARTITIONS:
        for busy in rng.integers(0, 128, 12):
            busy = int(busy)
            for q in a100.PARTITIONS:
                expected = q != p and (a100.changed_bits(p, q) & busy) == 0
                assert a100.RECONFIGURE_OK[p, busy, q - 1] == expected
            for j in range(7):
                insts = a100.INSTANCES[p]
                idle = j < len(insts) and (insts[j].bits & busy) == 0
                assert a100.IDLE_INSTANCE[p, busy, j] == idle
                column = a100.SIZES.index(insts[j].size) if j < len(insts) else 5
                assert a100.SIZE_COLUMN[p, j] == column


def test_describe() -> None:
    assert a100.describe(8) == "2 1 1 3"
