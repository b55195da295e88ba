"""From a task list to a schedule, as a new user goes: progress on long waits, a model's own
settings inherited, a schedule another program can read, the Python call of the README, plots a
person can read, and the `migsched` command."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from conftest import DATA, ROOT, script_env, version_copy

import migsched
from migsched import evaluation, plots, pretrain, scheduling, training
from migsched.__main__ import main as entry_point
from migsched.replay import Schedule

N, M, WORKLOAD = 4, 5, "wide_times"
TASKS = str(DATA / "rodinia_a30.txt")


def run(folder: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, text=True, env=env or script_env())


def migsched_command(*argv: str) -> subprocess.CompletedProcess:
    """`migsched ARGV` in this process (the entry point's own `main`): its exit status and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = entry_point(list(argv))
        except SystemExit as exited:
            status = exited.code
    return subprocess.CompletedProcess(["migsched", *argv], status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model of one rollout on wide_times with N=4, M=5."""
    folder = version_copy("float", tmp_path_factory.mktemp("journey"))
    result = run(folder, "train.py", "--num_steps", "2048", "--N", str(N), "--M", str(M), "--type_tasks", WORKLOAD, "--eval_freq", "0", "--seed", "0")
    assert result.returncode == 0, result.stderr
    return folder / "trained_models" / f"bs3_N={N}_M={M}_s=2048_{WORKLOAD}.zip"


def test_evaluation_shows_progress_and_its_defaults_leave_out_cpsat(tmp_path: Path) -> None:
    assert evaluation.parse_args("float", []).policies == ["random", "static", "greedy", "far"]
    folder = version_copy("float", tmp_path)
    argv = ["evaluate.py", "--episodes", "3", "--N", "3", "--M", "4", "--policies", "greedy,cpsat", "--cpsat_time", "0.01"]
    result = run(folder, *argv, env=script_env() | {"MIGSCHED_PROGRESS": "1"})
    assert result.returncode == 0, result.stderr
    assert re.search(r"greedy:\s+\d+%\|.*\| \d/3 .*episode/s", result.stderr) and re.search(r"cpsat:\s+\d+%\|.*\| \d/3", result.stderr)
    assert "cpsat: up to 0.01 s per episode, 3 episodes" in result.stdout.splitlines()[0]
    quiet = run(folder, *argv)
    assert quiet.returncode == 0 and quiet.stderr == "", "no bar where stderr is not a terminal"


def test_the_clone_shows_its_progress(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MIGSCHED_PROGRESS", "1")
    pretrain.demonstrations("float", {"N": 3, "M": 4}, WORKLOAD, "greedy", 4)
    assert re.search(r"clone: greedy's episodes:\s+\d+%\|.*\| \d/4", capsys.readouterr().err)


def test_restore_evaluate_and_schedule_take_the_models_settings(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = training.parse_args("float", ["--restore", str(trained), "--num_steps", "2048"])
    assert (args.N, args.M, args.type_tasks) == (N, M, WORKLOAD)
    training.parse_args("float", ["--restore", str(trained), "--num_steps", "2048", "--type_tasks", "bad_scaling"])
    assert "train.py: note: the model was trained on wide_times; this run trains it on bad_scaling" in capsys.readouterr().err
    args = evaluation.parse_args("float", ["--model", str(trained)])
    assert (args.N, args.M, args.type_tasks) == (N, M, WORKLOAD)
    args = evaluation.parse_args("float", ["--model", str(trained), "--type_tasks", "good_scaling"])
    assert args.workload_note == "evaluate.py: note: the model was trained on wide_times; evaluating on good_scaling, as --type_tasks asks"
    for flag, value, trained_value in (("--N", 9, N), ("--M", 9, M)):
        with pytest.raises(SystemExit):
            evaluation.parse_args("float", ["--model", str(trained), flag, str(value)])
        assert capsys.readouterr().err == f"evaluate.py: error: {flag} {value}: the model was trained with {flag[2:]}={trained_value}; drop {flag}\n"
    out = migsched_command("evaluate", "float", "--model", str(trained), "--episodes", "1", "--policies", "agent").stdout
    assert out.startswith(f"float, {WORKLOAD}, N={N} M={M}, 1 episodes")
    err = migsched_command("schedule", "float", "--model", str(trained), "--tasks", TASKS, "--N", "9").stderr
    assert err == "schedule.py: error: --N and --M are for --baseline: a model schedules with the N and M it was trained with\n"


def test_a_restore_without_type_tasks_saves_under_the_models_workload(trained: Path, tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    result = run(folder, "train.py", "--restore", str(trained), "--num_steps", "2048", "--eval_freq", "0")
    assert result.returncode == 0, result.stderr
    assert (folder / "trained_models" / f"bs3_N={N}_M={M}_s=2048_{WORKLOAD}.zip").is_file()


def test_schedule_writes_json_and_csv_a_program_can_read(trained: Path, tmp_path: Path) -> None:
    for suffix in ("json", "csv"):
        out = tmp_path / f"s.{suffix}"
        result = migsched_command("schedule", "float", "--model", str(trained), "--tasks", TASKS, "--out", str(out))
        assert result.returncode == 0, result.stderr
    printed = float(re.search(r"^makespan (\S+) s", result.stdout, re.MULTILINE).group(1))
    data = json.loads((tmp_path / "s.json").read_text())
    assert (data["format"], data["format_version"], data["version"], data["scheduler"], data["batches"]) == ("migsched-schedule", 1, "float", "agent", 2)
    assert data["makespan"] == pytest.approx(printed, abs=1e-3) and data["lower_bound"] > 0
    names, times = scheduling.read_tasks(TASKS)
    assert sorted(t["name"] for t in data["tasks"]) == sorted(names)
    for task in data["tasks"]:
        size = task["instance"]["size"]
        assert task["instance"]["name"] == f"{size}g" and len(task["instance"]["slices"]) == size
        assert task["end"] - task["start"] == pytest.approx(times[task["task"]][[1, 2, 3, 4, 7].index(size)])
        assert 0 <= task["start"] < task["end"] <= data["makespan"] + 1e-9
    assert all(r["end"] > r["start"] and 1 <= r["partition"] <= 16 for r in data["reconfigurations"])
    with open(tmp_path / "s.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sum(row["kind"] == "run" for row in rows) == len(names)
    assert float(next(row for row in rows if row["kind"] == "makespan")["end"]) == pytest.approx(data["makespan"], abs=1e-5)
    bad = migsched_command("schedule", "float", "--model", str(trained), "--tasks", TASKS, "--out", str(tmp_path / "s.txt"))
    assert bad.returncode == 2 and bad.stderr.endswith(": end the name in .json or .csv\n")


def test_results_serialise_to_json(trained: Path) -> None:
    result = migsched.schedule(trained, [[1.0, 2.0, 3.0, 4.0, 5.0], [2.0, 2.0, 2.0, 2.0, np.inf]])
    episode = result.batches[0].result
    again = json.loads(json.dumps(episode.to_dict()))
    assert again["makespan"] == episode.makespan and len(again["decisions"]) == len(episode.log)
    assert Schedule(**{"intervals": [], "free": [1.0, 2.0]}).to_dict() == {"makespan": 2.0, "free": [1.0, 2.0], "intervals": []}
    assert json.loads(json.dumps(result.to_dict()))["tasks"][0]["name"] in ("T0", "T1")


def test_the_python_call_starts_from_an_idle_gpu_and_searches_if_asked(trained: Path) -> None:
    plain = migsched.schedule(trained.with_suffix(".pt"), TASKS)
    assert plain.version == "float" and plain.initial_partition == 1
    assert all(bar.kind != "busy" for batch in plain.batches for bar in batch.result.schedule.intervals)
    searched = migsched.schedule(trained, TASKS, samples=8)
    assert searched.makespan <= plain.makespan + 1e-9
    with pytest.raises(ValueError, match="partition must be in 1..16"):
        migsched.schedule(trained, TASKS, partition=0)


def test_the_readmes_python_example_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "migsched.schedule(" in b)
    assert "pretrained:" in block, "the example needs no training"
    monkeypatch.chdir(ROOT)
    exec(block, {})
    out = capsys.readouterr().out
    assert "'instance': {'name':" in out and "'slices': [" in out


def figure_of(monkeypatch: pytest.MonkeyPatch) -> list[matplotlib.figure.Figure]:
    """The figures the plots save, kept instead of written."""
    figures = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figures.append(fig))
    return figures


def test_plots_name_what_they_show(trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = figure_of(monkeypatch)
    result = migsched.schedule(trained, TASKS)
    plots.gantt(scheduling.combined(result.batches), tmp_path / "g.png", title="float agent", task_names=result.names)
    ax = figures[-1].axes[0]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert f"makespan {result.makespan:.2f} s" in legend and any(text.startswith("task run") for text in legend)
    assert ax.get_xlabel() == "time (s)" and ax.get_title() == "float agent"
    assert not any(c[0] == c[1] == c[2] for c in plots.TASK_COLOURS), "no task is grey, as reconfigurations are"
    csv_path = tmp_path / f"{trained.stem}_eval.csv"
    csv_path.write_text("timesteps,minutes,agent,static,greedy,far\n1000,0.1,1.3,1.2,1.25,1.4\n2000,0.2,1.2,1.2,1.25,1.4\n")
    csv_path.with_name(f"{trained.stem}.json").write_text(json.dumps({"version": "float", "type_tasks": WORKLOAD}))
    assert plots.main([str(csv_path), "--out", str(tmp_path / "c.png")]) == 0
    ax = figures[-1].axes[0]
    assert ax.get_title() == f"float on {WORKLOAD}: {trained.stem}"
    assert "lower is better" in ax.get_ylabel() and ax.get_xlabel() == "training timesteps"


def test_one_entry_point_runs_every_command(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = run(tmp_path, "-m", "migsched", "schedule", "--model", str(trained), "--tasks", TASKS, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["version"] == "float"
    helped = migsched_command("train", "direct_reconfig", "--help")
    assert helped.returncode == 0 and "--num_steps" in helped.stdout and "usage: train.py" in helped.stdout
    wrong = migsched_command("evaluate", "--episodes", "1")
    assert wrong.returncode == 2 and wrong.stderr.startswith("migsched evaluate: error: name the version first")
    script = Path(sys.executable).with_name("migsched")
    if script.exists():
        assert run(tmp_path, str(script), "schedule", "float", "--baseline", "greedy", "--tasks", TASKS).returncode == 0
