"""schedule.py: task files in, a printed schedule out; bad files are refused with their line number."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATA

from migsched.scheduling import main
from migsched.workloads import parse_task_file

ROOT = Path(__file__).resolve().parent.parent


def test_parse_task_file_reads_names_times_inf_and_huge_values() -> None:
    names, times = parse_task_file(str(DATA / "small_tasks.txt"))
    assert names == ["alpha", "beta", "gamma", "delta"]
    assert times[0].tolist() == [40.0, 21.0, 15.0, 12.0, 8.0]
    assert math.isinf(times[1][0]) and math.isinf(times[3][4])
    names, times = parse_task_file(str(DATA / "rodinia_a30.txt"))
    assert len(names) == 8 and names[3] == "lavaMD" and math.isinf(times[3][0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Task a\n1 1\n2 1\n3 1\n4 1\n5 1\n", "t.txt:6: unknown instance size 5"),
        ("Task a\n1 1\n2 1\n3 1\n7 1\n", "t.txt:1: task 'a' is missing sizes 4"),
        ("Task a\n1 1\n2 -1\n", "t.txt:3: time must be positive"),
        ("Task a\n1 1\n2 fast\n", "t.txt:3: unparsable time 'fast'"),
        ("1 1\n", "t.txt:1: expected 'Task NAME'"),
        ("Task a\nsize one\n", "t.txt:2: unknown line"),
        ("Task a\n1 1\n1 2\n", "t.txt:3: size 1 given twice"),
        ("Task a\n1 inf\n2 inf\n3 inf\n4 inf\n7 inf\n", "fits no instance size"),
        ("# nothing\n", "no task found"),
    ],
)
def test_bad_task_files_name_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_task_file(str(path))
    assert main("float", ["--baseline", "static", "--tasks", str(path)]) == 2


@pytest.mark.parametrize("version", ["float", "online"])
@pytest.mark.parametrize("n", [3, 14])
def test_every_task_is_printed_exactly_once(version: str, n: int, tmp_path: Path) -> None:
    gantt = tmp_path / "s.png"
    out = subprocess.run(
        [sys.executable, "schedule.py", "--baseline", "greedy", "--tasks", str(DATA / "rodinia_a30.txt"), "--N", str(n), "--partition", "8", "--gantt", str(gantt)],
        cwd=ROOT / version, capture_output=True, text=True, check=True,
    ).stdout
    names, _ = parse_task_file(str(DATA / "rodinia_a30.txt"))
    for name in names:
        assert sum(f"run {name} on " in line for line in out.splitlines()) == 1, out
    assert "makespan" in out and "static baseline" in out and "partition 8 (2 1 1 3)" in out
    assert gantt.stat().st_size > 10_000


def test_printed_times_follow_the_replay() -> None:
    from migsched.policies.static import StaticPolicy
    from migsched.scheduling import describe_decisions, schedule_tasks

    names, times = parse_task_file(str(DATA / "small_tasks.txt"))
    batches = schedule_tasks("float", {"N": 2, "M": 10}, times, 1, StaticPolicy)
    assert [b.tasks for b in batches] == [[0, 1], [2, 3]]
    assert batches[1].offset == batches[0].result.makespan
    lines = [line for b in batches for line in describe_decisions(b, names) if " run " in line]
    starts = [float(line.split()[0]) for line in lines]
    assert min(starts[2:]) >= batches[0].result.makespan, "batch 2 starts after batch 1"


def test_schedule_needs_a_model_or_a_baseline(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("float", ["--tasks", str(DATA / "small_tasks.txt")])
    assert exit_info.value.code == 2
