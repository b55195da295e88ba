"""Nothing a training run reached is lost: dead workers, a dead parent, failed saves, an
unwritable folder, two runs in one folder, Ctrl+C while cloning or in self-imitation, and corrupt model files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import DATA, script_env, version_copy
from sb3_contrib import MaskablePPO

from migsched import make_env, models, training
from migsched.models import ModelError, load_checked_model, model_path

N, M, WORKLOAD = 3, 5, "bad_scaling"
#: Only against a hang: these runs take seconds on a quiet machine and minutes on a loaded one.
HANG_GUARD_S = 1200
SMALL = ["--N", str(N), "--M", str(M), "--type_tasks", WORKLOAD, "--batch_size", "1024", "--seed", "0", "--eval_freq", "0"]


def start(folder: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "train.py", *argv], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=script_env(), start_new_session=True
    )


def wait_for_line(proc: subprocess.Popen, text: str) -> list[str]:
    """Read the run's output until a line holding `text`; the lines read."""
    lines = []
    guard = time.monotonic() + HANG_GUARD_S
    for line in proc.stdout:
        lines.append(line)
        if text in line:
            return lines
        assert time.monotonic() < guard, "no such line came"
    raise AssertionError(f"the run ended without printing {text!r}: {''.join(lines)}{proc.stderr.read()}")


def children(pid: int) -> list[int]:
    """The live child processes of `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its new parent, counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_killed_worker_ends_the_run_with_the_model_saved_and_one_line(tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    proc = start(folder, "--num_steps", str(10**9), "--n_envs", "2", "--vec_env", "subproc", *SMALL)
    wait_for_line(proc, "total_timesteps")  # a rollout has been logged
    worker = children(proc.pid)[0]
    os.kill(worker, signal.SIGKILL)
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 1, err
    assert re.fullmatch(rf"train\.py: error: environment worker \d \(pid {worker}\) was killed by SIGKILL; model saved: \S+\.zip\n", err), err
    saved = Path(re.search(r"model saved: (\S+\.zip)$", out, re.MULTILINE).group(1))
    assert saved.parent == folder / "trained_models"
    assert MaskablePPO.load(saved, device="cpu").num_timesteps >= 2048
    assert json.loads(saved.with_suffix(".json").read_text())["status"].startswith("stopped: environment worker")


def test_workers_die_with_a_killed_training_process(tmp_path: Path) -> None:
    folder = version_copy("direct_reconfig", tmp_path)
    proc = start(folder, "--num_steps", str(10**9), "--n_envs", "2", "--vec_env", "subproc", *SMALL)
    wait_for_line(proc, "total_timesteps")
    workers = children(proc.pid)
    assert len(workers) == 2
    proc.kill()
    proc.wait()
    guard = time.monotonic() + HANG_GUARD_S
    while any(alive(w) for w in workers):
        assert time.monotonic() < guard, "orphaned workers kept running"
        time.sleep(0.05)


def test_a_folder_that_cannot_be_written_is_refused_before_training(tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    (folder / "trained_models").write_text("a file where the models folder should be")
    result = subprocess.run([sys.executable, "train.py", "--num_steps", "2048", *SMALL], cwd=folder, capture_output=True, text=True, env=script_env())
    assert result.returncode == 2
    assert result.stderr.startswith(f"train.py: error: cannot write models in {folder / 'trained_models'}: ") and result.stderr.count("\n") == 1
    assert "Using cpu device" not in result.stdout


def failing_save(fail: callable):
    """`models.save_model` that raises a full disk's OSError for the paths `fail` picks."""
    real = models.save_model

    def save(model, path, record, claimed=False):
        if fail(Path(path)):
            raise OSError(28, "No space left on device")
        return real(model, path, record, claimed=claimed)

    return save


def test_a_checkpoint_that_cannot_be_written_is_reported_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(training, "save_model", failing_save(lambda path: "_s=1024_" in path.name))
    assert training.main("float", ["--num_steps", "2048", "--save_freq", "1024", *SMALL], folder=tmp_path) == 0
    out = capsys.readouterr().out
    assert "checkpoint at 1024 timesteps not saved (No space left on device); training goes on" in out
    assert MaskablePPO.load(model_path(tmp_path, N, M, 2048, WORKLOAD), device="cpu").num_timesteps == 2048


def test_a_final_save_that_fails_goes_to_a_printed_rescue_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    rescue_root = tmp_path / "tmp"
    rescue_root.mkdir()
    monkeypatch.setattr(training.tempfile, "gettempdir", lambda: str(rescue_root))
    monkeypatch.setattr(training, "save_model", failing_save(lambda path: rescue_root not in path.parents))
    assert training.main("float", ["--num_steps", "2048", *SMALL], folder=tmp_path / "version") == 1
    out, err = capsys.readouterr()
    rescued = rescue_root / "migsched-rescue" / model_path(tmp_path, N, M, 2048, WORKLOAD).name
    assert f"model saved: {rescued}" in out
    assert (
        err
        == f"train.py: error: could not save the model in {tmp_path / 'version' / 'trained_models'} (No space left on device); saved it to {rescued.parent} instead\n"
    )
    assert MaskablePPO.load(rescued, device="cpu").num_timesteps == 2048


def test_when_no_save_works_the_error_says_the_model_is_lost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(training.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    monkeypatch.setattr(training, "save_model", failing_save(lambda path: True))
    assert training.main("float", ["--num_steps", "2048", *SMALL], folder=tmp_path / "version") == 1
    err = capsys.readouterr().err
    assert err.startswith("train.py: error: could not save the model in ") and err.endswith(": the model is lost\n")


def test_two_runs_of_the_same_flags_in_one_folder_keep_their_files_apart(tmp_path: Path) -> None:
    folder = version_copy("entropy", tmp_path)
    argv = [*SMALL, "--num_steps", "2048", "--eval_freq", "1024", "--eval_episodes", "2"]
    procs = [start(folder, *argv) for _ in range(2)]
    outputs = [proc.communicate(timeout=HANG_GUARD_S)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    stems = []
    for out in outputs:
        final = re.search(r"^model saved: (\S+)\.zip$", out, re.MULTILINE).group(1)
        best = re.search(r"new best saved: (\S+)_best\.zip$", out, re.MULTILINE)
        assert best is not None, out
        assert final == best.group(1)
        stems.append(final)
    assert len(set(stems)) == 2
    for stem in stems:
        rows = Path(f"{stem}_eval.csv").read_text().splitlines()
        assert [row.split(",")[0] for row in rows] == ["timesteps", "1024", "2048"]  # each run's curve alone
        record = json.loads(Path(f"{stem}.json").read_text())
        assert record["best_evaluation"]["model"] == f"{stem}_best.zip"


def test_ctrl_c_while_cloning_stops_there_and_saves(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    proc = start(folder, "--num_steps", "2048", "--pretrain", "greedy", "--pretrain_episodes", "100000", "--queue_len", "6", *SMALL)
    wait_for_line(proc, "Using cpu device")  # the model exists, the teacher's episodes are being recorded
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, err
    assert "pretraining on greedy stopped by SIGINT" in out and "stopped by SIGINT after 0 timesteps of this run" in out
    saved = Path(re.search(r"model saved: (\S+\.zip)$", out, re.MULTILINE).group(1))
    assert saved.name == f"bs3_N={N}_M={M}_s=0_{WORKLOAD}.zip" and saved.is_file()


def test_ctrl_c_during_self_imitation_stops_there_and_saves_the_model_of_ppo(tmp_path: Path) -> None:
    folder = version_copy("online", tmp_path)
    argv = ["--num_steps", "2048", "--imitation_rounds", "1", "--imitation_episodes", "100000", "--imitation_samples", "2", "--queue_len", "6", *SMALL]
    proc = start(folder, *argv)
    wait_for_line(proc, "self-imitation: 1 round(s) of 100000 episodes")  # PPO is done, the first round's episodes are being played
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=HANG_GUARD_S)
    assert proc.returncode == 130, err
    assert "self-imitation stopped in round 1, while it played its episodes: the model is that of round 0" in out
    assert "stopped by SIGINT after 2048 timesteps of this run" in out
    saved = Path(re.search(r"model saved: (\S+\.zip)$", out, re.MULTILINE).group(1))
    model, _ = load_checked_model(saved, "online")
    assert model.num_timesteps == 2048


@pytest.fixture(scope="module")
def broken_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A float model zip whose policy.pth is garbage, and one without it."""
    folder = tmp_path_factory.mktemp("broken")
    model = MaskablePPO("MlpPolicy", make_env("float", {"N": N, "M": M}, WORKLOAD), policy_kwargs=dict(net_arch=[16]))
    model.env_config = {"N": N, "M": M}
    good = folder / "good.zip"
    model.save(good)
    paths = {}
    for name, replace in (("corrupt", b"not a tensor file"), ("missing", None)):
        paths[name] = folder / f"{name}.zip"
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(paths[name], "w") as target:
            for item in source.namelist():
                if item != "policy.pth":
                    target.writestr(item, source.read(item))
                elif replace is not None:
                    target.writestr(item, replace)
    return paths


@pytest.mark.parametrize("kind", ["corrupt", "missing"])
def test_a_model_with_broken_weights_is_one_line_everywhere(broken_models: dict[str, Path], kind: str, tmp_path: Path) -> None:
    path = broken_models[kind]
    with pytest.raises(ModelError, match="policy.pth"):
        load_checked_model(path, "float")
    folder = version_copy("float", tmp_path)
    commands = {
        "train.py": ["--restore", str(path), "--num_steps", "2048", *SMALL],
        "evaluate.py": ["--model", str(path), "--episodes", "1", "--type_tasks", WORKLOAD],
        "schedule.py": ["--model", str(path), "--tasks", str(DATA / "rodinia_a30.txt")],
    }
    for script, argv in commands.items():
        result = subprocess.run([sys.executable, script, *argv], cwd=folder, capture_output=True, text=True, env=script_env())
        assert result.returncode == 2, (script, result.stderr)
        assert result.stderr.startswith(f"{script}: error: ") and result.stderr.count("\n") == 1, (script, result.stderr)
        assert "policy.pth" in result.stderr
    assert not (folder / "trained_models").exists()
