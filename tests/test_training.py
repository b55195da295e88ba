"""Each version's train.py: the model it writes, restoring, SIGINT/SIGTERM, bad flags, the entropy schedule.

The trainings are real `python <version>/train.py` subprocesses with a small N and M and one
2048-step rollout, all started at once; the models they write beside train.py are removed at
the end. Runs of this session are told apart from any other's by their --num_steps.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from sb3_contrib import MaskablePPO

from migsched import VERSIONS
from migsched.training import (
    ENT_COEF_PHASES,
    EntropySchedule,
    LinearToZero,
    entropy_coefficient,
    main,
    model_path,
    parse_args,
    save_model,
)

ROOT = Path(__file__).resolve().parent.parent
N, M, WORKLOAD = 4, 5, "mix_scaling_soft"
STEPS = 100 + os.getpid() % 900  # this session's --num_steps: its model names are its own
SAVE_FREQ = STEPS // 2
ROLLOUT = 2048
TIMEOUT = 180
torch.set_num_threads(1)  # the models loaded here are small; more threads only contend with the trainings


def flags(version: str, steps: int = STEPS, *extra: str) -> list[str]:
    """Small, fast training flags; one rollout of 2048 steps, 20 minibatches of 1024, no evaluations
    (test_eval_training covers those)."""
    online = ["--queue_len", "9"] if version == "online" else []
    return ["--num_steps", str(steps), "--N", str(N), "--M", str(M), "--type_tasks", WORKLOAD, "--batch_size", "1024", "--seed", "0", "--eval_freq", "0", *online, *extra]


class Training:
    """A `python train.py ...` subprocess whose output goes to a file, optionally sent a signal
    once a given text shows in that output."""

    def __init__(self, version: str, argv: list[str], log: Path, cwd: Path | None = None, signal_on: tuple[str, int] | None = None) -> None:
        self.log = log
        self.signal_on = signal_on
        script = ROOT / version / "train.py"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *argv], cwd=cwd or script.parent, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1")
            )

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


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory):
    """Per version, all at once: a short training; then, run from the repository root, a restore
    of its model stopped by SIGINT as soon as it starts; beside them a fresh run with two
    subprocess environments stopped by SIGTERM after its first rollout. Removes their models after."""
    logs = tmp_path_factory.mktemp("train_logs")
    done: dict[str, dict[str, Training]] = {}
    for version in VERSIONS:
        done[version] = {
            "short": Training(version, flags(version, STEPS, "--save_freq", str(SAVE_FREQ)), logs / f"{version}-short.log"),
            "sigterm": Training(version, flags(version, 10**9, "--n_envs", "2"), logs / f"{version}-sigterm.log", signal_on=("total_timesteps", signal.SIGTERM)),
        }

    def trainings() -> list[Training]:
        return [t for per_version in done.values() for t in per_version.values()]

    try:
        deadline = time.monotonic() + TIMEOUT
        while any([t.poll() for t in trainings()]) or any("sigint" not in per_version for per_version in done.values()):
            for version, per_version in done.items():
                if "sigint" not in per_version and per_version["short"].proc.poll() is not None:
                    assert per_version["short"].proc.returncode == 0, per_version["short"].output
                    source = f"{version}/trained_models/{model_path(version, N, M, STEPS, WORKLOAD).name}"
                    argv = flags(version, 10**9, "--restore", source)
                    per_version["sigint"] = Training(version, argv, logs / f"{version}-sigint.log", cwd=ROOT, signal_on=(f"training {version}:", signal.SIGINT))
            assert time.monotonic() < deadline, "trainings did not finish in time"
            time.sleep(0.05)
        yield done
    finally:
        for training in trainings():
            if training.proc.poll() is None:
                training.proc.kill()
                training.proc.wait()
            for path in training.saved():
                path.unlink(missing_ok=True)


@pytest.fixture(params=VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return request.param


def load(path: Path) -> MaskablePPO:
    return MaskablePPO.load(path, device="cpu")


def reached(training: Training) -> int:
    return int(re.search(r"after (\d+) timesteps of this run", training.output).group(1))


def test_short_training_writes_a_loadable_model_with_checkpoints(version: str, runs) -> None:
    short = runs[version]["short"]
    folder = ROOT / version / "trained_models"
    checkpoints = [folder / model_path(version, N, M, SAVE_FREQ * k, WORKLOAD).name for k in range(1, 3) if SAVE_FREQ * k < STEPS]
    assert short.saved() == [*checkpoints, model_path(version, N, M, STEPS, WORKLOAD)]
    model = load(short.saved()[-1])
    assert model.num_timesteps == ROLLOUT
    assert model.env_config["N"] == N and model.env_config["M"] == M
    assert load(checkpoints[0]).num_timesteps == SAVE_FREQ
    assert "ep_rew_mean" in short.output and "makespan_ratio" in short.output


def test_restore_continues_the_count_and_keeps_its_source(version: str, runs) -> None:
    (saved,) = runs[version]["sigint"].saved()
    assert load(saved).num_timesteps == ROLLOUT + reached(runs[version]["sigint"])
    assert load(model_path(version, N, M, STEPS, WORKLOAD)).num_timesteps == ROLLOUT


@pytest.mark.parametrize(("name", "status"), [("sigint", 130), ("sigterm", 143)])
def test_a_signal_saves_the_timesteps_reached(version: str, runs, name: str, status: int) -> None:
    training = runs[version][name]
    assert training.proc.returncode == status, training.output
    (saved,) = training.saved()
    assert re.fullmatch(rf"bs3_N={N}_M={M}_s={reached(training)}_{WORKLOAD}(-\d+)?\.zip", saved.name)
    assert saved.parent == ROOT / version / "trained_models"
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
    (["--N", "0"], "--N must be a positive integer"),
    (["--M", "-1"], "--M must be a positive integer"),
    (["--n_envs", "0"], "--n_envs must be a positive integer"),
    (["--save_freq", "0"], "--save_freq must be a positive integer"),
    (["--batch_size", "1"], "--batch_size must be at least 2"),
    (["--n_epochs", "0"], "--n_epochs must be a positive integer"),
    (["--learning_rate", "-0.1"], "--learning_rate must be positive"),
    (["--learning_rate", "lin_-0.1"], "--learning_rate must be positive"),
    (["--learning_rate", "lin_fast"], "--learning_rate must be a number or lin_<number>"),
    (["--net_arch", "64,x"], "--net_arch must be positive layer widths"),
    (["--net_arch", "0"], "--net_arch must be positive layer widths"),
    (["--ent_coef", "0.01,x"], "--ent_coef must be one non-negative number or several"),
    (["--ent_coef", "-0.1"], "--ent_coef must be one non-negative number or several"),
    (["--pretrain", "cpsat"], "invalid choice"),
    (["--pretrain", "greedy", "--pretrain_episodes", "0"], "--pretrain_episodes must be a positive integer"),
    (["--type_tasks", "heavy"], "invalid choice"),
    (["--device", "tpu"], "invalid choice"),
    (["--restore", "missing.zip"], "model file not found: missing.zip"),
    (["--restore", __file__], "is not a Stable-Baselines3 model zip"),
]


@pytest.mark.parametrize(("argv", "message"), INVALID)
def test_an_invalid_flag_exits_2_before_anything_is_built(version: str, argv: list[str], message: str, capsys) -> None:
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
    float_model = str(model_path("float", N, M, STEPS, WORKLOAD))
    if version in ("float", "entropy", "direct_reconfig"):  # the float model fits these spaces at N=4 M=5
        err = fails(version, ["--N", str(N + 1), "--M", str(M), "--restore", float_model], capsys)
        assert f"does not fit {version} with N={N + 1} M={M}" in err and f"trained with N={N} M={M}" in err
        err = fails(version, ["--N", str(N), "--M", str(M + 1), "--restore", float_model], capsys)
        assert f"with N={N} M={M + 1}" in err and f"trained with N={N} M={M}" in err
    else:
        err = fails(version, ["--N", str(N), "--M", str(M), "--restore", float_model], capsys)
        assert f"does not fit {version} with N={N} M={M}" in err and "Box(0.0, 1.0, (32,), float32) -> Discrete(45)" in err


def test_pretrain_is_for_a_new_model_only(runs, capsys) -> None:
    float_model = str(model_path("float", N, M, STEPS, WORKLOAD))
    err = fails("float", ["--N", str(N), "--M", str(M), "--restore", float_model, "--pretrain", "greedy"], capsys)
    assert "--pretrain warms up a new model; it cannot be combined with --restore" in err
    online_model = str(model_path("online", N, M, STEPS, WORKLOAD))
    restored = parse_args("online", ["--N", str(N), "--M", str(M), "--restore", online_model, "--preset", "fast"])
    assert (restored.pretrain, restored.learning_rate) == (None, 1e-4)


def test_the_entropy_coefficient_takes_four_values_in_equal_phases() -> None:
    phases = (0.01, 0.00075, 0.0005, 0.0)
    assert set(ENT_COEF_PHASES) == {"entropy", "direct_reconfig", "online"}
    assert all(value == phases for value in ENT_COEF_PHASES.values())
    assert [entropy_coefficient(phases, s, 1000) for s in (0, 249, 250, 499, 500, 749, 750, 999, 1000, 5000)] == [
        0.01, 0.01, 0.00075, 0.00075, 0.0005, 0.0005, 0.0, 0.0, 0.0, 0.0,
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


def test_a_linear_learning_rate_reaches_the_optimizer(capsys) -> None:
    steps = 3 * ROLLOUT
    assert main("float", flags("float", steps, "--learning_rate", "lin_0.001")) == 0
    out = capsys.readouterr().out
    assert "learning_rate=lin_0.001" in out
    # The first two updates, after 2048 and 4096 steps, used 2/3 and 1/3 of the rate; the last, 0.
    logged = [float(v) for v in re.findall(r"\|\s+learning_rate\s+\|\s+([\d.e-]+)", out)]
    assert logged == pytest.approx([1e-3 * 2 / 3, 1e-3 / 3], rel=1e-2)
    path = model_path("float", N, M, steps, WORKLOAD)
    try:
        assert load(path).policy.optimizer.param_groups[0]["lr"] == 0.0
    finally:
        path.unlink(missing_ok=True)


def test_entropy_versions_print_each_change(runs) -> None:
    for version in VERSIONS:
        changes = re.findall(r"entropy coefficient (\S+) from timestep (\d+) of this run", runs[version]["short"].output)
        if version in ENT_COEF_PHASES:
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


def no_hard_links(source: str, target: Path) -> None:
    raise PermissionError("hard links not supported")


@pytest.mark.parametrize(
    ("patched", "name", "value"),
    [
        # Another run saving the same name at the same moment: every existence check says "free".
        (Path, "exists", lambda self: False),
        # A filesystem without hard links.
        (os, "link", no_hard_links),
    ],
    ids=["a-name-taken-after-it-looked", "no-hard-links"],
)
def test_two_saves_of_one_name_keep_both_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, patched: object, name: str, value: object) -> None:
    monkeypatch.setattr(patched, name, value)
    target = tmp_path / "bs3_N=4_M=5_s=10_wide_times.zip"
    second = target.with_name("bs3_N=4_M=5_s=10_wide_times-2.zip")
    assert [save_model(FakeModel(data), target) for data in (b"one", b"two")] == [target, second]
    assert (target.read_bytes(), second.read_bytes()) == (b"one", b"two")
    assert len(list(tmp_path.iterdir())) == 2


def test_saves_take_the_next_free_name_and_are_atomic(tmp_path: Path) -> None:
    target = tmp_path / "models" / "bs3_N=4_M=5_s=10_wide_times.zip"
    assert save_model(FakeModel(b"first"), target) == target
    assert save_model(FakeModel(b"second"), target) == target.with_name("bs3_N=4_M=5_s=10_wide_times-2.zip")
    with pytest.raises(KeyboardInterrupt):
        save_model(FakeModel(b"broken", fail=True), target)
    assert target.read_bytes() == b"first"
    assert {p.name for p in target.parent.iterdir()} == {target.name, "bs3_N=4_M=5_s=10_wide_times-2.zip"}
