"""benchmarks/anytime.py end to end on two tiny episodes with an untrained model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from conftest import benchmark_module, small_env
from sb3_contrib import MaskablePPO

ROOT = Path(__file__).resolve().parent.parent
RESOLUTION = 1e-3  # CP-SAT's time unit: a proven optimum replays within (tasks + 1) units of the real one


def tiny_model(tmp_path: Path) -> Path:
    """An untrained float model of 4 slots and 5 levels."""
    env = small_env("float")
    model = MaskablePPO("MlpPolicy", env, seed=0, policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32])))
    model.env_config = {"N": 4, "M": 5}
    model.save(tmp_path / "tiny.zip")
    return tmp_path / "tiny.zip"


def anytime(*flags: str, check: bool = True, version: str = "float") -> subprocess.CompletedProcess:
    """benchmarks/anytime.py on `version` with the given flags, one torch thread."""
    return subprocess.run(
        [sys.executable, "benchmarks/anytime.py", "--version", version, *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_anytime_writes_the_csv_and_the_plot(tmp_path: Path) -> None:
    model = tiny_model(tmp_path)
    out = tmp_path / "run"
    # The reference stops once optimal: fast, even on a busy machine.
    flags = ["--type_tasks", "mix_scaling_soft", "--episodes", "2", "--limits", "0.01,0.05", "--reference", "2"]
    result = anytime("--model", str(model), *flags, "--out", str(out))
    assert "taskset -c 0" in result.stdout and "makespan / CP-SAT(2 s)" in result.stdout
    rows = read_rows(out / "anytime.csv")
    methods = [(row["method"], row["limit"]) for row in rows if row["episode"] == "0"]
    assert methods == [
        ("cpsat_reference", "2"),
        ("agent", ""),
        ("search", "0.01"),
        ("search", "0.05"),
        ("cpsat", "0.01"),
        ("cpsat", "0.05"),
        ("static", ""),
        ("greedy", ""),
        ("far", ""),
    ]
    assert len(rows) == 2 * len(methods)
    for episode in ("0", "1"):
        mine = {(row["method"], row["limit"]): row for row in rows if row["episode"] == episode}
        reference = mine["cpsat_reference", "2"]
        assert float(reference["ratio"]) == pytest.approx(1.0)
        assert float(mine["search", "0.05"]["makespan"]) <= float(mine["agent", ""]["makespan"])
        assert float(mine["search", "0.01"]["makespan"]) <= float(mine["agent", ""]["makespan"])
        assert float(mine["cpsat", "0.01"]["makespan"]) <= float(mine["static", ""]["makespan"]) + 1e-6  # never worse than its hint
        for row in mine.values():
            assert float(row["ratio"]) == pytest.approx(float(row["makespan"]) / float(reference["makespan"]), rel=1e-5)
            assert float(row["seconds"]) > 0
            assert row["from_hint"] in (("true", "false") if row["method"].startswith("cpsat") else ("",))
            if reference["optimal"] == "true":  # every schedule is one of CP-SAT's relaxation's
                assert float(row["makespan"]) >= float(reference["makespan"]) - 5 * RESOLUTION
        assert mine["search", "0.05"]["rollouts"].isdigit() and mine["agent", ""]["rollouts"] == ""  # how many fit depends on the machine
    assert any(row["optimal"] == "true" for row in rows if row["method"] == "cpsat_reference")
    assert (out / "anytime.png").stat().st_size > 10_000

    # A second model's run reuses the CP-SAT rows: the same figures, the agent's measured anew.
    again = tmp_path / "again"
    anytime("--model", str(model), *flags, "--out", str(again), "--cpsat_from", str(out / "anytime.csv"))
    reused = read_rows(again / "anytime.csv")
    assert [(r["method"], r["limit"]) for r in reused] == [(r["method"], r["limit"]) for r in rows]
    columns = ("makespan", "ratio", "seconds", "from_hint", "optimal")
    for first, second in zip(rows, reused):
        if first["method"].startswith("cpsat"):
            assert [first[c] for c in columns] == [second[c] for c in columns]
        elif first["method"] == "agent":
            assert first["makespan"] == second["makespan"]

    # anytime_table.py puts the two runs side by side, a mean ratio per method and limit.
    shown = subprocess.run(
        [sys.executable, "benchmarks/anytime_table.py", str(out / "anytime.csv"), str(again / "anytime.csv"), "--names", "first,second"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert shown[0] == "| method | first | second |"
    search_mean = sum(float(r["ratio"]) for r in rows if r["method"] == "search" and r["limit"] == "0.05") / 2
    cpsat_mean = sum(float(r["ratio"]) for r in rows if r["method"] == "cpsat" and r["limit"] == "0.01") / 2
    assert f"| CP-SAT 0.01 s | {cpsat_mean:.4f} | {cpsat_mean:.4f} |" in shown
    assert any(line.startswith(f"| agent, search 0.05 s | {search_mean:.4f} |") for line in shown)
    turned = subprocess.run(
        [sys.executable, "benchmarks/anytime_table.py", str(out / "anytime.csv"), "--rows"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert turned[0] == "| run | deterministic | search 0.01 s | search 0.05 s | CP-SAT 0.01 s | CP-SAT 0.05 s | static | greedy | far |"
    assert turned[2].startswith("| run | ") and f" | {cpsat_mean:.4f} | " in turned[2]
    assert [line.split(" | ")[0] for line in shown[2:]] == [
        "| agent, deterministic", "| agent, search 0.01 s", "| agent, search 0.05 s", "| CP-SAT 0.01 s", "| CP-SAT 0.05 s", "| static", "| greedy", "| far",
    ]  # fmt: skip


@pytest.fixture
def anytime_main() -> Iterator[Callable[[list[str]], int]]:
    """benchmarks/anytime.py's main, run in this process (it sets torch to one thread: restored after)."""
    threads = torch.get_num_threads()
    yield benchmark_module("anytime").main
    torch.set_num_threads(threads)


def test_anytime_refuses_cpsat_rows_of_other_batches_hints_or_limits(tmp_path: Path, anytime_main: Callable[[list[str]], int]) -> None:
    out = tmp_path / "run"
    anytime_main([*"--version float --type_tasks mix_scaling_soft --N 4 --M 5 --episodes 1 --limits 0.01 --reference 0.1".split(), "--out", str(out)])
    reused = ["--cpsat_from", str(out / "anytime.csv"), "--out", str(tmp_path / "x"), "--N", "4", "--M", "5", "--episodes", "1", "--reference", "0.1"]
    # The command line: a non-zero exit and one line on stderr, no traceback.
    result = anytime("--type_tasks", "bad_scaling", "--limits", "0.01", *reused, check=False)
    assert result.returncode != 0 and "is another batch" in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    bad_csvs = {
        "bad.csv": "not,a,csv\n1,2\n",
        "old.csv": (out / "anytime.csv").read_text().replace(",batch", ","),
        "unhinted.csv": (out / "anytime.csv").read_text().replace(",hint", ","),
    }
    for name, text in bad_csvs.items():
        (tmp_path / name).write_text(text)
    cases = [
        ("float", ["--type_tasks", "mix_scaling_soft", "--limits", "0.02", *reused], "has no cpsat row for seed 1000 at 0.02 s"),
        ("float", ["--type_tasks", "mix_scaling_soft", "--limits", "0.01", "--seed", "7", *reused], "has no cpsat_reference row for seed 7"),
        # Same batch, but direct_reconfig's static schedule differs from float's on seed 1000: CP-SAT was hinted otherwise.
        ("direct_reconfig", ["--type_tasks", "mix_scaling_soft", "--limits", "0.01", *reused], "was hinted with another static schedule"),
        *(
            (
                "float",
                ["--type_tasks", "mix_scaling_soft", "--limits", "0.01", "--cpsat_from", str(tmp_path / name), "--N", "4", "--M", "5"],
                "is not an anytime.csv",
            )
            for name in bad_csvs
        ),
    ]
    for version, flags, message in cases:
        with pytest.raises(SystemExit) as refused:
            anytime_main(["--version", version, *flags])
        assert message in str(refused.value.code) and "\n" not in str(refused.value.code)
