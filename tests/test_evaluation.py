"""evaluate.py: the table, the CSV and the Gantt chart, on the same seeded episodes for every policy."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from migsched.evaluation import CSV_COLUMNS, evaluate, main, summary

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
        [sys.executable, "evaluate.py", "--episodes", "2", "--N", "5", "--M", "6", "--type_tasks", "mix_scaling_soft",
         "--policies", "random,static,greedy,far,cpsat", "--cpsat_time", "2", "--csv", str(out_csv), "--gantt", str(png)],
        cwd=ROOT / "direct_reconfig", capture_output=True, text=True, check=True,
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
        (["--episodes", "0"], "must be positive"),
        (["--model", "missing.zip"], "model file not found"),
        (["--type_tasks", "heavy"], "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("float", argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_online_has_no_cpsat_reference(capsys) -> None:
    with pytest.raises(SystemExit):
        main("online", ["--policies", "cpsat"])
    assert "not available here" in capsys.readouterr().err
