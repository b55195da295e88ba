"""Sweeps: train and evaluate many agents with Ray Tune, on this machine or on a Ray cluster: `sweep.py`.

    python sweep.py --version float,direct_reconfig --type_tasks all --seeds 3 --num_steps 2000000 --out sweeps/NAME

A trial is one (version, workload, seed, grid setting). `plan` checks the flags and the grid
against train.py's own parser and lists the trials; `trial` runs one on a Ray worker (an
ordinary `<version>/train.py --record FILE` run, then its final model and best checkpoint, named
by that record, on a fixed seeded episode set) and the baselines beside them; `report` records
each finished trial in `<out>/results/<trial>.json` and writes `results.csv` and `summary.md`.
This module is the command that drives them through Tune; `--resume` runs again only the trials
without an `ok` record.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray._private import ray_constants
from ray._private.authentication import authentication_token_setup
from ray.exceptions import AuthenticationError

from migsched.cli import CPSAT_SECONDS, OneLineParser, positive_float, seed_int
from migsched.sweep.plan import Sweep, SweepError, Trial, baseline_path, prepare, read_json, result_path, write_json
from migsched.sweep.report import Recorder, collect
from migsched.sweep.trial import ANSI, baseline_episodes, crash_record, first_line, run_trial
from migsched.versions import REPO_ROOT, VERSIONS, get_version
from migsched.workloads import WORKLOAD_NAMES

#: The address a local sweep's Ray listens on.
LOOPBACK = "127.0.0.1"


def yaml_default(name: str) -> str:
    """How --help states the versions' hyperparams.yaml default of N or M."""
    values = sorted({get_version(v).defaults[name] for v in VERSIONS})
    return "the versions' hyperparams.yaml, " + ("/".join(map(str, values)))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags of sweep.py; argparse's own errors exit with status 2."""
    parser = OneLineParser(prog="sweep.py", description="Train and evaluate every chosen version x workload x seed x grid setting with Ray Tune.")
    parser.add_argument("--version", dest="versions", required=True, help=f"one version or several, comma-separated, from {','.join(VERSIONS)}, or all")
    parser.add_argument("--type_tasks", default="all", help=f"workloads, comma-separated, from {','.join(WORKLOAD_NAMES)}, or all (default all)")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per setting: 0, 1, ... (default 1)")
    parser.add_argument("--num_steps", type=int, required=True, help="training timesteps per trial")
    parser.add_argument("--N", type=int, help=f"ready task slots (default: {yaml_default('N')})")
    parser.add_argument("--M", type=int, help=f"discretization levels (default: {yaml_default('M')})")
    parser.add_argument("--preset", help="train.py --preset for every trial (e.g. fast: its PPO settings, after its clone)")
    parser.add_argument("--grid", help="YAML file of train.py flags to sweep (see sweeps/example_grid.yaml)")
    parser.add_argument("--eval_freq", type=int, help="train.py --eval_freq: evaluations during training, which keep the best checkpoint (default: train.py's)")
    parser.add_argument("--eval_episodes", type=int, default=20, help="seeded episodes of the final evaluation (and of train.py's) (default 20)")
    parser.add_argument(
        "--seed",
        dest="eval_seed",
        type=seed_int,
        default=0,
        help="seed of the first final-evaluation episode; episode k uses seed + k (default 0; training seeds: --seeds)",
    )
    parser.add_argument("--cpsat_time", type=positive_float, default=CPSAT_SECONDS, help=f"CP-SAT seconds per episode (default {CPSAT_SECONDS:g})")
    parser.add_argument("--no_cpsat", action="store_true", help="skip the CP-SAT reference (the / cpsat columns stay empty)")
    parser.add_argument("--address", help="join this Ray cluster (e.g. ray://host:10001 or auto) instead of starting Ray here")
    parser.add_argument("--cpus_per_trial", type=positive_float, default=1.0, help="CPUs Ray reserves per trial and per baseline job (default 1)")
    parser.add_argument("--gpus_per_trial", type=float, default=0.0, help="GPUs per trial; above 0 train.py runs with --device gpu (default 0)")
    parser.add_argument("--out", required=True, help="the sweep's folder (new, unless --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --out: run only the trials without an ok result")
    return parser.parse_args(argv)


@contextlib.contextmanager
def loopback_node() -> Iterator[None]:
    """While Ray starts or joins inside: this machine's Ray node is 127.0.0.1, its processes listening there only.

    Ray 2.60 binds its servers (GCS, raylet, workers, agents) to every interface unless the node's
    IP is a loopback address, and `ray.init` turns a loopback node IP into the machine's network
    address unless RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER is 0 (its switch for Ray on one macOS or
    Windows machine). The switch is off inside: the Ray processes started there inherit it."""
    saved = os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR], ray_constants.ENABLE_RAY_CLUSTER = "0", False
    try:
        yield
    finally:
        if saved[0] is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


def start_local_ray(**options: Any) -> None:
    """Start a new Ray instance on this machine that listens on 127.0.0.1 only, without a dashboard
    ("local": even where RAY_ADDRESS or `ray start` names a running cluster); `options` go to
    `ray.init` (tests give `num_cpus`)."""
    with loopback_node():
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False, **options)


def is_loopback_address(address: str) -> bool:
    """Whether a `--address` HOST:PORT names this machine's loopback interface (a cluster made on one machine)."""
    host = address.rpartition(":")[0].strip("[]") if ":" in address else address
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def use_auth_token() -> bool:
    """Before joining a cluster: send Ray's authentication token when RAY_AUTH_MODE is unset and a
    token is at hand (RAY_AUTH_TOKEN, the file RAY_AUTH_TOKEN_PATH names, or ~/.ray/auth_token),
    as `ray start` and `ray.init("auto")` do, where `ray.init("HOST:PORT")` would connect without
    it and be refused. True if token authentication is on for this process (and its children)."""
    logging.getLogger(authentication_token_setup.__name__).setLevel(logging.ERROR)  # its note speaks of starting a cluster
    return authentication_token_setup.maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def start_ray(sweep: Sweep) -> bool:
    """Join the cluster at --address, or start Ray on this machine; an initialised Ray session (a
    notebook, a test) is used as it is. True if this call started or joined it."""
    if ray.is_initialized():
        return False
    if sweep.args.address:
        use_auth_token()
        try:
            with loopback_node() if is_loopback_address(sweep.args.address) else contextlib.nullcontext():
                ray.init(address=sweep.args.address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, TimeoutError, ValueError, AuthenticationError) as exc:
            raise SweepError(
                f"--address {sweep.args.address}: cannot join the Ray cluster ({first_line(str(exc))}); a cluster with token authentication "
                "(Ray's default) needs its token here too: ~/.ray/auth_token, RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH (see docs/sweeps.md)"
            ) from None
        return True
    start_local_ray()
    resources = ray.cluster_resources()
    for name, wanted in (("CPU", sweep.args.cpus_per_trial), ("GPU", sweep.args.gpus_per_trial)):
        if wanted > resources.get(name, 0):
            ray.shutdown()
            raise SweepError(f"--{name.lower()}s_per_trial {wanted:g}: this machine has {resources.get(name, 0):g} {name}s")
    return True


def trial_name(trial: Any) -> str:
    """Tune's name and folder name of a trial: its id."""
    return trial.config["trial"]["trial"]


def run_trials(sweep: Sweep, todo: list[Trial], recorder: Recorder) -> None:
    """Run `todo` with Ray Tune; every trial that finishes is recorded through `recorder`."""
    client = ray.util.client.ray.is_connected()  # Tune's driver then runs on the head node
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic output, silent at verbose=0
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # results.csv replaces Tune's own result files
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)  # a failed trial: our record, not Tune's traceback
    trainable = tune.with_resources(run_trial, {"cpu": sweep.args.cpus_per_trial, "gpu": sweep.args.gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([t.spec() for t in todo]), "settings": sweep.settings},
        tune_config=tune.TuneConfig(trial_name_creator=trial_name, trial_dirname_creator=trial_name),
        run_config=tune.RunConfig(
            name=time.strftime("tune-%Y%m%d-%H%M%S"),
            storage_path=None if client else str(sweep.out),  # a client's folder is not on the head node
            verbose=0,
            callbacks=[] if client else [recorder],
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    for result in tuner.fit():
        if result.metrics and "record" in result.metrics:
            recorder.record(result.metrics["record"])
        elif result.error is not None and result.config:
            recorder.record(crash_record(result.config["trial"], sweep.settings, f"{type(result.error).__name__}: {first_line(str(result.error))}"))


class SigtermAsSigint:
    """A SIGTERM handler that stops the sweep as SIGINT (Ctrl+C) does: Tune ends the running trials
    and the tables of the finished ones are written. Ray's own handler, which `ray.init` installs,
    exits at once with status 1 and a C++ stack dump and writes nothing."""

    def __init__(self) -> None:
        self.received = False

    def handle(self, signum: int, frame: Any) -> None:
        self.received = True
        signal.raise_signal(signal.SIGINT)

    def install(self) -> None:
        """Handle SIGTERM here (again after `ray.init`, which replaces the handler)."""
        signal.signal(signal.SIGTERM, self.handle)

    def exit_status(self) -> int:
        """The status of an interrupted sweep: 143 after SIGTERM, 130 after SIGINT."""
        return 128 + (signal.SIGTERM if self.received else signal.SIGINT)


def run(sweep: Sweep, command: Sequence[str], stop: SigtermAsSigint) -> int:
    """Run the sweep's missing trials and baselines, then write its tables: 0 if every trial is ok,
    1 if some failed, 130 (SIGINT) or 143 (SIGTERM, through `stop`) if it was interrupted. A new
    sweep's folder starts with sweep.json: its defining settings and `command`, its flags."""
    began = time.perf_counter()
    started = start_ray(sweep)
    stop.install()
    if not sweep.args.resume:
        write_json(sweep.out / "sweep.json", {"settings": sweep.defining, "command": ["sweep.py", *command]})
    done = {t.id for t in sweep.trials if (read_json(result_path(sweep.out, t.id)) or {}).get("status") == "ok"}
    todo = [t for t in sweep.trials if t.id not in done]
    pairs = list(dict.fromkeys((t.version, t.workload) for t in sweep.trials))
    missing = [pair for pair in pairs if not baseline_path(sweep.out, *pair).is_file()]
    recorder = Recorder(sweep.out, sweep.settings, len(sweep.trials), len(done))
    interrupted = False
    try:
        cpus, gpus = (ray.cluster_resources().get(k, 0) for k in ("CPU", "GPU"))
        print(
            f"sweep {sweep.out}: {len(sweep.trials)} trials, {len(done)} already ok, {len(todo)} to run; "
            f"Ray {'at ' + sweep.args.address if sweep.args.address else 'on this machine'}: {cpus:g} CPUs, {gpus:g} GPUs, "
            f"{sweep.args.cpus_per_trial:g} CPU(s) and {sweep.args.gpus_per_trial:g} GPU(s) per trial",
            flush=True,
        )
        remote = ray.remote(baseline_episodes).options(num_cpus=sweep.args.cpus_per_trial, max_retries=0)
        futures = {remote.remote(version, workload, sweep.settings): (version, workload) for version, workload in missing}
        try:
            if todo:
                run_trials(sweep, todo, recorder)
            interrupted = len(recorder.records) < len(todo)
            for future, (version, workload) in futures.items():
                if interrupted:
                    ray.cancel(future, force=True)
                    continue
                try:
                    write_json(baseline_path(sweep.out, version, workload), ray.get(future))
                except ray.exceptions.RayError as exc:
                    print(f"baselines of {version} {workload} failed: {ANSI.sub('', str(exc)).strip().splitlines()[-1]}", flush=True)
        except KeyboardInterrupt:
            interrupted = True
    finally:
        if started:
            ray.shutdown()
    _, failed = collect(sweep, recorder.records, time.perf_counter() - began)
    if interrupted:
        print(f"interrupted: continue with the same command and --resume (finished trials are kept in {sweep.out / 'results'})")
        return stop.exit_status()
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, scripts: Path = REPO_ROOT) -> int:
    """The `sweep.py` command; returns the exit status. The trials run `<scripts>/<version>/train.py`
    (default: this repository's; tests point it at copies so that models go there)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    stop = SigtermAsSigint()
    previous = signal.signal(signal.SIGTERM, stop.handle)
    try:
        return run(prepare(args, scripts), argv, stop)
    except SweepError as exc:
        print(f"sweep.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweep.py: interrupted", file=sys.stderr)
        return stop.exit_status()
    finally:
        signal.signal(signal.SIGTERM, previous)
