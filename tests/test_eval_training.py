"""A trained agent end to end: evaluation during training, the learning curve, evaluate.py and schedule.py with --model."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import DATA, script_env, version_copy
from sb3_contrib import MaskablePPO

from migsched.evaluation import evaluate
from migsched.evaluation import main as evaluate_main
from migsched.models import load_checked_model
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import run_episode
from migsched.pretrain import IMITATION_SEED, imitation_demonstrations
from migsched.stages import Clock, SelfImitation, StageContext, StopOnSignal
from migsched.training import parse_args
from migsched.versions import VERSIONS, get_version, make_env
from migsched.workloads import WORKLOAD_NAMES, parse_task_file

STEPS = 4096  # two rollouts of 2048 transitions
STEM = f"bs3_N=4_M=6_s={STEPS}_wide_times"


def run(folder: Path, script: str, *argv: str) -> str:
    """Run a version folder's script (a copy) and return its output; it must succeed."""
    return subprocess.run([sys.executable, script, *argv], cwd=folder, capture_output=True, text=True, check=True, env=script_env()).stdout


@pytest.fixture(scope="module")
def float_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the float folder: its runs write their models there."""
    return version_copy("float", tmp_path_factory.mktemp("versions"))


@pytest.fixture(scope="module")
def trained(float_folder: Path) -> Path:
    """A float agent trained for two rollouts with an evaluation after each; the folder of its files."""
    out = run(float_folder, "train.py", "--num_steps", str(STEPS), "--N", "4", "--M", "6", "--type_tasks", "wide_times",
              "--n_envs", "2", "--vec_env", "dummy", "--eval_freq", "2048", "--eval_episodes", "4", "--seed", "1")  # fmt: skip
    assert out.count("evaluation at ") == 2
    return float_folder / "trained_models"


def test_evaluations_write_the_csv_and_keep_the_best_model(trained: Path) -> None:
    with open(trained / f"{STEM}_eval.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["timesteps", "minutes", "agent", "static", "greedy", "far"]
    assert [int(r["timesteps"]) for r in rows] == [2048, 4096]
    assert all(float(r["agent"]) >= 1.0 for r in rows)
    model, config = load_checked_model(trained / f"{STEM}_best.zip", "float")
    assert config == {"N": 4, "M": 6, "reward": "levels"}
    assert model.num_timesteps in (2048, 4096)


def test_plot_draws_the_learning_curve(trained: Path, tmp_path: Path) -> None:
    png = tmp_path / "curve.png"
    run(trained.parent, "plot.py", str(trained / f"{STEM}_eval.csv"), "--out", str(png))
    assert png.stat().st_size > 10_000


def test_evaluate_with_a_model_reports_the_agent_and_its_wins(trained: Path, tmp_path: Path) -> None:
    out_csv = tmp_path / "e.csv"
    out = run(trained.parent, "evaluate.py", "--model", str(trained / f"{STEM}.zip"), "--episodes", "3", "--type_tasks", "wide_times",
              "--policies", "agent,random,static", "--samples", "2", "--csv", str(out_csv))  # fmt: skip
    assert "N=4 M=6" in out and "agent wins" in out
    with open(out_csv, newline="") as handle:
        policies = [row["policy"] for row in csv.DictReader(handle)]
    assert policies.count("agent") == 3 and policies.count("static") == 3


def test_a_model_of_another_version_is_refused(trained: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        evaluate_main("one_hot", ["--model", str(trained / f"{STEM}.zip"), "--episodes", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "is a model of the float version, not one_hot: use it with float/'s commands" in err
    assert err.startswith("evaluate.py: error: ") and err.count("\n") == 1


def test_schedule_with_the_model_prints_every_task_once(trained: Path) -> None:
    out = run(trained.parent, "schedule.py", "--model", str(trained / f"{STEM}.zip"), "--tasks", str(DATA / "rodinia_a30.txt"))
    for name in parse_task_file(str(DATA / "rodinia_a30.txt"))[0]:
        assert sum(f"run {name} on " in line for line in out.splitlines()) == 1
    assert re.search(r"^batch 2 \(4 tasks, scheduled in \d+\.\d{3} s\):$", out, re.MULTILINE)


def test_the_agent_always_finishes_and_is_reproducible(trained: Path) -> None:
    from migsched import make_env

    model, config = load_checked_model(trained / f"{STEM}.zip", "float")
    env = make_env("float", config, "wide_times")
    first = [run_episode(env, AgentPolicy(model), seed=s).makespan for s in range(3)]
    again = [run_episode(env, AgentPolicy(model), seed=s).makespan for s in range(3)]
    assert first == again


def test_default_evaluation_frequency_is_one_percent_of_long_runs() -> None:
    assert parse_args("float", ["--num_steps", "200000"]).eval_freq == 2000
    assert parse_args("float", ["--num_steps", "99999"]).eval_freq == 0
    assert parse_args("float", ["--num_steps", "5000", "--eval_freq", "1000"]).eval_freq == 1000


def test_preset_fast_sets_its_flags_unless_given() -> None:
    args = parse_args("float", ["--preset", "fast"])
    assert (args.n_envs, args.vec_env, args.batch_size, args.learning_rate, args.lr_decay, args.ent_coef) == (8, "dummy", 512, 1e-3, True, [0.01, 0.001, 0.0])
    args = parse_args("float", ["--preset", "fast", "--batch_size", "128", "--n_envs", "4", "--learning_rate", "0.0002", "--ent_coef", "0.02"])
    assert (args.n_envs, args.vec_env, args.batch_size, args.learning_rate, args.lr_decay, args.ent_coef) == (4, "dummy", 128, 2e-4, False, [0.02])
    # A version with an entropy schedule of its own keeps it.
    assert parse_args("direct_reconfig", ["--preset", "fast"]).ent_coef == [0.01, 0.00075, 0.0005, 0.0]
    args = parse_args("float", [])
    assert (args.n_envs, args.vec_env, args.batch_size, args.n_epochs, args.learning_rate, args.net_arch) == (1, "subproc", 64, 10, 3e-4, [256, 256])
    assert args.pretrain is None


def test_preset_fast_online_clones_static_learns_slowly_and_picks_the_reward_per_workload() -> None:
    args = parse_args("online", ["--preset", "fast"])
    assert (args.n_envs, args.batch_size, args.learning_rate, args.lr_decay, args.pretrain) == (8, 512, 1e-4, False, "static")
    args = parse_args("online", ["--preset", "fast", "--pretrain", "greedy", "--learning_rate", "0.001"])
    assert (args.learning_rate, args.pretrain) == (1e-3, "greedy")
    assert parse_args("online", ["--preset", "fast", "--type_tasks", "bad_scaling"]).reward == "real"  # the reward its clone's values were measured with


def test_preset_fast_replaces_ppo_by_self_imitation_on_every_workload() -> None:
    settings = ("stages", "learning_rate", "imitation_rounds", "imitation_learning_rate", "pretrain")
    for version in VERSIONS:
        for workload in WORKLOAD_NAMES:
            args = parse_args(version, ["--preset", "fast", "--type_tasks", workload])
            assert args.num_steps == 200_000_000  # PPO's steps stay the version's, for --stages clone,ppo
            if version == "online":  # the clone of static (at PPO's learning rate), then 10 rounds on wide_times, as many as the minutes hold elsewhere
                rounds = 10 if workload == "wide_times" else 1000
                assert tuple(getattr(args, name) for name in settings) == ("clone,self_imitation", 1e-4, rounds, 3e-4, "static")
                assert (args.pretrain_episodes, args.pretrain_epochs) == (1000, 30)
            else:  # the clone of 20,000 greedy episodes, then as many rounds as the minutes hold
                assert (args.pretrain_episodes, args.pretrain_epochs) == (20_000, 10)
                assert tuple(getattr(args, name) for name in settings) == ("clone,self_imitation", 1e-3, 1000, 3e-4, "greedy")
    # every recipe has its own minutes, the budget it was measured at; --minutes sets another, rounds given still count
    assert parse_args(version, ["--preset", "fast"]).minutes == 30 and parse_args(version, ["--preset", "fast", "--minutes", "5"]).minutes == 5
    assert parse_args("direct_reconfig", ["--preset", "fast", "--type_tasks", "wide_times"]).imitation_rounds == 1000
    assert parse_args("direct_reconfig", ["--preset", "fast", "--type_tasks", "wide_times", "--minutes", "30", "--imitation_rounds", "5"]).imitation_rounds == 5
    args = parse_args("online", ["--preset", "fast", "--type_tasks", "wide_times", "--num_steps", "4096", "--stages", "clone,ppo"])
    assert (args.num_steps, args.stages) == (4096, "clone,ppo")
    assert parse_args("online", ["--preset", "fast", "--type_tasks", "wide_times", "--pretrain", "none"]).stages == "self_imitation"
    assert parse_args("online", ["--preset", "fast", "--type_tasks", "wide_times", "--imitation_rounds", "0"]).stages == "clone"


def test_no_preset_hosts_a_stage_inside_a_ppo_run_that_does_nothing() -> None:
    for version in VERSIONS:
        for preset, changes in get_version(version).hyperparams.get("presets", {}).items():
            for workload, more in [("all", changes), *changes.get("by_workload", {}).items()]:
                assert "num_steps" not in more, (version, preset, workload)  # a preset's PPO runs the version's steps, or the recipe has none
                rate = str(more.get("learning_rate", ""))
                assert not rate.startswith("lin_") or workload == "all", (version, preset, workload)
            for workload in WORKLOAD_NAMES:
                args = parse_args(version, ["--preset", preset, "--type_tasks", workload])
                assert "ppo" not in args.stages or args.num_steps > 100 * args.rollout_steps, (version, preset, workload)


def test_preset_fast_float_and_direct_reconfig_clone_greedy_unless_told_none() -> None:
    assert parse_args("direct_reconfig", ["--preset", "fast"]).pretrain == "greedy"
    assert parse_args("direct_reconfig", ["--preset", "fast", "--pretrain", "none"]).pretrain is None
    assert parse_args("direct_reconfig", ["--preset", "fast", "--pretrain", "static"]).pretrain == "static"
    assert parse_args("float", ["--preset", "fast"]).pretrain == "greedy"
    assert parse_args("float", ["--preset", "fast", "--pretrain", "none"]).pretrain is None
    assert parse_args("one_hot", ["--preset", "fast"]).pretrain == "greedy"


@pytest.mark.parametrize(
    ("version", "with_real"),
    [
        ("direct_reconfig", {"mix_scaling_extreme", "mix_scaling_soft"}),
        ("float", set()),
        ("online", {"bad_scaling"}),
    ],
)
def test_preset_fast_trains_the_workloads_where_real_won_with_the_real_reward(version: str, with_real: set[str]) -> None:
    rewards = {workload: parse_args(version, ["--preset", "fast", "--type_tasks", workload]).reward for workload in WORKLOAD_NAMES}
    assert rewards == {workload: "real" if workload in with_real else "levels" for workload in WORKLOAD_NAMES}
    for workload in with_real:
        assert parse_args(version, ["--preset", "fast", "--type_tasks", workload, "--reward", "levels"]).reward == "levels"
        assert parse_args(version, ["--type_tasks", workload]).reward == "levels"


@pytest.mark.parametrize(
    ("version", "larger"),
    [
        ("direct_reconfig", dict.fromkeys(WORKLOAD_NAMES, 20000)),
        ("float", dict.fromkeys(WORKLOAD_NAMES, 20000)),
        ("entropy", dict.fromkeys(WORKLOAD_NAMES, 20000)),
        ("one_hot", dict.fromkeys(WORKLOAD_NAMES, 20000)),
        ("online", {}),
    ],
)
def test_preset_fast_clones_more_teacher_episodes_fewer_times_where_that_was_measured(version: str, larger: dict[str, int]) -> None:
    clones = {}
    for workload in WORKLOAD_NAMES:
        args = parse_args(version, ["--preset", "fast", "--type_tasks", workload])
        clones[workload] = (args.pretrain_episodes, args.pretrain_epochs)
    assert clones == {workload: (larger[workload], 10) if workload in larger else (1000, 30) for workload in WORKLOAD_NAMES}
    for workload in larger:
        assert parse_args(version, ["--preset", "fast", "--type_tasks", workload, "--pretrain_episodes", "50"]).pretrain_episodes == 50


def test_preset_fast_trains_saves_and_prints_its_hyperparameters(tmp_path: Path) -> None:
    folder = version_copy("direct_reconfig", tmp_path)
    out = run(
        folder, "train.py", "--preset", "fast", "--pretrain_episodes", "20", "--num_steps", "2048", "--N", "3", "--M", "7", "--type_tasks", "mix_scaling_soft", "--seed", "3",
        "--stages", "clone,ppo",
    )  # fmt: skip
    assert "pretrained on greedy: " in out
    assert "hyperparameters: n_envs=8 (dummy), n_steps=256, batch_size=512, n_epochs=10, learning_rate=lin_0.001" in out
    assert "training direct_reconfig: N=3 M=7 mix_scaling_soft, reward real, 2048 timesteps from 0 (new model)" in out
    model, config = load_checked_model(folder / "trained_models" / "bs3_N=3_M=7_s=2048_30min_mix_scaling_soft.zip", "direct_reconfig")
    assert config == {"N": 3, "M": 7, "reward": "real"} and model.num_timesteps == 2048  # real: the preset's reward for this workload


def test_pretrain_clones_the_teacher_before_ppo_and_saves(tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    out = run(
        folder,
        "train.py",
        "--pretrain",
        "greedy",
        "--pretrain_episodes",
        "30",
        "--num_steps",
        "2048",
        "--N",
        "3",
        "--M",
        "5",
        "--type_tasks",
        "wide_times",
        "--seed",
        "1",
    )
    line = next(line for line in out.splitlines() if line.startswith("pretrained on greedy: "))
    assert "of 30 episodes" in line and "30 epochs" in line
    assert out.index("pretrained on greedy") < out.index("training float:")
    model, _ = load_checked_model(folder / "trained_models" / "bs3_N=3_M=5_s=2048_wide_times.zip", "float")
    assert model.num_timesteps == 2048


def test_self_imitation_clones_the_agents_best_rollouts_after_ppo(tmp_path: Path) -> None:
    argv = ["--num_steps", "2048", "--N", "3", "--M", "5", "--type_tasks", "wide_times", "--seed", "4", "--imitation_learning_rate", "0.001"]
    args = parse_args("float", [*argv, "--imitation_rounds", "1", "--imitation_episodes", "6", "--imitation_samples", "8", "--imitation_epochs", "20"])
    env_config = {"N": 3, "M": 5, "reward": "levels"}
    model = MaskablePPO("MlpPolicy", make_env("float", env_config, "wide_times"), seed=0)
    before = copy.deepcopy(model)
    # round 1's episodes and rollout seeds, played by the model as PPO left it
    data = imitation_demonstrations(before, "float", env_config, "wide_times", 6, 8, first_seed=IMITATION_SEED, seed=4)
    obs, masks = torch.as_tensor(data.observations), data.masks

    def agreement(agent: MaskablePPO) -> float:
        with torch.no_grad():
            chosen = agent.policy.get_distribution(obs, action_masks=masks).get_actions(deterministic=True).numpy()
        return float((chosen == data.actions).mean())

    stage = SelfImitation(args.imitation_rounds, args.imitation_episodes, args.imitation_samples, args.imitation_epochs, args.imitation_learning_rate)
    ctx = StageContext(model, None, get_version("float"), env_config, "wide_times", args.seed, Clock(StopOnSignal()), save=lambda stage, done: tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        report = stage.run(ctx)
    assert (report.done, report.ended) == (1, "units")
    printed = re.search(
        r"self-imitation round 1 of 1: the best of 9 rollouts on 6 episodes \(mean makespan / lower bound ([0-9.]+); the deterministic ones ([0-9.]+)\), "
        r"(\d+) steps, the policy now agrees on ([0-9.]+)%",
        out.getvalue(),
    )
    assert printed is not None and float(printed[1]) == pytest.approx(data.teacher_ratio, abs=1e-4) and int(printed[3]) == len(data)
    assert float(printed[1]) <= float(printed[2]) == pytest.approx(data.agent_ratio, abs=1e-4)  # the best is never worse than the deterministic
    assert agreement(model) == pytest.approx(float(printed[4]) / 100, abs=1e-3)
    assert agreement(model) > agreement(before)
    assert model.policy.optimizer.param_groups[0]["lr"] == 0.001


def test_train_py_runs_self_imitation_after_ppo_and_records_it(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    out = run(
        folder, "train.py", "--num_steps", "2048", "--N", "3", "--M", "5", "--queue_len", "6", "--type_tasks", "wide_times", "--seed", "1",
        "--imitation_rounds", "2", "--imitation_episodes", "5", "--imitation_samples", "4",
    )  # fmt: skip
    assert out.index("training online:") < out.index("self-imitation round 1 of 2") < out.index("self-imitation round 2 of 2") < out.index("model saved")
    record = json.loads((folder / "trained_models" / "bs3_N=3_M=5_s=2048+si_r2_wide_times.json").read_text())
    assert record["stages"] == "ppo,self_imitation" and [(r["stage"], r["done"], r["ended"]) for r in record["stage_reports"]] == [
        ("ppo", 2048, "units"), ("self_imitation", 2, "units")
    ]  # fmt: skip
    assert {k: record["hyperparameters"][k] for k in ("imitation_rounds", "imitation_episodes", "imitation_samples", "imitation_epochs", "imitation_learning_rate")} == {
        "imitation_rounds": 2, "imitation_episodes": 5, "imitation_samples": 4, "imitation_epochs": 5, "imitation_learning_rate": 0.0003,
    }  # fmt: skip


def test_ent_coef_sets_a_constant_or_a_phased_entropy_coefficient(tmp_path: Path) -> None:
    assert parse_args("float", []).ent_coef == [0.01]
    assert parse_args("online", []).ent_coef == [0.01, 0.00075, 0.0005, 0.0]
    assert parse_args("online", ["--ent_coef", "0.02"]).ent_coef == [0.02]
    folder = version_copy("float", tmp_path)
    out = run(
        folder,
        "train.py",
        "--ent_coef",
        "0.05,0",
        "--num_steps",
        "2048",
        "--N",
        "3",
        "--M",
        "5",
        "--type_tasks",
        "mix_scaling_extreme",
        "--n_envs",
        "2",
        "--vec_env",
        "dummy",
        "--seed",
        "2",
    )
    assert "entropy coefficient 0.05 from timestep 0 of this run" in out
    assert "entropy coefficient 0.0 from timestep 1024 of this run" in out
    assert load_checked_model(folder / "trained_models" / "bs3_N=3_M=5_s=2048_mix_scaling_extreme.zip", "float")[0].ent_coef == 0.0


def test_evaluate_searches_with_the_agent_and_reports_its_seconds(trained: Path, tmp_path: Path) -> None:
    model, config = load_checked_model(trained / f"{STEM}.zip", "float")
    plain, _ = evaluate("float", config, "wide_times", 3, 7, ["agent"], model=model)
    searched, _ = evaluate("float", config, "wide_times", 3, 7, ["agent"], model=model, samples=16)
    timed, _ = evaluate("float", config, "wide_times", 3, 7, ["agent"], model=model, time_limit=0.3)
    for better in (searched, timed):
        assert all(b.makespan <= p.makespan for b, p in zip(better, plain))
    assert [row.rollouts for row in searched] == [16, 16, 16]
    assert all(row.rollouts is not None and row.seconds >= 0.15 for row in timed), timed  # it samples toward the limit (test_search checks the 10%)
    out_csv = tmp_path / "e.csv"
    out = run(trained.parent, "evaluate.py", "--model", str(trained / f"{STEM}.zip"), "--episodes", "2", "--type_tasks", "wide_times",
              "--policies", "agent,cpsat", "--time_limit", "0.2", "--cpsat_time", "0.001", "--csv", str(out_csv))  # fmt: skip
    assert "s/batch" in out and re.search(r"agent search: \d+ stochastic rollouts per batch on average, 0\.\d+ s per batch", out)
    with open(out_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["seconds"]) > 0 for r in rows] == [True] * 4
    assert {r["policy"]: r["from_hint"] for r in rows} == {"agent": "", "cpsat": "true"}


def test_schedule_searches_each_batch(trained: Path) -> None:
    args = ["--model", str(trained / f"{STEM}.zip"), "--tasks", str(DATA / "rodinia_a30.txt")]
    makespan = {}
    for name, extra in (("plain", []), ("search", ["--samples", "16"])):
        out = run(trained.parent, "schedule.py", *args, *extra)
        makespan[name] = float(re.search(r"^makespan ([\d.]+) s", out, re.MULTILINE).group(1))
    assert makespan["search"] <= makespan["plain"]
    assert "agent with search (16 samples per batch)" in out
