"""sweep.py: the plan, the grid, the tables, bad input, a trial read from train.py's record,
and a tiny local Ray sweep with a setting whose train.py run fails, then resumed.

The sweep trains real `train.py` subprocesses (N=3, M=4, one 2048-step rollout) on a Ray session
of 2 CPUs that this module starts. They run copies of the version folders' scripts in a
temporary folder, so their models never go to the repository's trained_models/.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest
import ray
from conftest import version_copy

from migsched.sweep import main, parse_args, start_local_ray, start_ray
from migsched.sweep.plan import (
    SET_BY_SWEEP,
    SweepError,
    Trial,
    check_grid,
    env_config,
    is_switch,
    load_grid,
    plan,
    ppo_stages,
    prepare,
    train_argv,
    train_flags,
)
from migsched.sweep.report import summary_table, trial_row
from migsched.sweep.trial import trial_record
from migsched.versions import get_version

psutil = pytest.importorskip("psutil", reason="psutil lists Ray's sockets; Ray vendors it and puts it on sys.path on import")
ROOT = Path(__file__).resolve().parent.parent
STEPS = 2048  # one rollout of --preset fast
VERSIONS, WORKLOADS = ("float", "entropy"), ("good_scaling",)  # 2 x 1 x 2 batch sizes: four trials, half of them crashing
EPISODES = 3


# --- the plan and the grid --------------------------------------------------------------------


def test_the_plan_is_every_version_workload_seed_and_grid_combination() -> None:
    trials = plan(["float", "online"], ["wide_times"], 2, {"batch_size": [64, 512], "learning_rate": [0.001]})
    assert len(trials) == 2 * 1 * 2 * 2
    assert trials[0] == Trial("float", "wide_times", 0, (("batch_size", 64), ("learning_rate", 0.001)))
    assert trials[0].id == "float-wide_times-seed0-batch_size=64-learning_rate=0.001"
    assert [t.id for t in trials][-1] == "online-wide_times-seed1-batch_size=512-learning_rate=0.001"
    assert len({t.id for t in trials}) == len(trials)
    assert [t.id for t in plan(["float"], ["wide_times"], 1, {})] == ["float-wide_times-seed0"]


def test_train_argv_sets_the_sweeps_flags_then_the_grid_setting() -> None:
    spec = Trial("online", "bad_scaling", 2, (("net_arch", "64,64"), ("ortho", True), ("quiet", False))).spec()
    settings = {"num_steps": 5000, "N": 3, "M": 4, "device": "cpu", "eval_episodes": 7, "preset": "fast", "eval_freq": None, "switches": ["ortho", "quiet"]}
    argv = train_argv(spec, settings, Path("/o/records/t.json"))
    assert argv == [
        "--num_steps", "5000", "--N", "3", "--M", "4", "--type_tasks", "bad_scaling", "--seed", "2", "--device", "cpu",
        "--eval_episodes", "7", "--record", "/o/records/t.json", "--preset", "fast", "--stages", "clone,ppo", "--net_arch", "64,64", "--ortho",
    ]  # fmt: skip


def test_every_trial_trains_ppo_for_the_sweeps_steps_whatever_the_presets_recipe() -> None:
    def stages(version: str, preset: str | None, **grid: str) -> list[str]:
        return ppo_stages(Trial(version, "mix_scaling_soft", 0, tuple(grid.items())).spec(), preset)

    assert get_version("float").settings("fast", "mix_scaling_soft")["stages"] == "clone,self_imitation"  # no PPO in the recipe itself
    assert stages("float", "fast") == ["--stages", "clone,ppo"]  # the preset clones greedy first
    assert stages("float", "fast", pretrain="none") == ["--stages", "ppo"]
    assert stages("float", None) == ["--stages", "ppo"]  # the original's PPO alone
    assert stages("online", None, pretrain="static") == ["--stages", "clone,ppo"]
    assert stages("float", "fast", stages="clone,ppo:0.5,self_imitation") == []  # the grid's own recipe


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def write_bytes(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("batch_size: [64, 512\n", "not valid YAML"),
        ("- 64\n- 512\n", "expected a mapping"),
        ("", "expected a mapping"),
        ("batch_size: []\n", "non-empty list"),
        ("batch_size: {a: 1}\n", "non-empty list"),
        ("batch_size: [64, 64]\n", "listed twice"),
    ],
)
def test_a_bad_grid_file_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message) as raised:
        load_grid(write(tmp_path / "grid.yaml", text))
    assert "\n" not in str(raised.value)


@pytest.fixture(scope="module")
def flags() -> dict[str, argparse.Action]:
    """The flags of float's train.py parser."""
    return train_flags("float")


def test_grid_keys_must_be_free_train_py_flags(flags: dict[str, argparse.Action]) -> None:
    assert flags["batch_size"].dest == "batch_size" and flags["vec_env"].choices == ("subproc", "dummy", "batched")
    assert is_switch(flags["progress_bar"]) and not is_switch(flags["batch_size"])
    assert set(SET_BY_SWEEP) <= set(flags), "every flag sweep.py sets is one train.py has"
    with pytest.raises(SweepError, match="not train.py flags: bogus, lr .float/train.py has .*batch_size"):
        check_grid({"batch_size": [64], "bogus": [1], "lr": [0.1]}, flags, "g.yaml", "float")
    with pytest.raises(SweepError, match="not sweepable: num_steps"):
        check_grid({"num_steps": [10]}, flags, "g.yaml", "float")
    with pytest.raises(SweepError, match="not sweepable: record"):
        check_grid({"record": ["r.json"]}, flags, "g.yaml", "float")
    switch = argparse.ArgumentParser().add_argument("--ortho", action="store_true")
    with pytest.raises(SweepError, match="on/off flags take true or false: ortho"):
        check_grid({"ortho": [1]}, {**flags, "ortho": switch}, "g.yaml", "float")
    check_grid({"ortho": [True, False]}, {**flags, "ortho": switch}, "g.yaml", "float")


def test_the_example_grid_fits_every_versions_train_py() -> None:
    grid = load_grid(str(ROOT / "sweeps" / "example_grid.yaml"))
    for version in ("one_hot", "float", "entropy", "direct_reconfig", "online"):
        check_grid(grid, train_flags(version), "sweeps/example_grid.yaml", version)
    assert len(plan(["float"], ["wide_times"], 1, grid)) == 4


# --- one trial, from train.py's record ------------------------------------------------------------


SILENT_TRAIN = """import contextlib, os, sys
from pathlib import Path
from migsched.training import main
print("model saved: /nowhere/printed.zip")
with open(os.devnull, "w") as nothing, contextlib.redirect_stdout(nothing):
    status = main("float", folder=Path(__file__).resolve().parent)
raise SystemExit(status)
"""


def trial_settings(out: Path, scripts: Path) -> dict:
    return {
        "out": str(out), "scripts": str(scripts), "num_steps": STEPS, "N": 3, "M": 4, "preset": "fast", "eval_freq": 0,
        "eval_episodes": EPISODES, "eval_seed": 0, "cpsat_time": None, "device": "cpu", "switches": [],
    }  # fmt: skip


def test_a_trial_takes_its_model_and_figures_from_train_pys_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    (tmp_path / "versions" / "float").mkdir(parents=True)
    (tmp_path / "versions" / "float" / "train.py").write_text(SILENT_TRAIN)
    spec = Trial("float", "good_scaling", 0, (("pretrain_episodes", 100),)).spec()  # not the preset's 20,000: a minute of cloning
    record = trial_record(spec, trial_settings(tmp_path / "out", tmp_path / "versions"))
    assert record["status"] == "ok", record["log_tail"]
    assert record["model"] == str(tmp_path / "versions" / "float" / "trained_models" / f"bs3_N=3_M=4_s={STEPS}_30min_good_scaling.zip")
    assert Path(record["model"]).is_file() and record["best_model"] is None and record["best"] is None
    assert record["training"]["timesteps"] == STEPS and record["wall_clock_s"] == record["training"]["wall_clock_s"] > 0
    assert len(record["final"]["makespan"]) == EPISODES
    assert "rollout/" not in Path(record["log"]).read_text(), "train.py printed nothing of its training"


def test_a_trial_without_a_record_fails_even_with_an_old_one_there(tmp_path: Path) -> None:
    (tmp_path / "versions" / "float").mkdir(parents=True)
    (tmp_path / "versions" / "float" / "train.py").write_text('print("model saved: /nowhere/printed.zip")\n')
    stale = tmp_path / "out" / "records" / "float-good_scaling-seed0.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"status": "finished", "model": "/nowhere/old.zip"}))
    record = trial_record(Trial("float", "good_scaling", 0, ()).spec(), trial_settings(tmp_path / "out", tmp_path / "versions"))
    assert record["status"] == "failed" and record["model"] is None
    assert record["error"] == f"train.py wrote no record to {stale}"
    assert record["log_tail"] == "model saved: /nowhere/printed.zip\n"


# --- the tables -------------------------------------------------------------------------------


def record(seed: int, final: list[float], status: str = "ok") -> dict:
    episodes = {"makespan": final, "lower_bound": [10.0, 20.0]}
    return {
        "trial": f"float-wide_times-seed{seed}", "status": status, "version": "float", "workload": "wide_times", "seed": seed,
        "hyperparameters": {"batch_size": 64}, "wall_clock_s": 60.0 * (seed + 1), "eval_s": 1.0, "final": episodes if status == "ok" else None,
        "best": None, "model": "m.zip", "best_model": None, "node": "n", "log": "x.log", "error": None if status == "ok" else "train.py exited with status 2",
    }  # fmt: skip


BASELINES = {
    "lower_bound": [10.0, 20.0],
    "makespan": {"random": [20.0, 40.0], "static": [12.0, 24.0], "greedy": [11.0, 22.0], "far": [15.0, 30.0], "cpsat": [10.0, 25.0]},
    "cpsat_proven": 1,
}


def test_a_row_holds_the_agents_and_baselines_figures_on_the_same_episodes() -> None:
    row = trial_row(record(0, [12.0, 30.0]), BASELINES, ["batch_size"], 1000)
    assert row["final_ratio"] == pytest.approx((1.2 + 1.5) / 2)
    assert row["final_cpsat"] == pytest.approx((1.2 + 1.2) / 2)
    assert row["best_ratio"] is None and row["best_cpsat"] is None
    assert row["static_ratio"] == pytest.approx(1.2) and row["static_cpsat"] == pytest.approx((1.2 + 0.96) / 2)
    assert row["cpsat_ratio"] == pytest.approx((1.0 + 1.25) / 2) and row["cpsat_proven"] == 1
    assert row["batch_size"] == 64 and row["num_steps"] == 1000
    failed = trial_row(record(1, [], status="failed"), None, ["batch_size"], 1000)
    assert failed["final_ratio"] is None and failed["static_ratio"] is None and failed["error"].startswith("train.py exited")


def test_the_summary_gives_mean_and_spread_over_the_seeds_that_finished() -> None:
    rows = [trial_row(r, BASELINES, ["batch_size"], 1000) for r in (record(0, [12.0, 30.0]), record(1, [10.0, 20.0]), record(2, [], "failed"))]
    header, _, line = summary_table(rows, ["batch_size"]).splitlines()
    cells = [c.strip() for c in line.strip("|").split("|")]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert dict(zip(columns, cells)) == {
        "version": "float", "workload": "wide_times", "batch_size": "64", "seeds ok": "2/3", "final": "1.175 ± 0.247", "best": "-",
        "final / cpsat": "1.050 ± 0.212", "best / cpsat": "-", "random": "2.000", "static": "1.200", "greedy": "1.100", "far": "1.500",
        "cpsat": "1.125", "training min": "1.500 ± 0.707",
    }  # fmt: skip


# --- bad input --------------------------------------------------------------------------------


def fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of `sweep.py argv` (exit status 2)."""
    try:
        status = main(argv)
    except SystemExit as exited:
        status = exited.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("sweep.py: error: ") and err.count("\n") == 1, err
    return err


def test_bad_input_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "sweep")
    base = ["--num_steps", "100", "--out", out]
    bad_yaml = write(tmp_path / "bad.yaml", "batch_size: [1,\n")
    unknown_key = write(tmp_path / "unknown.yaml", "batch_sise: [64]\n")
    cases = [
        (["--version", "float,fast"], "--version: unknown 'fast'"),
        (["--version", "float", "--N", "100000"], "--N must be a positive integer of at most 256, got 100000"),
        (["--version", "float", "--M", "0"], "--M must be a positive integer, got 0"),
        (["--version", "float", "--eval_episodes", "10001"], "--eval_episodes must be a positive integer of at most 10000, got 10001"),
        (["--version", "float", "--seeds", "100001"], "--seeds must be a positive integer of at most 100000"),
        (["--version", "float", "--type_tasks", "heavy"], "--type_tasks: unknown 'heavy'"),
        (["--version", "float", "--seeds", "0"], "--seeds must be a positive integer"),
        (["--version", "float", "--grid", str(tmp_path / "missing.yaml")], "cannot read it"),
        (["--version", "float", "--grid", bad_yaml], "not valid YAML"),
        (["--version", "float", "--grid", unknown_key], "not train.py flags: batch_sise"),
        (["--version", "float", "--preset", "slow"], "--preset slow: float/train.py knows fast"),
        (["--version", "float", "--resume"], "is not a sweep folder"),
        (["--version", "float", "--seeds", "two"], "invalid int value"),
    ]
    for argv, message in cases:
        assert message in fails([*argv, *base], capsys)
    assert not Path(out).exists()
    Path(out).mkdir()
    assert "exists: add --resume" in fails(["--version", "float", *base], capsys)


def test_bad_numbers_and_binary_grids_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--version", "float", "--num_steps", "100", "--out", str(tmp_path / "sweep")]
    archive = tmp_path / "grid.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("grid.yaml", "batch_size: [64, 512]\n" * 50)
    noise = write_bytes(tmp_path / "noise.yaml", b"batch_size: \xff\xfe\x00\x81")
    cases = [
        (["--grid", str(archive)], f"--grid {archive}: not a text file (byte "),
        (["--grid", noise], f"--grid {noise}: not a text file (byte 12 is not UTF-8)"),
        (["--cpsat_time", "nan"], "argument --cpsat_time: expected a finite number above 0"),
        (["--cpus_per_trial", "inf"], "argument --cpus_per_trial: expected a finite number above 0"),
        (["--gpus_per_trial", "nan"], "--gpus_per_trial must be 0 or more"),
        (["--seed", "-1"], "argument --seed: a seed must be in 0..4294967295"),
        (["--seed", "4294967295", "--eval_episodes", "2"], "the last episode's seed would pass 4294967295"),
    ]
    for argv, message in cases:
        assert message in fails([*argv, *base], capsys), argv
    assert not (tmp_path / "sweep").exists()


def test_every_trials_flags_pass_train_pys_parser_before_ray_starts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--version", "float,entropy", "--type_tasks", "wide_times", "--out", str(tmp_path / "sweep")]
    err = fails([*base, "--num_steps", "100"], capsys)
    assert err == (
        "sweep.py: error: trial float-wide_times-seed0: train.py: error: --num_steps 100 is less than one rollout: "
        "give at least 2048 (the transitions of one rollout with --n_envs 1)\n"
    )
    grid = write(tmp_path / "grid.yaml", "batch_size: [512, 1]\n")
    err = fails([*base, "--num_steps", "4096", "--grid", grid], capsys)
    assert err.startswith("sweep.py: error: trial float-wide_times-seed0-batch_size=1: train.py: error: --batch_size must be in 2..2048")
    assert not ray.is_initialized() and not (tmp_path / "sweep").exists()


def test_n_m_and_the_online_queue_default_to_the_versions_hyperparams(tmp_path: Path) -> None:
    sweep = prepare(parse_args(["--version", "float,online", "--num_steps", "2048", "--out", str(tmp_path / "s")]))
    defaults = get_version("online").defaults
    assert (
        (sweep.defining["N"], sweep.defining["M"]) == (defaults["N"], defaults["M"]) == (get_version("float").defaults["N"], get_version("float").defaults["M"])
    )
    assert env_config("online", 3, 4) == {"N": 3, "M": 4, "queue_len": defaults["queue_len"]} and env_config("float", 3, 4) == {"N": 3, "M": 4}
    assert sweep.settings["scripts"] == str(ROOT) and not (tmp_path / "s").exists()


def test_the_command_line_error_has_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), "--version", "nope", "--num_steps", "5", "--out", str(tmp_path / "s")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("sweep.py: error: --version: unknown 'nope'") and done.stderr.count("\n") == 1
    assert done.stdout == ""


# --- a tiny local sweep -------------------------------------------------------------------------


def listening(process: psutil.Process) -> list[tuple[str, str, int]]:
    """(process name, address, port) of every TCP socket that `process` and its descendants listen on."""
    found = []
    for proc in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += [(proc.name(), c.laddr.ip, c.laddr.port) for c in proc.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    return found


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also as an IPv4-mapped IPv6 address (::ffff:127.0.0.1)."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or bool(getattr(ip, "ipv4_mapped", None) and ip.ipv4_mapped.is_loopback)


def test_a_local_sweeps_ray_listens_on_the_loopback_interface_only(tmp_path: Path) -> None:
    assert not ray.is_initialized()
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::1") and not is_loopback("::") and not is_loopback("0.0.0.0")
    sweep = prepare(parse_args(["--version", "float", "--num_steps", "2048", "--out", str(tmp_path / "s")]))
    assert start_ray(sweep)
    try:
        assert ray.get(ray.remote(lambda: 1).remote()) == 1, "a worker process runs too"
        sockets = listening(psutil.Process())
    finally:
        ray.shutdown()
    names = {name for name, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names and any(name.startswith("ray::") for name in names), sockets
    assert [s for s in sockets if not is_loopback(s[1])] == []


#: Joins the cluster at argv[1] the way sweep.py does and prints its CPUs and node names.
JOIN = """import sys
import ray
from migsched.sweep import parse_args, start_ray
from migsched.sweep.plan import prepare
sweep = prepare(parse_args(["--version", "float", "--num_steps", "2048", "--address", sys.argv[1], "--out", sys.argv[2]]))
assert start_ray(sweep)
print("joined", ray.cluster_resources().get("CPU"), sorted(k for k in ray.cluster_resources() if k.startswith("node:")))
ray.shutdown()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def head(tmp_path: Path):
    """A Ray head on 127.0.0.1 with token authentication (its token in a file), as `ray start --head`
    makes one; yields its address and the environment that names the token file. Stopped by
    SIGTERM to its `ray start --block`, which ends the processes it started."""
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    port = free_port()
    env = dict(os.environ, RAY_AUTH_TOKEN_PATH=str(token))
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port)]
    sessions = tempfile.TemporaryDirectory(prefix="ray-", ignore_cleanup_errors=True)  # short: Ray's socket paths have at most 107 bytes
    command += ["--num-cpus", "1", "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", sessions.name]
    log = tmp_path / "head.log"
    with open(log, "w") as out:
        head_env = env | {"RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # "0": the node keeps 127.0.0.1 (see loopback_node)
        process = subprocess.Popen(command, env=head_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(120):
            if process.poll() is not None or "Ray runtime started" in log.read_text():
                break
            time.sleep(0.5)
        if process.poll() is not None or "Ray runtime started" not in log.read_text():
            pytest.skip(f"no Ray head starts here: {log.read_text()[-500:]}")
        yield f"127.0.0.1:{port}", env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        sessions.cleanup()


def test_a_sweep_joins_a_cluster_with_token_authentication(head, tmp_path: Path) -> None:
    address, env = head
    env = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"} | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", JOIN, address, str(tmp_path / "s")], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "joined 1.0 ['node:127.0.0.1', 'node:__internal_head__']\n"


#: sweep.py's command with the version scripts of argv[1] (copies, so that models go there).
SWEEP = """import sys
from pathlib import Path
from migsched.sweep import main
raise SystemExit(main(sys.argv[2:], scripts=Path(sys.argv[1])))
"""


def test_sigterm_stops_the_sweep_as_sigint_does(tmp_path: Path) -> None:
    """4 trials, 2 at a time on Ray's 2 CPUs, SIGTERM as the first one is recorded: the finished
    trials are in the tables, the exit status is 143, no train.py is left running."""
    scripts = tmp_path / "versions"
    version_copy("float", scripts)
    grid, out = write(tmp_path / "grid.yaml", "pretrain: none\n"), tmp_path / "out"
    argv = ["--version", "float", "--type_tasks", "good_scaling", "--seeds", "4", "--num_steps", str(STEPS), "--N", "3", "--M", "4", "--preset", "fast"]
    argv += ["--grid", grid, "--eval_freq", "0", "--eval_episodes", str(EPISODES), "--no_cpsat", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", RAY_ADDRESS="")
    process = subprocess.Popen([sys.executable, "-c", SWEEP, str(scripts), *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("[1/4] "):
                process.send_signal(signal.SIGTERM)
                break
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, "".join(lines) + stdout + stderr
    assert "interrupted: continue with the same command and --resume" in stdout and "Traceback" not in stderr and "SIGTERM received" not in stdout + stderr
    rows = read_csv(out / "results.csv")
    assert 1 <= len(rows) < 4 and rows[0]["status"] == "ok"
    assert (out / "summary.md").is_file()
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if str(scripts) in " ".join(p.info["cmdline"] or [])]
    assert left == [], "a train.py of the sweep still runs"


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray session of 2 CPUs, on the loopback interface, that every sweep of this module joins."""
    start_local_ray(num_cpus=2)
    yield
    ray.shutdown()


def sweep_argv(out: Path, grid: str) -> list[str]:
    return [
        "--version", ",".join(VERSIONS), "--type_tasks", ",".join(WORKLOADS), "--seeds", "1", "--num_steps", str(STEPS), "--N", "3", "--M", "4",
        "--preset", "fast", "--grid", grid, "--eval_freq", "1024", "--eval_episodes", str(EPISODES), "--cpsat_time", "1", "--out", str(out),
    ]  # fmt: skip


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


#: Put before a copied train.py: its runs with --batch_size 256 (a value its parser accepts) fail as a crash would.
CRASH_ON_256 = """import sys
if sys.argv[sys.argv.index("--batch_size") + 1] == "256":
    raise SystemExit("train.py: crashed (the test's stand-in for a failure at run time)")
"""


@pytest.fixture(scope="module")
def sweep(ray_session, tmp_path_factory: pytest.TempPathFactory):
    """2 versions x 2 workloads x 1 seed x batch sizes 512 and 256 (whose runs crash), clones of 100 episodes, then the
    same sweep resumed, with copies of the versions' scripts; yields both runs' statuses and outputs."""
    folder = tmp_path_factory.mktemp("sweep")
    scripts = folder / "versions"
    for version in VERSIONS:
        script = version_copy(version, scripts) / "train.py"
        script.write_text(CRASH_ON_256 + script.read_text())
    out = folder / "out"
    grid = write(folder / "grid.yaml", "batch_size: [512, 256]\npretrain_episodes: 100  # not the preset's 20,000: a minute per trial\n")
    runs = {}
    for name, extra in (("first", []), ("resumed", ["--resume"])):
        before = {p.name: p.stat().st_mtime_ns for p in (out / "logs").glob("*.log")} if out.exists() else {}
        status = main([*sweep_argv(out, grid), *extra], scripts=scripts)
        runs[name] = {"status": status, "logs_before": before, "rows": read_csv(out / "results.csv"), "summary": (out / "summary.md").read_text()}
    return out, runs


def test_the_sweep_writes_one_row_per_trial(sweep) -> None:
    out, runs = sweep
    first = runs["first"]
    assert first["status"] == 1, "some trials failed"
    assert json.loads((out / "sweep.json").read_text())["command"] == ["sweep.py", *sweep_argv(out, str(out.parent / "grid.yaml"))]
    rows = first["rows"]
    assert sorted(r["trial"] for r in rows) == sorted(t.id for t in plan(VERSIONS, WORKLOADS, 1, {"batch_size": [512, 256], "pretrain_episodes": [100]}))
    ok = [r for r in rows if r["batch_size"] == "512"]
    assert [r["status"] for r in ok] == ["ok"] * len(VERSIONS) * len(WORKLOADS)
    for row in ok:
        assert int(row["cpsat_proven"]) == EPISODES, "3-task batches: CP-SAT proves its schedules optimal"
        for who in ("final", "best", "random", "static", "greedy", "far"):
            assert float(row[f"{who}_ratio"]) >= 1.0, "no schedule beats the lower bound"
            assert float(row[f"{who}_cpsat"]) >= 0.999, "nor the optimum that ignores reconfiguration (times rounded to 1 ms)"
        assert Path(row["model"]).is_file() and Path(row["best_model"]).is_file() and f"_s={STEPS}_" in row["model"]
        assert Path(row["model"]).is_relative_to(out.parent / "versions"), "the trial ran the copy's train.py"
        assert float(row["wall_clock_s"]) > 0 and int(row["num_steps"]) == STEPS
    table = [line for line in first["summary"].splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(VERSIONS) * len(WORKLOADS) * 2, "the header and one line per version, workload and batch size"
    assert all(" 1/1 " in line for line in table if "| 512 |" in line)


def test_the_trial_and_the_baselines_play_the_same_episodes(sweep) -> None:
    out, _ = sweep
    for version in VERSIONS:
        for workload in WORKLOADS:
            baselines = json.loads((out / "baselines" / f"{version}-{workload}.json").read_text())
            trial = json.loads((out / "results" / f"{version}-{workload}-seed0-batch_size=512-pretrain_episodes=100.json").read_text())
            assert trial["final"]["lower_bound"] == baselines["lower_bound"] == trial["best"]["lower_bound"]
            assert trial["training"]["status"] == "finished" and trial["training"]["timesteps"] == STEPS
            assert trial["model"] == trial["training"]["model"] and trial["best_model"] == trial["training"]["best_evaluation"]["model"]
            assert trial["wall_clock_s"] == trial["training"]["wall_clock_s"] and Path(trial["eval_csv"]).is_file()
            assert json.loads((out / "records" / f"{trial['trial']}.json").read_text()) == trial["training"]
            assert len(baselines["lower_bound"]) == EPISODES and set(baselines["makespan"]) == {"random", "static", "greedy", "far", "cpsat"}


def test_a_failing_trial_is_reported_with_its_log_and_the_others_go_on(sweep) -> None:
    _, runs = sweep
    failed = [r for r in runs["first"]["rows"] if r["batch_size"] == "256"]
    assert [r["status"] for r in failed] == ["failed"] * len(VERSIONS) * len(WORKLOADS)
    for row in failed:
        assert row["error"] == "train.py exited with status 1" and row["final_ratio"] == ""
        assert "train.py: crashed (the test's stand-in" in Path(row["log"]).read_text()
        assert f"- {row['trial']}: train.py exited with status 1 (log: {row['log']})" in runs["first"]["summary"]


def test_resume_reruns_only_the_trials_that_did_not_finish_ok(sweep) -> None:
    out, runs = sweep
    resumed = runs["resumed"]
    logs_now = {p.name: p.stat().st_mtime_ns for p in (out / "logs").glob("*.log")}
    for row in resumed["rows"]:
        name = Path(row["log"]).name
        assert (logs_now[name] == resumed["logs_before"][name]) == (row["status"] == "ok"), row["trial"]
    assert resumed["status"] == 1 and len(resumed["rows"]) == 2 * len(VERSIONS) * len(WORKLOADS)
    assert [r for r in resumed["rows"] if r["status"] == "ok"] == [r for r in runs["first"]["rows"] if r["status"] == "ok"]


def test_resume_keeps_the_sweeps_settings(sweep, capsys) -> None:
    out, _ = sweep
    argv = sweep_argv(out, str(out.parent / "grid.yaml"))
    argv[argv.index("--num_steps") + 1] = str(STEPS + 1)
    err = fails([*argv, "--resume"], capsys)
    assert "these settings differ from" in err and err.rstrip().endswith(": num_steps")
    assert "exists: add --resume" in fails(sweep_argv(out, str(out.parent / "grid.yaml")), capsys)
