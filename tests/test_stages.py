"""A run as stages: recipes, the names and records of what trained a model, checkpoints between
self-imitation rounds, the --minutes budget and SIGTERM in self-imitation.

The runs are real `python train.py ...` subprocesses of copies of a version folder, with a small
N and M and budgets of a few episodes and rounds.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import script_env, version_copy

from migsched.models import load_checked_model
from migsched.stages import PPO, Clock, LinearToZero, StopOnSignal, entropy_coefficient, parse_recipe, run_label
from migsched.training import parse_args

N, M, WORKLOAD = 3, 5, "wide_times"
#: Only against a hang: these runs take seconds on a quiet machine and minutes on a loaded one.
HANG_GUARD_S = 1200
SMALL = ["--N", str(N), "--M", str(M), "--queue_len", "6", "--type_tasks", WORKLOAD, "--seed", "1", "--eval_freq", "0"]
#: online wide_times' preset recipe (the clone of static, then self-imitation) at a tiny size.
TINY_RECIPE = ["--preset", "fast", "--pretrain_episodes", "10", "--imitation_episodes", "3", "--imitation_samples", "2", *SMALL]


def train(folder: Path, *argv: str) -> str:
    """Run the folder's train.py to its end; its output (it must succeed)."""
    return subprocess.run([sys.executable, "train.py", *argv], cwd=folder, capture_output=True, text=True, check=True, env=script_env()).stdout


def saved_record(out: str) -> tuple[Path, dict]:
    """The final model the run's output names, and its JSON record."""
    path = Path(re.search(r"^model saved: (\S+\.zip)$", out, re.MULTILINE).group(1))
    return path, json.loads(path.with_suffix(".json").read_text())


def test_a_recipe_names_each_stage_once_with_an_optional_share() -> None:
    assert parse_recipe("clone,ppo:0.5,self_imitation") == [("clone", None), ("ppo", 0.5), ("self_imitation", None)]
    for bad, problem in [("ppo,clone", "only be the first"), ("ppo,ppo", "named twice"), ("dagger", "unknown stage"), ("ppo:0", "share"), ("ppo:x", "share")]:
        with pytest.raises(ValueError, match=problem):
            parse_recipe(bad)


def test_a_name_says_what_trained_the_model() -> None:
    assert run_label(["ppo"], [2048], None) == "s=2048"  # the original's name
    assert run_label(["clone", "ppo"], [1000, 2048], None) == "s=2048"  # the clone warms PPO up, as --pretrain always did
    assert run_label(["clone", "self_imitation"], [20000, 28], None) == "clone+si_r28"
    assert run_label(["ppo", "self_imitation"], [2048, 2], None) == "s=2048+si_r2"
    assert run_label(["clone", "self_imitation"], [None, None], 30) == "clone+si_30min"
    assert run_label(["ppo"], [None], 0.5) == "ppo_0.5min"


def test_a_stage_gets_its_share_of_the_minutes_left_and_its_schedules_follow_steps_or_minutes() -> None:
    clock = Clock(StopOnSignal(), minutes=1.0, began=time.perf_counter() - 20)  # 40 s left
    half = PPO(2048, [0.01], 1e-3, True, 2048, share=0.5).deadline(clock)
    rest = PPO(2048, [0.01], 1e-3, True, 2048).deadline(clock)
    assert half == pytest.approx(time.perf_counter() + 20, abs=1) and rest == pytest.approx(clock.deadline, abs=1e-6)
    assert PPO(2048, [0.01], 1e-3, True, 2048).deadline(Clock(StopOnSignal())) is None
    assert entropy_coefficient([0.01, 0.001, 0.0], 100, 3000, time_spent=0.7) == 0.0  # the minutes are further along than the steps
    assert entropy_coefficient([0.01, 0.001, 0.0], 1500, 3000, time_spent=0.1) == 0.001
    assert LinearToZero(1.0, 0, 1000, lambda: 0.75)(1.0) == pytest.approx(0.25)
    assert LinearToZero(1.0, 0, 1000)(0.5) == pytest.approx(0.5)


def test_the_stages_flag_is_checked_and_the_default_recipe_follows_the_original_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_args("float", []).stages == "ppo"
    assert parse_args("float", ["--pretrain", "greedy", "--imitation_rounds", "2"]).stages == "clone,ppo,self_imitation"
    for argv, problem in [
        (["--stages", "clone,self_imitation", "--imitation_rounds", "3"], "stage clone has nothing to do (give --pretrain <teacher>)"),
        (["--stages", "self_imitation"], "stage self_imitation has nothing to do (give --imitation_rounds)"),
        (["--stages", "ppo,clone"], "clone warms up a new model"),
        (["--minutes", "0"], "--minutes must be positive and finite"),
        (["--save_rounds", "-1"], "--save_rounds must be 0 (never) or a positive integer"),
        (["--stages", "clone,self_imitation", "--pretrain", "greedy", "--imitation_rounds", "3", "--num_steps", "4096"], "--num_steps budgets PPO"),
        (["--preset", "fast", "--num_steps", "4096"], "which this run's stages (clone,self_imitation) leave out"),
    ]:
        with pytest.raises(SystemExit):
            parse_args("float", argv)
        assert problem in capsys.readouterr().err


def test_clone_then_self_imitation_saves_a_model_named_and_recorded_by_its_stages_with_checkpoints_between_rounds(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    out = train(folder, *TINY_RECIPE, "--imitation_rounds", "3", "--save_rounds", "2")
    assert "training online" not in out and "hyperparameters:" not in out  # no PPO stage at all
    assert out.index("pretrained on static: ") < out.index("self-imitation round 1 of 3") < out.index("self-imitation round 3 of 3")
    checkpoints = re.findall(r"^checkpoint saved: (\S+\.zip)$", out, re.MULTILINE)
    assert [Path(c).name for c in checkpoints] == ["bs3_N=3_M=5_clone+si_r2_wide_times.zip"]  # after round 2, not after the last
    assert out.index("self-imitation round 2 of 3") < out.index("checkpoint saved") < out.index("self-imitation round 3 of 3")
    load_checked_model(checkpoints[0], "online")
    path, record = saved_record(out)
    assert path.name == "bs3_N=3_M=5_clone+si_r3_30min_wide_times.zip" and record["status"] == "finished"  # the rounds given, the preset's minutes
    assert record["stages"] == "clone,self_imitation" and record["fps"] is None and record["timesteps"] == 0
    reports = record["stage_reports"]
    assert [(r["stage"], r["unit"], r["done"], r["ended"]) for r in reports] == [("clone", "episodes", 10, "units"), ("self_imitation", "rounds", 3, "units")]
    assert reports[0]["settings"]["teacher"] == "static" and reports[1]["settings"]["rounds"] == 3
    assert 0 < reports[0]["figure"]["agreement"] <= 1 and reports[1]["figure"]["best_ratio"] <= reports[1]["figure"]["deterministic_ratio"]
    assert all(r["seconds"] > 0 for r in reports)
    load_checked_model(path, "online")


def test_minutes_bound_a_run_whose_units_would_last_far_longer(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    began = time.monotonic()
    out = train(folder, *TINY_RECIPE, "--imitation_episodes", "20", "--imitation_rounds", "1000", "--minutes", "0.2")
    assert time.monotonic() - began < 120
    path, record = saved_record(out)
    assert path.name == "bs3_N=3_M=5_clone+si_r1000_0.2min_wide_times.zip" and record["status"] == "finished"  # both budgets the command gave
    assert record["minutes"] == 0.2 and record["wall_clock_s"] < 60
    si = record["stage_reports"][-1]
    assert (si["stage"], si["ended"], si["settings"]["rounds"]) == ("self_imitation", "minutes", 1000) and si["done"] < 1000
    assert re.search(rf"self-imitation ran out of time (in|after) round \d+.*: the model is that of round {si['done']}\n", out)
    load_checked_model(path, "online")


def test_ppo_ends_at_a_rollout_when_its_minutes_are_spent(tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    out = train(folder, "--num_steps", "100000000", "--minutes", "0.1", "--batch_size", "1024", *SMALL[:4], *SMALL[6:])
    path, record = saved_record(out)
    assert path.name == "bs3_N=3_M=5_s=100000000_0.1min_wide_times.zip"
    (ppo,) = record["stage_reports"]
    assert ppo["ended"] == "minutes" and 0 < ppo["done"] < 100_000_000 and record["fps"] > 0 and record["wall_clock_s"] < 60


def test_sigterm_in_self_imitation_saves_the_model_of_the_rounds_done(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    argv = [*TINY_RECIPE, "--imitation_rounds", "1000", "--imitation_episodes", "30"]
    proc = subprocess.Popen([sys.executable, "train.py", *argv], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env())
    guard = time.monotonic() + HANG_GUARD_S
    for line in proc.stdout:
        if line.startswith("self-imitation round 1 of 1000"):
            break
        assert time.monotonic() < guard, "no round ended"
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 143, err
    assert re.search(r"self-imitation stopped in round \d+, while it", rest) and "stopped by SIGTERM after 0 timesteps of this run" in rest
    path, record = saved_record(rest)
    done = record["stage_reports"][-1]["done"]
    assert path.name == f"bs3_N=3_M=5_clone+si_r{done}_wide_times.zip" and done >= 1 and record["status"] == "stopped by SIGTERM"
    load_checked_model(path, "online")


def test_the_plain_command_is_the_original_ppo_run_with_its_lines_and_name(tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    out = train(folder, "--num_steps", "2048", "--N", "3", "--M", "5", "--type_tasks", WORKLOAD, "--seed", "0")
    assert "hyperparameters: n_envs=1 (in process), n_steps=2048, batch_size=64, n_epochs=10, learning_rate=0.0003, gamma=1.0," in out
    assert "training float: N=3 M=5 wide_times, reward levels, 2048 timesteps from 0 (new model), 1 env(s) x 2048 steps per rollout, cpu\n" in out
    assert "pretrained" not in out and "self-imitation" not in out
    path, record = saved_record(out)
    assert path.name == "bs3_N=3_M=5_s=2048_wide_times.zip" and record["stages"] == "ppo" and record["minutes"] is None
    assert [(r["stage"], r["done"], r["ended"]) for r in record["stage_reports"]] == [("ppo", 2048, "units")] and record["fps"] > 0
