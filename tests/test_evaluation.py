"""evaluate.py: the table, the CSV and the Gantt chart, on the same seeded episodes for every policy."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from migsched.evaluation import CSV_COLUMNS, evaluate, main, parse_args, summary
from migsched.models import ModelFacts

ROOT = Path(__file__).resolve().parent.parent


def test_policies_see_the_same_episodes() -> None:
    rows, results = evaluate("float", {"N": 5, "M": 6}, "wide_times", 3, 7, ["random", "static", "greedy"])
    bounds = {}
    for row in rows:
        bounds.setdefault(row.episode, set()).add(row.lower_bound)
    assert all(len(values) == 1 for values in bounds.values())
    assert sorted(results) == ["greedy", "random", "static"] and all(len(r) == 3 for r in results.values())
    table = summary(rows)
    assert table.splitlines()[0] == "makespan / lower bound"
    assert {line.split()[0] for line in table.splitlines()[3:]} == {"random", "static", "greedy"}


def test_cli_writes_the_csv_and_the_gantt_chart(tmp_path: Path) -> None:
    out_csv, png = tmp_path / "e.csv", tmp_path / "g.png"
    result = subprocess.run(
        [
            sys.executable,
            "evaluate.py",
            "--episodes",
            "2",
            "--N",
            "5",
            "--M",
            "6",
            "--type_tasks",
            "mix_scaling_soft",
            "--policies",
            "random,static,greedy,far,cpsat",
            "--cpsat_time",
            "2",
            "--csv",
            str(out_csv),
            "--gantt",
            str(png),
        ],
        cwd=ROOT / "direct_reconfig",
        capture_output=True,
        text=True,
        check=True,
    )
    assert "cpsat proven optimal on" in result.stdout
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 2 * 5
    for row in rows:
        assert float(row["ratio"]) == pytest.approx(float(row["makespan"]) / float(row["lower_bound"]), rel=1e-5)
        assert float(row["ratio"]) >= 1.0 - 1e-6
        assert row["optimal"] in (("true", "false") if row["policy"] == "cpsat" else ("",))
    cpsat = {row["episode"]: float(row["makespan"]) for row in rows if row["policy"] == "cpsat" and row["optimal"] == "true"}
    for row in rows:
        if row["episode"] in cpsat:
            assert float(row["makespan"]) >= cpsat[row["episode"]] - 0.01
    assert png.stat().st_size > 10_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policies", "random,agent"], "not available here"),
        (["--policies", "optimal"], "not available here"),
        (["--policies", ","], "--policies: empty list"),
        (["--policies", "static,greedy,static"], "--policies: listed twice: static"),
        (["--episodes", "0"], "--episodes must be a positive integer, got 0"),
        (["--episodes", "100000000"], "--episodes must be a positive integer of at most 1000000, got 100000000"),
        (["--N", "100000000"], "--N must be a positive integer of at most 256, got 100000000"),
        (["--M", "100000"], "--M must be a positive integer of at most 1000, got 100000"),
        (["--trust_model"], "--trust_model says how to read --model; give --model"),
        (["--model", "missing.zip"], "model file not found"),
        (["--type_tasks", "heavy"], "invalid choice"),
        (["--cpsat_time", "nan"], "argument --cpsat_time: expected a finite number above 0"),
        (["--cpsat_time", "inf"], "argument --cpsat_time: expected a finite number above 0"),
        (["--cpsat_time", "0"], "argument --cpsat_time: expected a finite number above 0"),
        (["--seed", "-1"], "argument --seed: a seed must be in 0..4294967295"),
        (["--seed", "4294967296"], "argument --seed: a seed must be in 0..4294967295"),
        (["--policies", "cpsat", "--gantt", "g.png"], "--gantt draws a policy's episode"),
        (["--gantt", "g.txt"], "--gantt g.txt: unknown image format .txt; end the name in one of "),
        (["--gantt", "g"], "--gantt g: no image suffix"),
    ],
)
def test_bad_arguments_exit_2_with_a_one_line_message(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("float", argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("evaluate.py: error: ") and err.count("\n") == 1, err
    assert message in err


def test_every_episode_seed_must_be_in_range(capsys) -> None:
    assert parse_args("float", ["--seed", "4294967294", "--episodes", "2"]).seed == 4294967294
    assert parse_args("float", ["--seed", "4294967295", "--episodes", "1"]).seed == 4294967295
    with pytest.raises(SystemExit) as exit_info:
        parse_args("float", ["--seed", "4294967295", "--episodes", "2"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "evaluate.py: error: --seed 4294967295 with --episodes 2: the last episode's seed would pass 4294967295\n"


@pytest.mark.parametrize("flag", ["--csv", "--gantt"])
@pytest.mark.parametrize(("where", "reason"), [("missing/out", "does not exist"), (".", "is a directory")])
def test_an_output_path_is_checked_before_any_episode(flag: str, where: str, reason: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr("migsched.evaluation.evaluate", lambda *args, **kwargs: pytest.fail("an episode ran before the output path was checked"))
    path = tmp_path / where
    with pytest.raises(SystemExit) as exit_info:
        main("float", ["--episodes", "1", "--policies", "static", flag, str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"evaluate.py: error: {flag} {path}: ") and reason in err and err.count("\n") == 1, err


def raising(error: Exception) -> Callable[..., None]:
    """A stand-in for load_model that raises `error`."""

    def load(*args: object, **kwargs: object) -> None:
        raise error

    return load


def test_a_model_that_cannot_be_loaded_is_a_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    model = tmp_path / "m.zip"
    model.write_bytes(b"PK")
    monkeypatch.setattr("migsched.evaluation.read_facts", lambda *args: ModelFacts("float", 14, 14, "levels", None))
    for error in (OSError("policy.pth: cannot read it"), ValueError("policy.pth: not a torch state dict")):
        monkeypatch.setattr("migsched.evaluation.load_model", raising(error))
        assert main("float", ["--model", str(model), "--episodes", "1"]) == 2
        assert capsys.readouterr().err == f"evaluate.py: error: {error}\n"


def test_online_has_no_cpsat_reference(capsys) -> None:
    with pytest.raises(SystemExit):
        main("online", ["--policies", "cpsat"])
    assert "not available here" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--samples", "4"], ["--time_limit", "0.5"]])
def test_online_refuses_to_search_in_one_line(flags: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main("online", flags)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and err.count("\n") == 1
    assert f"unrecognized arguments: {' '.join(flags)}" in err
    with pytest.raises(SystemExit):
        main("online", ["--help"])
    assert "--samples" not in capsys.readouterr().out, "online's --help offers no search"


def test_search_needs_a_model(capsys) -> None:
    with pytest.raises(SystemExit):
        main("float", ["--time_limit", "1"])
    assert "give --model" in capsys.readouterr().err
