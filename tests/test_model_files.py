"""What reading and writing a model may do: no code from a model file runs unless the user says
it is trusted, another version's model is refused, the weights-only form loads alone, a run a kill
left behind is found by the next, a failure after a run claimed its name is recorded, and a full
disk is one line."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pickle
import platform
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from conftest import DATA, script_env, version_copy

from migsched import evaluation, make_env, scheduling, stages, training
from migsched.models import ModelError, claim, load_checked_model, read_model_data, record_path

N, M, WORKLOAD = 3, 5, "bad_scaling"
SMALL = ["--N", str(N), "--M", str(M), "--type_tasks", WORKLOAD, "--batch_size", "1024", "--seed", "0", "--eval_freq", "0"]
SCRIPTS = ("train.py", "evaluate.py", "schedule.py")


class Touch:
    """A pickle that, when unpickled, creates the file `marker`: what a hostile model would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def serialized(payload: object, **readable: str) -> dict[str, str]:
    """An entry of SB3's data as SB3 writes a pickled object: the pickle and readable fields."""
    return {":type:": "<class 'object'>", ":serialized:": base64.b64encode(pickle.dumps(payload)).decode(), **readable}


def run(folder: Path, script: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, script, *argv], cwd=folder, capture_output=True, text=True, env=script_env())


def call(folder: Path, script: str, *argv: str) -> subprocess.CompletedProcess:
    """`script` of the version folder `folder` run in this process (the same `main` the script
    calls, without an interpreter's start-up): its exit status and output."""
    version = folder.name
    mains = {
        "train.py": lambda: training.main(version, list(argv), folder=folder),
        "evaluate.py": lambda: evaluation.main(version, list(argv)),
        "schedule.py": lambda: scheduling.main(version, list(argv)),
    }
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = mains[script]()
        except SystemExit as exited:
            status = exited.code
    return subprocess.CompletedProcess([script, *argv], status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float model of one rollout, saved by train.py (its zip, .pt and record)."""
    folder = version_copy("float", tmp_path_factory.mktemp("trained"))
    result = run(folder, "train.py", "--num_steps", "2048", *SMALL)
    assert result.returncode == 0, result.stderr
    return folder / "trained_models" / f"bs3_N={N}_M={M}_s=2048_{WORKLOAD}.zip"


def rewritten(source: Path, target: Path, change_data: object = None, **replace: bytes) -> Path:
    """A copy of the zip `source` with its data changed by `change_data(dict)` and members replaced."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for item in old.namelist():
            content = old.read(item)
            if item == "data" and change_data is not None:
                data = json.loads(content)
                change_data(data)
                content = json.dumps(data).encode()
            new.writestr(item, replace.get(item.replace(".", "_"), content))
    return target


def commands(model: Path, folder: Path) -> dict[str, list[str]]:
    """Every command that reads a model, reading `model`."""
    return {
        "train.py": ["--restore", str(model), "--num_steps", "2048", *SMALL],
        "evaluate.py": ["--model", str(model), "--episodes", "1", "--type_tasks", WORKLOAD, "--policies", "agent"],
        "schedule.py": ["--model", str(model), "--tasks", str(DATA / "rodinia_a30.txt")],
    }


def test_a_pickle_in_a_known_entry_is_never_run_and_the_model_still_loads(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    readable = read_model_data(trained)["policy_class"].fields  # what SB3 wrote beside the real class

    def poison(data: dict) -> None:
        data["policy_class"] = serialized(Touch(marker), **readable)
        data["observation_space"][":serialized:"] = serialized(Touch(marker))[":serialized:"]
        data["lr_schedule"][":serialized:"] = serialized(Touch(marker))[":serialized:"]

    hostile = rewritten(trained, tmp_path / "hostile.zip", poison)
    folder = version_copy("float", tmp_path)
    for script, argv in commands(hostile, folder).items():
        result = run(folder, script, *argv)
        assert result.returncode == 0, (script, result.stderr)
        assert not marker.exists(), f"{script} ran the model's code"


def test_a_pickle_in_an_unknown_entry_is_refused_in_one_line_by_every_command(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = rewritten(trained, tmp_path / "hostile.zip", lambda data: data.update(exploit=serialized(Touch(marker))))
    folder = version_copy("float", tmp_path)
    for script, argv in commands(hostile, folder).items():
        result = call(folder, script, *argv)
        assert result.returncode == 2, (script, result.stderr)
        assert result.stderr.startswith(f"{script}: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "pickled exploit" in result.stderr and "--trust_model" in result.stderr
        assert not marker.exists(), f"{script} ran the model's code"
    assert not (folder / "trained_models").exists()


def test_a_policy_class_of_another_library_is_refused(trained: Path, tmp_path: Path) -> None:
    hostile = rewritten(trained, tmp_path / "other.zip", lambda data: data.update(policy_class=serialized(Touch(tmp_path / "ran"), __module__="evil")))
    with pytest.raises(ModelError, match="its policy_class is not sb3-contrib's MaskableActorCriticPolicy"):
        load_checked_model(hostile, "float")
    assert not (tmp_path / "ran").exists()


def test_trust_model_is_what_lets_stable_baselines3_unpickle(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = rewritten(trained, tmp_path / "hostile.zip", lambda data: data.update(exploit=serialized(Touch(marker))))
    folder = version_copy("float", tmp_path)
    result = call(folder, "evaluate.py", "--model", str(hostile), "--episodes", "1", "--type_tasks", WORKLOAD, "--policies", "agent", "--trust_model")
    assert result.returncode == 0, result.stderr
    assert marker.exists()


def test_a_pickle_in_the_weights_only_file_is_refused(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = torch.load(trained.with_suffix(".pt"), weights_only=True)
    payload["version"] = Touch(marker)
    hostile = tmp_path / "hostile.pt"
    torch.save(payload, hostile)
    folder = version_copy("float", tmp_path)
    for script, argv in commands(hostile, folder).items():
        result = call(folder, script, *argv)
        assert result.returncode == 2, (script, result.stderr)
        assert "is not a weights-only agent file" in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert not marker.exists()


def test_the_weights_only_file_acts_as_the_zip(trained: Path) -> None:
    assert json.loads(record_path(trained).read_text())["weights"] == str(trained.with_suffix(".pt"))
    from_zip, config = load_checked_model(trained, "float")
    from_weights, weights_config = load_checked_model(trained.with_suffix(".pt"), "float")
    assert weights_config == config == {"N": N, "M": M, "reward": "levels"}
    assert from_weights.num_timesteps == from_zip.num_timesteps == 2048
    env = make_env("float", config, WORKLOAD)
    obs, _ = env.reset(seed=3)
    done = False
    while not done:
        mask = env.action_masks()
        action = from_zip.predict(obs, action_masks=mask, deterministic=True)[0]
        assert from_weights.predict(obs, action_masks=mask, deterministic=True)[0] == action
        probs = [m.policy.get_distribution(m.policy.obs_to_tensor(obs)[0]).distribution.probs for m in (from_zip, from_weights)]
        assert torch.equal(*probs)
        obs, _, done, _, _ = env.step(int(action))


def test_train_restores_from_the_weights_only_file(trained: Path, tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    result = call(folder, "train.py", "--restore", str(trained.with_suffix(".pt")), "--num_steps", "2048", *SMALL)
    assert result.returncode == 0, result.stderr
    assert "2048 timesteps from 2048 (restored from" in result.stdout
    saved = folder / "trained_models" / trained.name
    assert load_checked_model(saved.with_suffix(".pt"), "float")[0].num_timesteps == 4096


def test_another_versions_model_is_refused_by_evaluate_and_schedule(trained: Path, tmp_path: Path) -> None:
    folder = version_copy("direct_reconfig", tmp_path)  # float's spaces are direct_reconfig's
    for model in (trained, trained.with_suffix(".pt")):
        for script, argv in commands(model, folder).items():
            result = call(folder, script, *argv)
            assert result.returncode == 2, (script, result.stderr)
            assert "is a model of the float version, not direct_reconfig" in result.stderr and result.stderr.count("\n") == 1


def test_a_restore_whose_weights_do_not_fit_its_data_claims_nothing(trained: Path, tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    other = call(folder, "train.py", "--num_steps", "2048", "--net_arch", "8", *SMALL)
    assert other.returncode == 0, other.stderr
    with zipfile.ZipFile(folder / "trained_models" / trained.name) as small:
        mismatched = rewritten(trained, tmp_path / "mismatched.zip", policy_pth=small.read("policy.pth"))
    before = sorted((folder / "trained_models").iterdir())
    result = call(folder, "train.py", "--restore", str(mismatched), "--num_steps", "4096", *SMALL)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("train.py: error: --restore: ") and "cannot be loaded" in result.stderr and result.stderr.count("\n") == 1
    assert sorted((folder / "trained_models").iterdir()) == before


def test_a_rollout_larger_than_the_memory_is_refused_before_anything(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        training.parse_args("float", ["--rollout_steps", "10000000", "--num_steps", "10000000", "--N", "256", "--M", "1000"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "a rollout of 10000000 transitions at N=256 M=1000 needs" in err and "lower --rollout_steps, --N or --M" in err


def test_a_failure_after_the_claim_is_written_in_the_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the teacher broke")

    monkeypatch.setattr(stages, "demonstrations", broken)
    assert training.main("float", ["--num_steps", "2048", "--pretrain", "greedy", *SMALL], folder=tmp_path) == 1
    err = capsys.readouterr().err
    record = tmp_path / "trained_models" / f"bs3_N={N}_M={M}_s=2048_{WORKLOAD}.json"
    assert err == f"train.py: error: the run failed: RuntimeError: the teacher broke (recorded in {record})\n"
    assert json.loads(record.read_text())["status"] == "failed: RuntimeError: the teacher broke"


def test_the_next_run_marks_a_killed_runs_record_and_removes_its_temporary_files(tmp_path: Path, capsys) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    models = tmp_path / "trained_models"
    stem = f"bs3_N={N}_M={M}_s=999_{WORKLOAD}"
    claimed = claim(models / f"{stem}.zip", {"status": "running", "process": {"pid": gone.pid, "host": platform.node()}})
    elsewhere = claim(models / "other.zip", {"status": "running", "process": {"pid": gone.pid, "host": "another-machine"}})
    leftover = models / f".{stem}.k2j4.zip.tmp"
    leftover.write_bytes(b"half a model")
    assert training.main("float", ["--num_steps", "2048", *SMALL], folder=tmp_path) == 0
    out = capsys.readouterr().out
    assert f"note: {claimed.with_suffix('.json').name} was left 'running' by process {gone.pid}, which is gone: marked died, 1 temporary file(s) removed" in out
    assert json.loads(claimed.with_suffix(".json").read_text())["status"].startswith(f"died: process {gone.pid} ended while running")
    assert json.loads(elsewhere.with_suffix(".json").read_text())["status"] == "running"
    assert not leftover.exists()


def test_a_run_leaves_its_process_in_its_record(trained: Path) -> None:
    assert set(json.loads(record_path(trained).read_text())["process"]) == {"pid", "host"}


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a 64 KiB tmpfs that is already full; skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip() or 'mount failed'})")
    try:
        handle = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(handle, bytes(4096)):
                pass
        except OSError:
            pass
        finally:
            os.close(handle)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_leaves_no_file(full_disk: Path, tmp_path: Path) -> None:
    folder = version_copy("float", tmp_path)
    cases = {
        "evaluate.py": (["--episodes", "1", "--type_tasks", WORKLOAD, "--N", str(N), "--M", str(M), "--policies", "greedy", "--csv"], "e.csv"),
        "schedule.py": (["--baseline", "greedy", "--tasks", str(DATA / "rodinia_a30.txt"), "--gantt"], "g.png"),
    }
    for script, (argv, name) in cases.items():
        result = call(folder, script, *argv, str(full_disk / name))
        assert result.returncode == 1, (script, result.stderr)
        assert (
            result.stderr
            == f"{script}: error: {full_disk / name} not written (No space left on device); the {'table' if script == 'evaluate.py' else 'schedule'} above is complete\n"
        )
        assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]
