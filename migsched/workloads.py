"""Tasks and the five synthetic workloads (MIG_MODEL.md section 2).

A task is five execution times in seconds, one per instance size (1, 2, 3, 4, 7 slices);
`math.inf` marks a size the task does not fit. A batch is an `(n, 5)` float array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SCALING_LIMITS = (1, 2, 3, 4, 7)
#: The range of a finite task time, in seconds. Below a microsecond a time is no GPU task (a
#: kernel launch takes longer), and the bounds keep the discretization finite for any M up to
#: 1e290: the level step (largest time / M) is a normal float, every time and reconfiguration
#: cost divided by it is finite, and sums of times stay far from overflow. A task file's time of
#: HUGE_TIME or more means the task does not fit that size (`inf`).
MIN_TIME = 1e-6
HUGE_TIME = 1e15
TIME_RANGE_TEXT = f"[{MIN_TIME:g}, {HUGE_TIME:g}) seconds (give inf for a size the task does not fit)"


@dataclass(frozen=True)
class Workload:
    """How a workload draws its tasks: shares per scaling limit, padding, memory-bound share."""

    shares_percent: tuple[int, int, int, int, int]
    padding_order: tuple[int, ...]
    membound_percent: int
    time_range: tuple[float, float]


WORKLOADS: dict[str, Workload] = {
    "good_scaling": Workload((0, 0, 0, 50, 50), (7, 4, 3, 2, 1), 75, (90.0, 100.0)),
    "bad_scaling": Workload((50, 50, 0, 0, 0), (1, 2, 3, 4, 7), 25, (90.0, 100.0)),
    "mix_scaling_extreme": Workload((45, 5, 0, 5, 45), (1, 2, 3, 4, 7), 50, (90.0, 100.0)),
    "mix_scaling_soft": Workload((20, 20, 20, 20, 20), (1, 2, 3, 4, 7), 50, (90.0, 100.0)),
    "wide_times": Workload((20, 20, 20, 20, 20), (1, 2, 3, 4, 7), 50, (1.0, 100.0)),
}
WORKLOAD_NAMES = tuple(WORKLOADS)


def check_workload(name: str) -> Workload:
    """The workload called `name`, or a ValueError that lists the valid names."""
    if name not in WORKLOADS:
        raise ValueError(f"unknown type_tasks {name!r}; choose one of: {', '.join(WORKLOAD_NAMES)}")
    return WORKLOADS[name]


def class_counts(name: str, n: int) -> dict[int, tuple[int, int]]:
    """Per scaling limit: (number of tasks, how many of them are memory-bound) in a batch of n."""
    workload = check_workload(name)
    counts = {s: share * n // 100 for s, share in zip(SCALING_LIMITS, workload.shares_percent)}
    total = sum(counts.values())
    for s in workload.padding_order:
        if total >= n:
            break
        counts[s] += 1
        total += 1
    return {s: (c, c * workload.membound_percent // 100) for s, c in counts.items()}


def generate_tasks(rng: np.random.Generator, limits: list[int], membound: list[bool], time_range: tuple[float, float]) -> np.ndarray:
    """Synthetic tasks, one per scaling limit in `limits` with its memory-bound flag: their times
    on sizes 1, 2, 3, 4, 7. The random numbers are drawn in four calls, then used size by size."""
    n = len(limits)
    first = rng.uniform(*time_range, size=n).tolist()
    z = rng.standard_normal((n, 6))
    little = _clip(0.75 + 0.25 * z, 0.5, 1.0)  # d = clip(normal(0.75, 0.25), 0.5, 1)
    superlinear = _clip(-0.3 + 0.3 * z, -0.5, 0.0)  # d = clip(normal(-0.3, 0.3), -0.5, 0)
    linear = _clip(0.05 + 0.05 * z, 0.0, 0.1)  # d = clip(normal(0.05, 0.05), 0, 0.1)
    leave = (rng.random((n, 6)) < 0.025).tolist()
    batch = []
    for task in range(n):
        limit, bound, t = limits[task], membound[task], first[task]
        times = [t]
        for k in range(2, 8):
            if k > limit or (bound and k == 4):
                d = little[task][k - 2]
            elif bound:
                d = superlinear[task][k - 2]
                bound = not leave[task][k - 2]
            else:
                d = linear[task][k - 2]
            t = (k - 1 + d) / k * t
            times.append(t)
        batch.append(times[:4] + times[6:])
    return np.array(batch).reshape(n, 5)


def _clip(values: np.ndarray, low: float, high: float) -> list[list[float]]:
    return np.minimum(np.maximum(values, low), high).tolist()


def generate(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A shuffled batch of `n` tasks of workload `name`, drawn from `rng`."""
    workload = check_workload(name)
    limits, membound = [], []
    for limit, (count, n_membound) in class_counts(name, n).items():
        limits += [limit] * count
        membound += [k < n_membound for k in range(count)]
    return generate_tasks(rng, limits, membound, workload.time_range)[rng.permutation(n)]


def validate_tasks(tasks: Sequence[Sequence[float]], max_tasks: int | None = None) -> np.ndarray:
    """Check a user task list and return it as an array: five times each, every one `inf` or
    in [MIN_TIME, HUGE_TIME) seconds, at least one finite (see MIN_TIME for why the bounds)."""
    try:
        rows = [[float(t) for t in task] for task in tasks]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tasks must be a list of five-time lists in seconds ({exc})") from None
    if not rows:
        raise ValueError("tasks must hold at least one task")
    if max_tasks is not None and len(rows) > max_tasks:
        raise ValueError(f"{len(rows)} tasks given but this environment takes at most N={max_tasks}")
    for i, row in enumerate(rows):
        if len(row) != 5:
            raise ValueError(f"task {i} has {len(row)} times; give five (sizes 1, 2, 3, 4, 7)")
        if any(math.isnan(t) or t <= 0 for t in row):
            raise ValueError(f"task {i} has a time that is not positive: {row}")
        if any(not math.isinf(t) and not MIN_TIME <= t < HUGE_TIME for t in row):
            raise ValueError(f"task {i} has a finite time outside {TIME_RANGE_TEXT}: {row}")
        if all(math.isinf(t) for t in row):
            raise ValueError(f"task {i} fits no instance size (every time is infinite)")
    return np.array(rows, dtype=float)


def parse_task_file(path: str) -> tuple[list[str], np.ndarray]:
    """Read a UTF-8 task file (a BOM is allowed): a line `Task NAME`, then one line `SIZE TIME`
    for each of the sizes 1, 2, 3, 4, 7 (`inf` or at least HUGE_TIME: does not fit; a finite time
    is at least MIN_TIME). Blank lines and `#` comments are skipped. Returns the names and the
    (n, 5) times; a bad line raises ValueError naming its number, a file not in UTF-8 one naming it."""
    names: list[str] = []
    rows: list[dict[int, float]] = []
    starts: list[int] = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None
    if "\0" in text:
        raise ValueError(f"{path}: not UTF-8 text (it holds NUL characters, as UTF-16 does); save it as UTF-8")
    lines = text.splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{path}:{number}"
        fields = line.split()
        if fields[0] == "Task":
            if len(fields) < 2:
                raise ValueError(f"{where}: 'Task' needs a name")
            names.append(" ".join(fields[1:]))
            rows.append({})
            starts.append(number)
            continue
        if not rows:
            raise ValueError(f"{where}: expected 'Task NAME' before {line!r}")
        if len(fields) != 2:
            raise ValueError(f"{where}: expected 'SIZE TIME' or 'Task NAME', got {line!r}")
        try:
            size = int(fields[0])
        except ValueError:
            raise ValueError(f"{where}: unknown line {line!r} (expected 'SIZE TIME' or 'Task NAME')") from None
        if size not in SCALING_LIMITS:
            raise ValueError(f"{where}: unknown instance size {size}; sizes are 1, 2, 3, 4, 7")
        if size in rows[-1]:
            raise ValueError(f"{where}: size {size} given twice for task {names[-1]!r}")
        try:
            time = float(fields[1])
        except ValueError:
            raise ValueError(f"{where}: unparsable time {fields[1]!r}") from None
        if math.isnan(time) or time <= 0:
            raise ValueError(f"{where}: time must be positive, got {fields[1]!r}")
        if time < MIN_TIME:
            raise ValueError(f"{where}: time {fields[1]!r} is outside {TIME_RANGE_TEXT}")
        rows[-1][size] = math.inf if time >= HUGE_TIME else time
    if not rows:
        raise ValueError(f"{path}: no task found (expected 'Task NAME' lines)")
    for name, row, number in zip(names, rows, starts):
        missing = [s for s in SCALING_LIMITS if s not in row]
        if missing:
            raise ValueError(f"{path}:{number}: task {name!r} is missing sizes {', '.join(map(str, missing))}")
        if all(math.isinf(t) for t in row.values()):
            raise ValueError(f"{path}:{number}: task {name!r} fits no instance size")
    return names, np.array([[row[s] for s in SCALING_LIMITS] for row in rows])
