"""Each version's train.py: the model it writes, restoring, SIGINT/SIGTERM, bad flags, the entropy schedule.

The trainings are real `python train.py ...` subprocesses of copies of the version folders in a
temporary folder (so their models land there), with a small N and M and one 2048-step rollout,
run a few at a time with one torch thread each; each is waited for until it exits.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import ROOT, script_env, version_copy
from sb3_contrib import MaskablePPO

from migsched import VERSIONS, versions
from migsched.models import ModelError, load_checked_model, model_path, save_model
from migsched.stages import EntropySchedule, LinearToZero, entropy_coefficient
from migsched.training import main, parse_args
from migsched.versions import get_version
from migsched.workers import FreeCoreThreads, runnable_elsewhere, threads_for_free_cores

N, M, WORKLOAD = 4, 5, "mix_scaling_soft"
PHASED = ("entropy", "direct_reconfig", "online")  # the versions whose entropy coefficient decays
ROLLOUT = STEPS = 2048
SAVE_FREQ = STEPS // 2
#: Trainings run at once: as many as there are cores, so none waits on a busy machine's scheduler more than it must.
AT_ONCE = max(1, len(os.sched_getaffinity(0)))
#: Only against a hang: a run here takes seconds on a quiet machine and a few minutes on a loaded one.
HANG_GUARD_S = 1800
torch.set_num_threads(1)  # the models loaded here are small; more threads only contend with the trainings


def flags(version: str, steps: int = STEPS, *extra: str) -> list[str]:
    """Small, fast training flags; one rollout of 2048 steps, 2 minibatches of 1024, no evaluations
    (test_eval_training covers those)."""
    online = ["--queue_len", "9"] if version == "online" else []
    return [
        "--num_steps",
        str(steps),
        "--N",
        str(N),
        "--M",
        str(M),
        "--type_tasks",
        WORKLOAD,
        "--batch_size",
        "1024",
        "--seed",
        "0",
        "--eval_freq",
        "0",
        *online,
        *extra,
    ]


class Training:
    """A `python train.py ...` subprocess of a version folder (a copy) whose output goes to a
    file, optionally sent a signal once a given text shows in that output."""

    def __init__(self, folder: Path, argv: list[str], log: Path, cwd: Path | None = None, signal_on: tuple[str, int] | None = None) -> None:
        self.folder, self.argv, self.log, self.cwd, self.signal_on = folder, argv, log, cwd, signal_on
        self.proc: subprocess.Popen | None = None

    def start(self) -> Training:
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(self.folder / "train.py"), *self.argv], cwd=self.cwd or self.folder, stdout=out, stderr=subprocess.STDOUT, env=script_env()
            )
        return self

    @property
    def output(self) -> str:
        return self.log.read_text()

    def poll(self) -> bool:
        """Sends the signal if its text has shown; True while the process runs."""
        if self.signal_on and self.signal_on[0] in self.output:
            self.proc.send_signal(self.signal_on[1])
            self.signal_on = None
        return self.proc.poll() is None

    def saved(self) -> list[Path]:
        """The models it reported saving, checkpoints first."""
        return [Path(p) for p in re.findall(r"(?:checkpoint|model) saved: (.+\.zip)$", self.output, re.MULTILINE)]


def run_all(first: list[Training], then: Callable[[Training], Training | None] = lambda t: None) -> None:
    """Run `first` and whatever `then(finished training)` adds, AT_ONCE at a time, until all have exited."""
    waiting, running = list(first), []
    guard = time.monotonic() + HANG_GUARD_S
    while waiting or running:
        while waiting and len(running) < AT_ONCE:
            running.append(waiting.pop(0).start())
        for training in [t for t in running if not t.poll()]:
            running.remove(training)
            follow = then(training)
            if follow is not None:
                waiting.append(follow)
        assert time.monotonic() < guard, "a training hung"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """Per version: a short training; then, run from the copies' parent folder, a restore of its
    model stopped by SIGINT as soon as it starts; and a fresh run with two subprocess
    environments stopped by SIGTERM after its first rollout."""
    logs = tmp_path_factory.mktemp("train_logs")
    root = tmp_path_factory.mktemp("versions")
    done: dict[str, dict[str, Training]] = {}
    for version in VERSIONS:
        folder = version_copy(version, root)
        done[version] = {
            "short": Training(folder, flags(version, STEPS, "--save_freq", str(SAVE_FREQ)), logs / f"{version}-short.log"),
            "sigterm": Training(folder, flags(version, 10**9, "--n_envs", "2"), logs / f"{version}-sigterm.log", signal_on=("total_timesteps", signal.SIGTERM)),
        }

    def restore(training: Training) -> Training | None:
        version = training.folder.name
        if training is not done[version]["short"]:
            return None
        assert training.proc.returncode == 0, training.output
        source = f"{version}/trained_models/{model_path(training.folder, N, M, STEPS, WORKLOAD).name}"
        done[version]["sigint"] = Training(
            training.folder,
            flags(version, 10**9, "--restore", source),
            logs / f"{version}-sigint.log",
            cwd=root,
            signal_on=(f"training {version}:", signal.SIGINT),
        )
        return done[version]["sigint"]

    trainings = [t for per_version in done.values() for t in per_version.values()]
    try:
        run_all(trainings, restore)
        yield done
    finally:
        for per_version in done.values():
            for training in per_version.values():
                if training.proc is not None and training.proc.poll() is None:
                    training.proc.kill()
                    training.proc.wait()


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return request.param


def load(path: Path) -> MaskablePPO:
    return MaskablePPO.load(path, device="cpu")


def reached(training: Training) -> int:
    return int(re.search(r"after (\d+) timesteps of this run", training.output).group(1))


def record(model: Path) -> dict:
    return json.loads(model.with_suffix(".json").read_text())


def test_short_training_writes_a_loadable_model_with_checkpoints_beside_its_train_py(version: str, runs) -> None:
    short = runs[version]["short"]
    folder = short.folder / "trained_models"
    checkpoint = model_path(short.folder, N, M, SAVE_FREQ, WORKLOAD)
    assert short.saved() == [checkpoint, model_path(short.folder, N, M, STEPS, WORKLOAD)]
    assert {p.parent for p in short.saved()} == {folder}
    model = load(short.saved()[-1])
    assert model.num_timesteps == ROLLOUT
    assert model.env_config["N"] == N and model.env_config["M"] == M
    assert load(checkpoint).num_timesteps == SAVE_FREQ
    assert "ep_rew_mean" in short.output and "makespan_ratio" in short.output


def test_every_model_has_its_run_record_beside_it(version: str, runs) -> None:
    short = runs[version]["short"]
    checkpoint, final = short.saved()
    first, last = record(checkpoint), record(final)
    assert (first["status"], first["timesteps"], first["model"]) == ("checkpoint", SAVE_FREQ, str(checkpoint))
    assert (last["status"], last["timesteps"], last["steps_this_run"], last["model"]) == ("finished", STEPS, STEPS, str(final))
    for data in (first, last):
        assert data["version"] == version and data["seed"] == 0 and data["env_config"]["N"] == N
        assert data["command"]["argv"] == ["train.py", *short.argv] and data["command"]["script"] == str(short.folder / "train.py")
        assert data["hyperparameters"]["batch_size"] == 1024 and data["hyperparameters"]["gamma"] == 1.0
        assert data["libraries"]["stable-baselines3"] and data["libraries"]["torch"]
        assert data["fps"] > 0 and data["wall_clock_s"] > 0
    assert last["rollout_makespan_ratio"] >= 1.0 and last["best_evaluation"] is None


def test_restore_continues_the_count_and_keeps_its_source(version: str, runs) -> None:
    (saved,) = runs[version]["sigint"].saved()
    assert load(saved).num_timesteps == ROLLOUT + reached(runs[version]["sigint"])
    assert load(model_path(runs[version]["short"].folder, N, M, STEPS, WORKLOAD)).num_timesteps == ROLLOUT


@pytest.mark.parametrize(("name", "status"), [("sigint", 130), ("sigterm", 143)])
def test_a_signal_saves_the_timesteps_reached(version: str, runs, name: str, status: int) -> None:
    training = runs[version][name]
    assert training.proc.returncode == status, training.output
    (saved,) = training.saved()
    assert re.fullmatch(rf"bs3_N={N}_M={M}_s={reached(training)}_{WORKLOAD}(-\d+)?\.zip", saved.name)
    assert saved.parent == training.folder / "trained_models"
    assert record(saved)["status"] == f"stopped by {name.upper()}"
    # The run's own record, under the name it planned, says where its model went.
    planned_name = model_path(training.folder, N, M, 10**9, WORKLOAD).stem
    (planned,) = [r for p in saved.parent.glob(f"{planned_name}*.json") if (r := json.loads(p.read_text()))["command"]["argv"][1:] == training.argv]
    assert (planned["status"], planned["model"]) == (f"stopped by {name.upper()}", str(saved))
    if name == "sigterm":
        assert load(saved).num_timesteps == reached(training) >= ROLLOUT


def trained_models(version: str) -> set[str]:
    folder = ROOT / version / "trained_models"
    return set(os.listdir(folder)) if folder.exists() else set()


def fails(version: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of `train.py argv`, checking the exit status 2 and that nothing was written."""
    before = trained_models(version)
    with pytest.raises(SystemExit) as exited:
        main(version, argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: ") and err.count("\n") == 1, err
    assert trained_models(version) == before
    return err


INVALID = [
    (["--num_steps", "-5"], "--num_steps must be a positive integer"),
    (["--num_steps", "many"], "invalid int value"),
    (["--num_steps", "10"], "--num_steps 10 is less than one rollout: give at least 2048"),
    (["--num_steps", "4000", "--n_envs", "3"], None),
    (["--num_steps", "1000", "--rollout_steps", "1024"], "--num_steps 1000 is less than one rollout: give at least 1024"),
    (["--rollout_steps", "0"], "--rollout_steps must be a positive integer"),
    (["--rollout_steps", "256", "--batch_size", "512"], "--batch_size must be in 2..256"),
    (["--N", "0"], "--N must be a positive integer"),
    (["--N", "100000"], "--N must be a positive integer of at most 256"),
    (["--M", "-1"], "--M must be a positive integer"),
    (["--M", "10000000"], "--M must be a positive integer of at most 1000"),
    (["--n_envs", "0"], "--n_envs must be a positive integer"),
    (["--n_envs", "100000"], "--n_envs must be a positive integer of at most 256"),
    (["--save_freq", "0"], "--save_freq must be a positive integer"),
    (["--batch_size", "1"], "--batch_size must be in 2..2048"),
    (["--batch_size", "4096"], "--batch_size must be in 2..2048"),
    (["--n_epochs", "0"], "--n_epochs must be a positive integer"),
    (["--n_epochs", "1000000000"], "--n_epochs must be a positive integer of at most 100"),
    (["--seed", "-1"], "--seed must be in 0..4294967295"),
    (["--seed", str(2**32)], "--seed must be in 0..4294967295"),
    (["--learning_rate", "-0.1"], "--learning_rate must be positive and finite"),
    (["--learning_rate", "lin_-0.1"], "--learning_rate must be positive and finite"),
    (["--learning_rate", "inf"], "--learning_rate must be positive and finite"),
    (["--learning_rate", "nan"], "--learning_rate must be positive and finite"),
    (["--learning_rate", "lin_fast"], "--learning_rate must be a number or lin_<number>"),
    (["--net_arch", "64,x"], "--net_arch must be at most 16 layer widths of 1..4096"),
    (["--net_arch", "0"], "--net_arch must be at most 16 layer widths of 1..4096"),
    (["--net_arch", "\u00b2"], "--net_arch must be at most 16 layer widths of 1..4096"),
    (["--net_arch", "64,100000"], "--net_arch must be at most 16 layer widths of 1..4096"),
    (["--net_arch", ",".join(["8"] * 17)], "--net_arch must be at most 16 layer widths of 1..4096"),
    (["--ent_coef", "0.01,x"], "--ent_coef must be one finite non-negative number or several"),
    (["--ent_coef", "-0.1"], "--ent_coef must be one finite non-negative number or several"),
    (["--ent_coef", "inf"], "--ent_coef must be one finite non-negative number or several"),
    (["--pretrain", "cpsat"], "invalid choice"),
    (["--pretrain", "greedy", "--pretrain_episodes", "0"], "--pretrain_episodes must be a positive integer"),
    (["--imitation_rounds", "-1"], "--imitation_rounds must be 0 (none) or a positive integer of at most 1000"),
    (["--imitation_rounds", "1", "--imitation_samples", "0"], "--imitation_samples must be a positive integer"),
    (["--imitation_episodes", "0"], "--imitation_episodes must be a positive integer"),
    (["--imitation_learning_rate", "0"], "--imitation_learning_rate must be positive and finite"),
    (["--type_tasks", "heavy"], "invalid choice"),
    (["--device", "tpu"], "invalid choice"),
    (["--restore", "missing.zip"], "--restore: model file not found: missing.zip"),
    (["--restore", ""], "--restore: the model path is empty"),
    (["--restore", __file__], "is not a Stable-Baselines3 model zip"),
    (["--tensorboard_log", __file__], f"--tensorboard_log {__file__}: cannot write there"),
]


@pytest.mark.parametrize(("argv", "message"), INVALID)
def test_an_invalid_flag_exits_2_before_anything_is_built(version: str, argv: list[str], message: str | None, capsys) -> None:
    if message is None:  # a valid edge: 3 environments of 682 steps make a rollout of 2046
        assert parse_args(version, argv).num_steps == 4000
    else:
        assert message in fails(version, argv, capsys)


def test_queue_len_is_for_online_only(version: str, capsys) -> None:
    if version == "online":
        assert "--queue_len must be a positive integer" in fails(version, ["--queue_len", "0"], capsys)
    else:
        assert "--queue_len is for the online version only" in fails(version, ["--queue_len", "9"], capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_gpu_without_cuda_exits_2(capsys) -> None:
    assert "CUDA is not available" in fails("float", ["--device", "gpu"], capsys)


def test_the_script_itself_prints_one_line_and_exits_2() -> None:
    result = subprocess.run([sys.executable, "train.py", "--N", "0"], cwd=ROOT / "entropy", capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "train.py: error: --N must be a positive integer, got 0\n"


def test_a_mismatched_restore_names_both_and_exits_2(version: str, runs, capsys) -> None:
    own = str(runs[version]["short"].saved()[-1])
    err = fails(version, ["--N", str(N + 1), "--M", str(M), "--restore", own], capsys)
    assert f"does not fit {version} with N={N + 1} M={M}" in err and f"trained with N={N} M={M}" in err
    err = fails(version, ["--N", str(N), "--M", str(M + 1), "--restore", own], capsys)
    assert f"with N={N} M={M + 1}" in err and f"trained with N={N} M={M}" in err


def test_another_versions_model_is_refused_even_where_its_spaces_fit(version: str, runs, capsys) -> None:
    other = "entropy" if version == "float" else "float"  # float's spaces are entropy's and direct_reconfig's
    model = str(runs[other]["short"].saved()[-1])
    err = fails(version, ["--N", str(N), "--M", str(M), "--restore", model], capsys)
    assert f"is a model of the {other} version, not {version}" in err
    for stored in (model, str(Path(model).with_suffix(".pt"))):
        with pytest.raises(ModelError, match=f"a model of the {other} version, not {version}"):
            load_checked_model(stored, version)


def test_pretrain_is_for_a_new_model_only(runs, capsys) -> None:
    float_model = str(runs["float"]["short"].saved()[-1])
    err = fails("float", ["--N", str(N), "--M", str(M), "--restore", float_model, "--pretrain", "greedy"], capsys)
    assert "--pretrain warms up a new model; it cannot be combined with --restore" in err
    online_model = str(runs["online"]["short"].saved()[-1])
    restored = parse_args("online", ["--N", str(N), "--M", str(M), "--restore", online_model, "--preset", "fast"])
    assert (restored.pretrain, restored.learning_rate) == (None, 1e-4)


def test_the_entropy_coefficient_takes_four_values_in_equal_phases() -> None:
    phases = (0.01, 0.00075, 0.0005, 0.0)
    assert {v: parse_args(v, []).ent_coef for v in VERSIONS} == {v: list(phases) if v in PHASED else [0.01] for v in VERSIONS}
    assert [entropy_coefficient(phases, s, 1000) for s in (0, 249, 250, 499, 500, 749, 750, 999, 1000, 5000)] == [
        0.01,
        0.01,
        0.00075,
        0.00075,
        0.0005,
        0.0005,
        0.0,
        0.0,
        0.0,
        0.0,
    ]
    # The callback inside a run that starts from a restored model at timestep 7000.
    model = SimpleNamespace(num_timesteps=7000, ent_coef=0.123, get_env=lambda: None, logger=None)
    schedule = EntropySchedule(phases, 1000)
    schedule.init_callback(model)
    schedule.on_training_start({}, {})
    seen = {}
    for _ in range(1100):
        seen.setdefault(model.ent_coef, model.num_timesteps - 7000)
        model.num_timesteps += 1
        schedule.on_step()
    assert seen == {0.01: 0, 0.00075: 250, 0.0005: 500, 0.0: 750}


def test_a_linear_learning_rate_falls_to_zero_over_this_run_even_after_a_restore() -> None:
    assert (parse_args("float", ["--learning_rate", "lin_0.002"]).learning_rate, parse_args("float", ["--learning_rate", "lin_0.002"]).lr_decay) == (2e-3, True)
    assert parse_args("float", ["--learning_rate", "0.002"]).lr_decay is False
    # SB3's progress counts over the restored count as well: 3000 before this run, 1000 in it.
    schedule = LinearToZero(1e-3, start=3000, num_steps=1000)
    assert [schedule(1 - t / 4000) for t in (3000, 3250, 3500, 4000)] == pytest.approx([1e-3, 7.5e-4, 5e-4, 0.0])


def test_a_linear_learning_rate_reaches_the_optimizer(tmp_path: Path, capsys) -> None:
    steps = 3 * ROLLOUT
    assert main("float", flags("float", steps, "--learning_rate", "lin_0.001"), folder=tmp_path) == 0
    out = capsys.readouterr().out
    assert "learning_rate=lin_0.001" in out
    # The first two updates, after 2048 and 4096 steps, used 2/3 and 1/3 of the rate; the last, 0.
    logged = [float(v) for v in re.findall(r"\|\s+learning_rate\s+\|\s+([\d.e-]+)", out)]
    assert logged == pytest.approx([1e-3 * 2 / 3, 1e-3 / 3], rel=1e-2)
    assert load(model_path(tmp_path, N, M, steps, WORKLOAD)).policy.optimizer.param_groups[0]["lr"] == 0.0


def test_entropy_versions_print_each_change(runs) -> None:
    for version in VERSIONS:
        changes = re.findall(r"entropy coefficient (\S+) from timestep (\d+) of this run", runs[version]["short"].output)
        if version in PHASED:
            assert [float(c) for c, _ in changes] == [0.01, 0.00075, 0.0005, 0.0]
            assert [int(s) for _, s in changes] == [-(-k * STEPS // 4) for k in range(4)]
        else:
            assert changes == []


class FakeModel:
    """Writes `payload` as its zip, or half of it and then fails like a kill in the middle."""

    def __init__(self, payload: bytes, fail: bool = False) -> None:
        self.payload, self.fail = payload, fail

    def save(self, path: str) -> None:
        with open(path, "wb") as out:
            out.write(self.payload[: len(self.payload) // 2] if self.fail else self.payload)
        if self.fail:
            raise KeyboardInterrupt


RECORD = {"version": "float"}


def test_two_saves_of_one_name_keep_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another run saving the same name at the same moment: every existence check says "free".
    monkeypatch.setattr(Path, "exists", lambda self: False)
    target = tmp_path / "bs3_N=4_M=5_s=10_wide_times.zip"
    second = target.with_name("bs3_N=4_M=5_s=10_wide_times-2.zip")
    assert [save_model(FakeModel(data), target, RECORD) for data in (b"one", b"two")] == [target, second]
    assert (target.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert json.loads(second.with_suffix(".json").read_text()) == {"version": "float", "model": str(second)}
    assert len(list(tmp_path.iterdir())) == 4


def test_saves_take_the_next_free_name_and_are_atomic(tmp_path: Path) -> None:
    target = tmp_path / "models" / "bs3_N=4_M=5_s=10_wide_times.zip"
    assert save_model(FakeModel(b"first"), target, RECORD) == target
    assert save_model(FakeModel(b"second"), target, RECORD) == target.with_name("bs3_N=4_M=5_s=10_wide_times-2.zip")
    with pytest.raises(KeyboardInterrupt):
        save_model(FakeModel(b"broken", fail=True), target, RECORD)
    assert target.read_bytes() == b"first"
    assert {p.name for p in target.parent.iterdir()} == {f"bs3_N=4_M=5_s=10_wide_times{k}.{ext}" for k in ("", "-2") for ext in ("zip", "json")}


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_models_and_records_honour_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    previous = os.umask(umask)
    try:
        saved = save_model(FakeModel(b"model"), tmp_path / "bs3_N=4_M=5_s=10_wide_times.zip", RECORD)
    finally:
        os.umask(previous)
    assert saved.stat().st_mode & 0o777 == mode
    assert saved.with_suffix(".json").stat().st_mode & 0o777 == mode


def test_the_version_files_hold_the_defaults_and_presets(version: str) -> None:
    info = get_version(version)
    args = parse_args(version, [])
    for flag, value in info.defaults.items():
        if flag not in ("learning_rate", "net_arch", "ent_coef", "stages"):
            assert getattr(args, flag) == value, flag
    assert info.defaults["stages"] is None and args.stages == "ppo"  # no recipe: the original's PPO alone
    fast = parse_args(version, ["--preset", "fast"])
    assert {flag: getattr(fast, flag) for flag in ("n_envs", "vec_env", "batch_size")} == {"n_envs": 8, "vec_env": "dummy", "batch_size": 512}
    assert set(info.presets["fast"]) <= set(info.defaults)


def test_train_py_reads_whatever_the_version_file_says(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    info = get_version("entropy")
    changed = {
        "defaults": {**info.defaults, "batch_size": 128, "net_arch": "32,16", "rollout_steps": 512},
        "presets": {"tiny": {"n_envs": 2, "learning_rate": "lin_0.01", "by_workload": {"wide_times": {"reward": "real", "n_envs": 4}}}},
    }
    monkeypatch.setitem(info.__dict__, "hyperparams", changed)
    args = parse_args("entropy", [])
    assert (args.batch_size, args.net_arch, args.rollout_steps) == (128, [32, 16], 512)
    args = parse_args("entropy", ["--preset", "tiny", "--batch_size", "64"])
    assert (args.n_envs, args.learning_rate, args.lr_decay, args.batch_size, args.reward) == (2, 0.01, True, 64, "levels")
    args = parse_args("entropy", ["--preset", "tiny", "--type_tasks", "wide_times"])
    assert (args.n_envs, args.learning_rate, args.reward) == (4, 0.01, "real")
    args = parse_args("entropy", ["--preset", "tiny", "--type_tasks", "wide_times", "--reward", "levels", "--n_envs", "3"])
    assert (args.n_envs, args.reward) == (3, "levels")
    assert parse_args("entropy", ["--type_tasks", "wide_times"]).reward == "levels"
    with pytest.raises(SystemExit):
        parse_args("entropy", ["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "PPO minibatch size (default 128)" in shown
    assert "tiny: --n_envs 2 --learning_rate lin_0.01, on wide_times also --reward real --n_envs 4" in shown


@pytest.mark.parametrize(
    ("presets", "message"),
    [
        ({"fast": {"bach_size": 64}}, "preset fast sets ['bach_size']"),
        ({"fast": {"type_tasks": "wide_times"}}, "preset fast sets ['type_tasks']"),
        ({"fast": {"by_workload": {"wide_time": {"reward": "real"}}}}, "preset fast's by_workload must map workloads"),
        ({"fast": {"by_workload": {"wide_times": {"rewards": "real"}}}}, "preset fast sets ['rewards']"),
        ({"fast": 8}, "preset fast must map settings to values"),
        ({"fast": {"by_workload": {"wide_times": "real"}}}, "preset fast's by_workload must map workloads"),
    ],
)
def test_a_version_file_with_an_unknown_setting_or_workload_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, presets: dict[str, object], message: str
) -> None:
    folder = tmp_path / "entropy"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(yaml.safe_dump({"defaults": get_version("entropy").defaults, "presets": presets}))
    monkeypatch.setattr(versions, "REPO_ROOT", tmp_path)
    with pytest.raises(ValueError, match=re.escape(message)):
        versions.Version("entropy").settings("fast")


def test_the_reward_is_saved_with_the_model_and_kept_by_a_restore(tmp_path: Path, capsys) -> None:
    assert main("float", flags("float", STEPS, "--reward", "real"), folder=tmp_path) == 0
    saved = model_path(tmp_path, N, M, STEPS, WORKLOAD)
    assert load(saved).env_config["reward"] == "real"
    assert load_checked_model(saved, "float")[1] == {"N": N, "M": M, "reward": "real"}
    assert record(saved)["env_config"]["reward"] == "real"
    assert parse_args("float", ["--N", str(N), "--M", str(M), "--restore", str(saved)]).reward == "real"
    err = fails("float", ["--N", str(N), "--M", str(M), "--restore", str(saved), "--reward", "levels"], capsys)
    assert "the model was trained with --reward real; a restore keeps it" in err


def test_rollout_steps_sets_the_rollout_length(tmp_path: Path) -> None:
    assert main("float", flags("float", 1024, "--rollout_steps", "512", "--batch_size", "256", "--n_envs", "2", "--vec_env", "dummy"), folder=tmp_path) == 0
    saved = model_path(tmp_path, N, M, 1024, WORKLOAD)
    assert (load(saved).n_steps, load(saved).num_timesteps) == (256, 1024)  # each of the 2 environments runs 512 // 2 steps, twice
    assert record(saved)["hyperparameters"]["rollout_steps"] == 512 and record(saved)["hyperparameters"]["n_steps"] == 256


def test_record_copies_the_run_record_for_scripts(tmp_path: Path, capsys) -> None:
    copy = tmp_path / "run.json"
    argv = [*flags("float", STEPS), "--eval_freq", "1024", "--eval_episodes", "2", "--record", str(copy)]
    assert main("float", argv, folder=tmp_path) == 0
    saved = model_path(tmp_path, N, M, STEPS, WORKLOAD)
    data = json.loads(copy.read_text())
    assert data == record(saved)
    assert (data["status"], data["model"], data["eval_csv"]) == ("finished", str(saved), str(saved.with_name(saved.stem + "_eval.csv")))
    assert data["best_evaluation"]["model"] == str(saved.with_name(saved.stem + "_best.zip"))
    assert "--record" in fails("float", ["--record", str(tmp_path / "no" / "such" / "folder.json")], capsys)


def test_torch_takes_the_cores_other_processes_leave_free(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert [threads_for_free_cores(4, elsewhere) for elsewhere in (0, 3, 4, 5, 7, 20)] == [4, 4, 4, 3, 1, 1]
    assert threads_for_free_cores(4, None) == 4  # where the system does not say, the most
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert [threads_for_free_cores(2, elsewhere) for elsewhere in (0, 1, 2)] == [2, 1, 1]
    assert threads_for_free_cores(1, 0) == 1


def test_a_busy_process_beside_is_seen_and_the_update_gets_one_thread_fewer(monkeypatch: pytest.MonkeyPatch) -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        guard = time.monotonic() + HANG_GUARD_S
        while not runnable_elsewhere():
            assert time.monotonic() < guard, "a busy process was never seen runnable"
            time.sleep(0.01)
    finally:
        busy.kill()
        busy.wait()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr("migsched.workers.runnable_elsewhere", lambda: 1)
    callback = FreeCoreThreads(most=2)
    callback.init_callback(SimpleNamespace(get_env=lambda: None, logger=SimpleNamespace(record=lambda key, value: None)))
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        callback.on_rollout_end()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("version", ["one_hot", "online"])
def test_ppo_trains_on_the_batched_environment(version: str, tmp_path: Path, capsys) -> None:
    assert main(version, flags(version, 2 * ROLLOUT, "--n_envs", "16", "--vec_env", "batched", "--seed", "3"), folder=tmp_path) == 0
    out = capsys.readouterr().out
    assert "n_envs=16 (batched)" in out and "16 env(s) x 128 steps per rollout" in out
    assert len(re.findall(r"rollout/\s+\|\s+\|\n\|\s+ep_len_mean", out)) == 2 and "makespan_ratio" in out
    model = load(model_path(tmp_path, N, M, 2 * ROLLOUT, WORKLOAD))
    assert model.num_timesteps == 2 * ROLLOUT
