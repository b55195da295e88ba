"""The workload generator of MIG_MODEL.md section 2 and task validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from migsched.workloads import (
    HUGE_TIME,
    MIN_TIME,
    WORKLOADS,
    class_counts,
    generate,
    generate_tasks,
    parse_task_file,
    validate_tasks,
)

# (workload, n) -> {limit: (tasks, memory-bound)}, worked out by hand from the table.
HAND_COUNTS = {
    ("good_scaling", 14): {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (7, 5), 7: (7, 5)},
    ("good_scaling", 5): {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (2, 1), 7: (3, 2)},
    ("good_scaling", 1): {1: (0, 0), 2: (0, 0), 3: (0, 0), 4: (0, 0), 7: (1, 0)},
    ("bad_scaling", 14): {1: (7, 1), 2: (7, 1), 3: (0, 0), 4: (0, 0), 7: (0, 0)},
    ("bad_scaling", 5): {1: (3, 0), 2: (2, 0), 3: (0, 0), 4: (0, 0), 7: (0, 0)},
    ("mix_scaling_extreme", 14): {1: (7, 3), 2: (1, 0), 3: (0, 0), 4: (0, 0), 7: (6, 3)},
    ("mix_scaling_soft", 14): {1: (3, 1), 2: (3, 1), 3: (3, 1), 4: (3, 1), 7: (2, 1)},
    ("wide_times", 14): {1: (3, 1), 2: (3, 1), 3: (3, 1), 4: (3, 1), 7: (2, 1)},
    ("wide_times", 50): {1: (10, 5), 2: (10, 5), 3: (10, 5), 4: (10, 5), 7: (10, 5)},
}


@pytest.mark.parametrize(("name", "n"), list(HAND_COUNTS))
def test_class_counts_as_worked_out_by_hand(name: str, n: int) -> None:
    assert class_counts(name, n) == HAND_COUNTS[name, n]


@given(name=st.sampled_from(sorted(WORKLOADS)), n=st.integers(1, 200))
def test_class_counts_always_sum_to_n(name: str, n: int) -> None:
    assert sum(count for count, _ in class_counts(name, n).values()) == n


def infer_limit_groups(batch: np.ndarray) -> dict[str, int]:
    """Count tasks by scaling limit from their time ratios (3 and 4 look alike when memory-bound)."""
    t1, t2, t3, t4, t7 = batch.T
    limit1 = t2 / t1 > 0.7  # k=2 beyond the limit: (1 + d) / 2 >= 0.75; within it <= 0.55
    limit2 = ~limit1 & (t3 / t2 >= 0.8)  # k=3 beyond the limit: (2 + d) / 3 >= 0.833
    limit7 = t7 / t4 < 0.7  # k=5..7 within the limit: product <= 0.607, beyond it >= 0.766
    return {"1": int(limit1.sum()), "2": int(limit2.sum()), "7": int(limit7.sum()), "3-4": int(len(batch) - limit1.sum() - limit2.sum() - limit7.sum())}


@pytest.mark.parametrize("name", sorted(WORKLOADS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_batches_have_the_class_mix_and_time_range(name: str, seed: int) -> None:
    n = 14
    batch = generate(name, n, np.random.default_rng(seed))
    assert batch.shape == (n, 5)
    assert np.all(np.isfinite(batch)) and np.all(batch > 0)
    low, high = WORKLOADS[name].time_range
    assert np.all((batch[:, 0] >= low) & (batch[:, 0] <= high))
    assert np.all(np.diff(batch, axis=1) <= 0), "a bigger instance is never slower"
    counts = class_counts(name, n)
    assert infer_limit_groups(batch) == {"1": counts[1][0], "2": counts[2][0], "7": counts[7][0], "3-4": counts[3][0] + counts[4][0]}


def test_same_seed_same_batch_and_batches_are_shuffled() -> None:
    a = generate("mix_scaling_soft", 14, np.random.default_rng(7))
    b = generate("mix_scaling_soft", 14, np.random.default_rng(7))
    assert np.array_equal(a, b)
    # Unshuffled, the seven limit-1 tasks (no gain on 2 slices) would be rows 0..6.
    positions = set()
    for seed in range(5):
        batch = generate("bad_scaling", 14, np.random.default_rng(seed))
        positions.add(tuple(np.flatnonzero(batch[:, 1] / batch[:, 0] > 0.7)))
    assert len(positions) > 1 and tuple(range(7)) not in positions


class StubRng:
    """A generator whose draws are fixed: 1-slice time 60, every normal 0, every uniform `u`."""

    def __init__(self, u: float) -> None:
        self.u = u

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return np.full(size, 60.0)

    def standard_normal(self, shape: tuple[int, int]) -> np.ndarray:
        return np.zeros(shape)

    def random(self, shape: tuple[int, int]) -> np.ndarray:
        return np.full(shape, self.u)


def chain(ds: list[float]) -> list[float]:
    """Times on sizes 1, 2, 3, 4, 7 from t1 = 60 and the gains d for k = 2..7."""
    t = [60.0]
    for k, d in zip(range(2, 8), ds):
        t.append((k - 1 + d) / k * t[-1])
    return t[:4] + t[6:]


LITTLE, SUPER, LINEAR = 0.75, -0.3, 0.05  # the means, drawn when every normal is 0


@pytest.mark.parametrize(
    ("limit", "membound", "u", "gains"),
    [
        (7, False, 1.0, [LINEAR] * 6),
        (2, False, 1.0, [LINEAR] + [LITTLE] * 5),
        (1, False, 1.0, [LITTLE] * 6),
        (7, True, 1.0, [SUPER, SUPER, LITTLE, SUPER, SUPER, SUPER]),  # 4g has no more memory than 3g
        (3, True, 1.0, [SUPER, SUPER, LITTLE, LITTLE, LITTLE, LITTLE]),
        (7, True, 0.0, [SUPER, LINEAR, LINEAR, LINEAR, LINEAR, LINEAR]),  # stops being memory-bound at once
    ],
)
def test_generation_rule_per_size(limit: int, membound: bool, u: float, gains: list[float]) -> None:
    times = generate_tasks(StubRng(u), [limit], [membound], (90.0, 100.0))
    assert times[0] == pytest.approx(chain(gains))


def test_gain_draws_are_clipped() -> None:
    class Extreme(StubRng):
        def standard_normal(self, shape):
            return np.full(shape, 10.0)

    times = generate_tasks(Extreme(1.0), [7, 1], [True, False], (90.0, 100.0))
    assert times[0] == pytest.approx(chain([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]))
    assert times[1] == pytest.approx(chain([1.0] * 6))


def test_validate_tasks_accepts_inf_and_refuses_bad_lists() -> None:
    batch = validate_tasks([[math.inf, 2, 3, 4, 5], ["inf", 1, 1, 1, 1]])
    assert np.isinf(batch[0, 0]) and batch[1, 4] == 1.0
    for bad, message in [
        ([[1, 2, 3, 4]], "five"),
        ([[1, 2, 3, 4, -5]], "not positive"),
        ([[1, 2, 0, 4, 5]], "not positive"),
        ([[math.inf] * 5], "fits no instance"),
        ([["x", 1, 1, 1, 1]], "five-time lists"),
        ([], "at least one"),
        ([[1, 1, 1, 1, float("nan")]], "not positive"),
    ]:
        with pytest.raises(ValueError, match=message):
            validate_tasks(bad)
    with pytest.raises(ValueError, match="at most N=1"):
        validate_tasks([[1] * 5, [2] * 5], max_tasks=1)


def test_unknown_workload_lists_the_five_names() -> None:
    with pytest.raises(ValueError) as err:
        generate("heavy", 3, np.random.default_rng(0))
    for name in WORKLOADS:
        assert name in str(err.value)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(WORKLOADS)), n=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_generated_batches_have_n_valid_tasks(name: str, n: int, seed: int) -> None:
    batch = generate(name, n, np.random.default_rng(seed))
    assert batch.shape == (n, 5)
    assert np.array_equal(validate_tasks(batch.tolist()), batch)


TASK_TEXT = "# two tasks\nTask café\n1 10\n2 6\n3 4.5\n4 3.5\n7 inf\nTask b\n1 5\n2 3\n3 2\n4 1.5\n7 1\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "latin-1"])
def test_a_task_file_not_in_utf8_is_a_one_line_error_naming_it(tmp_path, encoding: str) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(TASK_TEXT.encode(encoding))
    with pytest.raises(ValueError, match="not UTF-8 text") as err:
        parse_task_file(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_utf8_task_file_with_a_bom_is_read(tmp_path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_bytes(TASK_TEXT.encode("utf-8-sig"))
    names, times = parse_task_file(str(path))
    assert names == ["café", "b"]
    assert times.tolist() == [[10.0, 6.0, 4.5, 3.5, math.inf], [5.0, 3.0, 2.0, 1.5, 1.0]]


def test_finite_times_must_lie_in_the_documented_range_which_keeps_every_level_finite() -> None:
    from migsched.state import discretization_step, to_levels

    for time in (5e-324, 1e-310, 1e-7, 1e15, 1e300, 1.7e308):
        with pytest.raises(ValueError, match=r"outside \[1e-06, 1e\+15\) seconds"):
            validate_tasks([[time, 1.0, 1.0, 1.0, math.inf]])
    batch = validate_tasks([[MIN_TIME, math.inf, 1.0, 1.0, 1.0], [HUGE_TIME * (1 - 1e-16), 1.0, 1.0, 1.0, MIN_TIME]])
    for m in (1, 14, 10**6):
        step = discretization_step(batch, m)
        assert step > 0 and math.isfinite(0.24 / step)
        assert [min(row) for row in to_levels(batch, step, m)] == [0, 1]


def test_a_task_file_time_below_the_minimum_is_refused_on_its_line(tmp_path) -> None:
    path = tmp_path / "tasks.txt"
    path.write_text("Task a\n1 5e-324\n2 1\n3 1\n4 1\n7 1\n")
    with pytest.raises(ValueError, match=r"tasks.txt:2: time '5e-324' is outside \[1e-06"):
        parse_task_file(str(path))
