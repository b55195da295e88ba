"""benchmarks/anytime.py end to end on two tiny episodes with an untrained model."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import small_env
from sb3_contrib import MaskablePPO

ROOT = Path(__file__).resolve().parent.parent
RESOLUTION = 1e-3  # CP-SAT's time unit: a proven optimum replays within (tasks + 1) units of the real one


def test_anytime_writes_the_csv_and_the_plot(tmp_path: Path) -> None:
    env = small_env("float")
    model = MaskablePPO("MlpPolicy", env, seed=0, policy_kwargs=dict(net_arch=dict(pi=[32, 32], vf=[32, 32])))
    model.env_config = {"N": 4, "M": 5}
    model.save(tmp_path / "tiny.zip")
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "benchmarks/anytime.py",
            "--version",
            "float",
            "--model",
            str(tmp_path / "tiny.zip"),
            "--type_tasks",
            "mix_scaling_soft",
            "--episodes",
            "2",
            "--limits",
            "0.01,0.05",
            "--reference",
            "0.2",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert "taskset -c 0" in result.stdout and "makespan / CP-SAT(0.2 s)" in result.stdout
    with open(out / "anytime.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    methods = [(row["method"], row["limit"]) for row in rows if row["episode"] == "0"]
    assert methods == [
        ("cpsat_reference", "0.2"),
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
        reference = mine["cpsat_reference", "0.2"]
        assert float(reference["ratio"]) == pytest.approx(1.0)
        assert float(mine["search", "0.05"]["makespan"]) <= float(mine["agent", ""]["makespan"])
        assert float(mine["search", "0.01"]["makespan"]) <= float(mine["agent", ""]["makespan"])
        for row in mine.values():
            assert float(row["ratio"]) == pytest.approx(float(row["makespan"]) / float(reference["makespan"]), rel=1e-5)
            assert float(row["seconds"]) > 0
            assert row["from_hint"] in (("true", "false") if row["method"].startswith("cpsat") else ("",))
            if reference["optimal"] == "true":  # every schedule is one of CP-SAT's relaxation's
                assert float(row["makespan"]) >= float(reference["makespan"]) - 5 * RESOLUTION
        assert int(mine["search", "0.05"]["rollouts"]) > 0
    assert any(row["optimal"] == "true" for row in rows if row["method"] == "cpsat_reference")
    assert (out / "anytime.png").stat().st_size > 10_000
