"""schedule.py: task files in, a printed schedule out; bad files are refused with their line number."""

from __future__ import annotations

import math
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA

from migsched.policies import base, make_baseline
from migsched.policies.base import Policy, run_episode
from migsched.scheduling import main, play_policy, schedule_tasks
from migsched.state import FIRST_RUN_ACTION
from migsched.versions import make_env
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
        [
            sys.executable,
            "schedule.py",
            "--baseline",
            "greedy",
            "--tasks",
            str(DATA / "rodinia_a30.txt"),
            "--N",
            str(n),
            "--partition",
            "8",
            "--gantt",
            str(gantt),
        ],
        cwd=ROOT / version,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names, _ = parse_task_file(str(DATA / "rodinia_a30.txt"))
    for name in names:
        assert sum(f"run {name} on " in line for line in out.splitlines()) == 1, out
    assert "makespan" in out and "static baseline" in out and "partition 8: 2g (slices 0-1), 1g (slice 2), 1g (slice 3), 3g (slices 4-6)" in out
    assert "a partition splits the A100's 7 compute slices into instances" in out
    assert " wait" not in out and "reconfig 1" not in out
    batches_note = "8 tasks are more than this offline agent's N=3 ready slots: it schedules them as 3 batches"
    assert (batches_note in out) == (version == "float" and n == 3)
    assert ("online/ schedules a whole list" in out) == (version == "float" and n == 3)
    for batch in out.split("batch ")[1:] if "batch 1" in out else [out]:
        starts = [float(line.split()[0]) for line in batch.splitlines() if line.strip()[:1].isdigit() and " s  " in line]
        assert starts == sorted(starts), batch
    assert gantt.stat().st_size > 10_000


def test_printed_times_follow_the_replay() -> None:
    from migsched.policies.static import StaticPolicy
    from migsched.scheduling import ScheduleResult

    names, times = parse_task_file(str(DATA / "small_tasks.txt"))
    batches = schedule_tasks("float", {"N": 2, "M": 10}, times, 1, partial(play_policy, StaticPolicy))
    assert [b.tasks for b in batches] == [[0, 1], [2, 3]]
    assert batches[1].offset == batches[0].result.makespan
    result = ScheduleResult("float", "static", names, times, 1, batches)
    lines = [line for line in result.lines() if " run " in line]
    starts = [float(line.split()[0]) for line in lines]
    assert min(starts[2:]) >= batches[0].result.makespan, "batch 2 starts after batch 1"
    runs = {t["name"]: t for t in result.to_dict()["tasks"]}
    for line in lines:
        start, _, end, _, _, name = line.split()[:6]
        assert (float(start), float(end)) == pytest.approx((runs[name]["start"], runs[name]["end"]), abs=1e-3)


def test_schedule_needs_a_model_or_a_baseline(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("float", ["--tasks", str(DATA / "small_tasks.txt")])
    assert exit_info.value.code == 2


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of `schedule.py argv`, which exits or returns with status 2."""
    try:
        status = main("float", argv)
    except SystemExit as exited:
        status = exited.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("schedule.py: error: ") and err.count("\n") == 1, err
    return err


def test_every_error_is_one_line(monkeypatch, capsys) -> None:
    tasks = str(DATA / "small_tasks.txt")
    assert "one of the arguments --model --baseline is required" in one_line_error(["--tasks", tasks], capsys)
    assert "invalid choice: 'random'" in one_line_error(["--baseline", "random", "--tasks", tasks], capsys)
    assert "--partition must be in 1..16" in one_line_error(["--baseline", "static", "--tasks", tasks, "--partition", "0"], capsys)
    assert "--N must be a positive integer of at most 256, got 100000000" in one_line_error(
        ["--baseline", "greedy", "--tasks", tasks, "--N", "100000000"], capsys
    )
    assert "--M must be a positive integer, got 0" in one_line_error(["--baseline", "greedy", "--tasks", tasks, "--M", "0"], capsys)
    assert "--trust_model says how to read --model" in one_line_error(["--baseline", "greedy", "--tasks", tasks, "--trust_model"], capsys)
    model = DATA / "small_tasks.txt"  # any existing file: load_model is replaced
    for error in (OSError("m.zip: policy.pth is missing"), ValueError("m.zip: policy.pth is not a torch state dict")):

        def load(path: str, version: str, trusted: bool = False, error: Exception = error) -> None:
            raise error

        monkeypatch.setattr("migsched.scheduling.load_model", load)
        assert one_line_error(["--model", str(model), "--tasks", tasks], capsys) == f"schedule.py: error: {error}\n"


@pytest.mark.parametrize(("where", "reason"), [("missing/s.png", "does not exist"), (".", "is a directory"), ("s.txt", "unknown image format .txt")])
def test_the_gantt_path_is_checked_before_scheduling(where: str, reason: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("migsched.scheduling.schedule_tasks", lambda *args: pytest.fail("scheduled before the --gantt path was checked"))
    path = tmp_path / where
    err = one_line_error(["--baseline", "static", "--tasks", str(DATA / "small_tasks.txt"), "--gantt", str(path)], capsys)
    assert err.startswith(f"schedule.py: error: --gantt {path}: ") and reason in err


class NeverRuns(Policy):
    """Waits while a slice is busy, else reconfigures: it never runs a task, so its episode never ends."""

    name = "cycler"

    def reset(self, env, seed=None) -> None:
        self.calls = 0

    def act(self, env) -> int:
        self.calls += 1
        mask = env.action_masks()
        return 0 if mask[0] else int(np.flatnonzero(mask[1:FIRST_RUN_ACTION])[0]) + 1


def test_the_step_cap_grows_with_the_number_of_tasks(monkeypatch) -> None:
    monkeypatch.setattr(base, "BASE_EPISODE_STEPS", 40)
    monkeypatch.setattr(base, "STEPS_PER_TASK", 10)
    env = make_env("float", {"N": 5, "M": 6})
    _, times = parse_task_file(str(DATA / "small_tasks.txt"))
    for n in (1, 4):
        policy = NeverRuns()
        with pytest.raises(RuntimeError, match=f"cycler did not finish an episode of {n} tasks within {40 + 10 * n} steps"):
            run_episode(env, policy, options={"tasks": times[:n].tolist(), "partition": 1, "busy": [0]})
        assert policy.calls == base.max_episode_steps(n) == 40 + 10 * n


def test_a_long_online_list_fits_under_the_cap(monkeypatch) -> None:
    from migsched.workloads import generate

    monkeypatch.setattr(base, "BASE_EPISODE_STEPS", 1000)
    monkeypatch.setattr(base, "STEPS_PER_TASK", 3)
    times = generate("wide_times", 3000, np.random.default_rng(0))
    (batch,) = schedule_tasks("online", {"N": 14, "M": 14}, times, 1, partial(play_policy, partial(make_baseline, "greedy")))
    assert sum(d.kind == "run" for d in batch.result.log) == 3000
    assert len(batch.result.log) > base.BASE_EPISODE_STEPS, "more steps than a cap that ignores the task count allows"


@pytest.mark.parametrize(
    ("version", "flags", "message"),
    [
        ("online", ["--samples", "4"], "unrecognized arguments: --samples 4"),
        ("float", ["--samples", "-1"], "--samples must be >= 0"),
        ("float", ["--samples", "4", "--temperature", "0"], "--temperature: expected a finite number above 0"),
        ("float", ["--time_limit", "0.5"], "give --model"),
    ],
)
def test_schedule_refuses_a_search_it_cannot_run_in_one_line(version: str, flags: list[str], message: str, capsys) -> None:
    argv = ["--baseline", "static", "--tasks", str(DATA / "rodinia_a30.txt"), *flags]
    if message != "give --model":
        argv = ["--model", __file__, "--tasks", str(DATA / "rodinia_a30.txt"), *flags]
    with pytest.raises(SystemExit) as exited:
        main(version, argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1 and message in err
