"""Sweeps: train and evaluate many agents with Ray Tune, on this machine or on a Ray cluster: `sweep.py`.

    python sweep.py --versions float,direct_reconfig --type_tasks all --seeds 3 --num_steps 2000000 --out sweeps/NAME

A trial is one (version, workload, seed, grid setting): an ordinary `python <version>/train.py`
run of the shared harness in a subprocess (its output in `<out>/logs/<trial>.log`), after which
its final model and its best checkpoint (`_best.zip`, written when train.py evaluates during
training) schedule a fixed seeded episode set. The baselines and the CP-SAT reference schedule
the same episodes once per (version, workload), as Ray tasks beside the trials. The driver
records each finished trial in `<out>/results/<trial>.json` and writes `results.csv` and
`summary.md`; `--resume` runs again only the trials without an `ok` record.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import itertools
import json
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import ray
import yaml
from ray import tune

from migsched.cli import SEED_MAX, OneLineParser, positive_float, seed_int
from migsched.env import DEFAULT_QUEUE_LEN
from migsched.evaluation import BASELINES, evaluate
from migsched.versions import REPO_ROOT, VERSIONS
from migsched.workloads import WORKLOAD_NAMES

#: train.py flags that sweep.py sets itself for every trial (or that are no hyperparameter); a grid may not hold them.
SET_BY_SWEEP = ("help", "num_steps", "N", "M", "type_tasks", "seed", "device", "preset", "eval_freq", "eval_episodes", "restore", "queue_len", "progress_bar")
#: The settings that define a sweep's trials and figures, stored in `<out>/sweep.json`: `--resume` keeps them.
DEFINING = ("versions", "workloads", "seeds", "num_steps", "N", "M", "preset", "grid", "eval_freq", "eval_episodes", "eval_seed", "cpsat_time")
#: An option line of argparse's --help (indented two spaces; wrapped help text is indented more):
#: the flag, then its metavar or {choices} if it takes a value.
HELP_OPTION = re.compile(r"^ {2}(?:-\w, )?--(\w+)(?: (\{[^}]*\}|[A-Z][A-Z0-9_]*))?", re.MULTILINE)
#: Output by which train.py has created its evaluation files, or is past the point where it would
#: have: from then on another run planning the same model name may start on this node.
STARTED_MARKERS = ("evaluation baselines", "rollout/")
LOCK_DIR = Path(tempfile.gettempdir()) / "migsched-sweep-locks"
LOG_TAIL_LINES = 12
PRINTED_TAIL_LINES = 4
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class SweepError(Exception):
    """Invalid input to sweep.py: one `sweep.py: error: ...` line, exit status 2."""


# --- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One training run of the sweep and its evaluation."""

    version: str
    workload: str
    seed: int
    hyperparameters: tuple[tuple[str, Any], ...]

    @property
    def id(self) -> str:
        """A readable, unique name, e.g. `float-wide_times-seed0-batch_size=512`."""
        name = "-".join([self.version, self.workload, f"seed{self.seed}", *(f"{k}={v}" for k, v in self.hyperparameters)])
        return re.sub(r"[^\w.=+-]", "_", name)

    def spec(self) -> dict[str, Any]:
        """The trial as a plain dict: Tune's config and the start of its record."""
        return {"trial": self.id, "version": self.version, "workload": self.workload, "seed": self.seed, "hyperparameters": dict(self.hyperparameters)}


def choose(value: str, names: Sequence[str], flag: str) -> list[str]:
    """`all` or a comma-separated subset of `names`, in the order given; SweepError on an unknown name."""
    chosen = list(names) if value == "all" else [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in chosen if v not in names]
    if unknown or not chosen:
        raise SweepError(f"{flag}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; choose all or from {','.join(names)}")
    return list(dict.fromkeys(chosen))


def load_grid(path: str) -> dict[str, list[Any]]:
    """A grid file: a YAML mapping from train.py flag names to a value or a list of values."""
    try:
        grid = yaml.safe_load(Path(path).read_bytes().decode("utf-8"))
    except OSError as exc:
        raise SweepError(f"--grid {path}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SweepError(f"--grid {path}: not a text file (byte {exc.start} is not UTF-8); expected YAML") from None
    except yaml.YAMLError as exc:
        raise SweepError(f"--grid {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"--grid {path}: expected a mapping of train.py flags to values, e.g. 'batch_size: [64, 512]'")
    checked: dict[str, list[Any]] = {}
    for key, values in grid.items():
        values = values if isinstance(values, list) else [values]
        if not values or not all(isinstance(v, (str, int, float, bool)) for v in values):
            raise SweepError(f"--grid {path}: {key}: expected a value or a non-empty list of numbers, strings or booleans")
        if len(set(map(str, values))) < len(values):
            raise SweepError(f"--grid {path}: {key}: a value is listed twice")
        checked[str(key)] = values
    return checked


def train_flags(version: str) -> dict[str, str]:
    """The flags that `<version>/train.py --help` lists, each with its metavar or {choices} ('' for an on/off flag)."""
    script = REPO_ROOT / version / "train.py"
    shown = subprocess.run([sys.executable, str(script), "--help"], check=False, cwd=script.parent, capture_output=True, text=True)
    if shown.returncode != 0:
        raise SweepError(f"{script} --help failed with status {shown.returncode}: {shown.stderr.strip()[-300:]}")
    return dict(HELP_OPTION.findall(shown.stdout))


def check_grid(grid: dict[str, list[Any]], flags: dict[str, str], path: str) -> None:
    """SweepError unless every grid key is a train.py flag that sweep.py leaves free, on/off flags with booleans."""
    unknown = [key for key in grid if key not in flags]
    if unknown:
        free = [flag for flag in flags if flag not in SET_BY_SWEEP]
        raise SweepError(f"--grid {path}: not train.py flags: {', '.join(unknown)} (its --help lists {', '.join(free)})")
    reserved = [key for key in grid if key in SET_BY_SWEEP]
    if reserved:
        raise SweepError(f"--grid {path}: set by sweep.py itself, not sweepable: {', '.join(reserved)}")
    switches = [key for key, values in grid.items() if not flags[key] and not all(isinstance(v, bool) for v in values)]
    if switches:
        raise SweepError(f"--grid {path}: on/off flags take true or false: {', '.join(switches)}")


def plan(versions: Sequence[str], workloads: Sequence[str], seeds: int, grid: dict[str, list[Any]]) -> list[Trial]:
    """Every version x workload x seed x combination of the grid's values, in that order."""
    settings = [tuple(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    return [Trial(v, w, s, hp) for v in versions for w in workloads for s in range(seeds) for hp in settings]


def env_config(version: str, n_slots: int, levels: int) -> dict[str, int]:
    """The environment configuration train.py trains with (online: its default queue)."""
    return {"N": n_slots, "M": levels} | ({"queue_len": DEFAULT_QUEUE_LEN} if version == "online" else {})


# --- a trial, on a Ray worker -----------------------------------------------------------------


def train_argv(spec: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """The train.py flags of a trial: the sweep's, then its grid setting."""
    argv: list[Any] = ["--num_steps", settings["num_steps"], "--N", settings["N"], "--M", settings["M"], "--type_tasks", spec["workload"], "--seed", spec["seed"]]
    argv += ["--device", settings["device"], "--eval_episodes", settings["eval_episodes"]]
    argv += ["--preset", settings["preset"]] if settings["preset"] else []
    argv += ["--eval_freq", settings["eval_freq"]] if settings["eval_freq"] is not None else []
    for key, value in spec["hyperparameters"].items():
        if key in settings["switches"]:
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", value]
    return [str(a) for a in argv]


@contextmanager
def name_lock(name: Path) -> Iterator[Callable[[], None]]:
    """This node's exclusive lock on a planned model name, and its release. train.py picks the
    free suffix of its evaluation files (-2, -3, ...) as it starts: runs of the same name that
    start together would pick the same one."""
    LOCK_DIR.mkdir(exist_ok=True)
    with open(LOCK_DIR / f"{hashlib.sha1(str(name).encode()).hexdigest()}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield lambda: fcntl.flock(handle, fcntl.LOCK_UN)


class TrainingRun(NamedTuple):
    """A finished train.py run: its exit status, the final and best model paths it printed (None
    if none) and its wall-clock seconds."""

    status: int
    model: str | None
    best_model: str | None
    seconds: float


def run_training(version: str, argv: list[str], planned: Path, log: IO[str]) -> TrainingRun:
    """Run `<version>/train.py argv` with its output in `log`."""
    script = REPO_ROOT / version / "train.py"
    final = best = None
    with name_lock(planned) as release:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, str(script), *argv],
            cwd=script.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        for line in proc.stdout or ():
            log.write(line)
            log.flush()
            if any(marker in line for marker in STARTED_MARKERS):
                release()
            if saved := re.match(r"model saved: (.+\.zip)$", line):
                final = saved.group(1)
            elif saved := re.search(r"new best saved: (.+\.zip)$", line):
                best = saved.group(1)
        return TrainingRun(proc.wait(), final, best, time.perf_counter() - began)


def agent_episodes(path: str, version: str, workload: str, settings: dict[str, Any], log: IO[str]) -> dict[str, list[float]]:
    """A saved model's makespans on the sweep's seeded episodes, and the episodes' lower bounds."""
    from migsched.evaluation import load_model

    model, dims = load_model(path, version)
    print(f"sweep: evaluating {path} on {settings['eval_episodes']} episodes from seed {settings['eval_seed']}", file=log, flush=True)
    rows, _ = evaluate(version, env_config(version, dims["N"], dims["M"]), workload, settings["eval_episodes"], settings["eval_seed"], ["agent"], model=model)
    return {"makespan": [row.makespan for row in rows], "lower_bound": [row.lower_bound for row in rows]}


def log_tail(path: Path) -> str:
    """The last lines of a log file ('' if it is not on this machine)."""
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-LOG_TAIL_LINES:])
    except OSError:
        return ""


def trial_record(spec: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Train, then evaluate the final and best models: the trial's record (status ok or failed)."""
    from migsched.training import model_path

    log_path = Path(settings["out"]) / "logs" / f"{spec['trial']}.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:  # a cluster node that cannot write the driver's folder: the driver gets the log's tail
        log_path = Path(tempfile.mkdtemp(prefix="migsched-sweep-")) / log_path.name
    record: dict[str, Any] = {**spec, "status": "failed", "node": platform.node(), "log": str(log_path), "error": None}
    with open(log_path, "w") as log:
        try:
            planned = model_path(spec["version"], settings["N"], settings["M"], settings["num_steps"], spec["workload"])
            run = run_training(spec["version"], train_argv(spec, settings), planned, log)
            eval_csv = run.best_model.removesuffix("_best.zip") + "_eval.csv" if run.best_model else None
            record |= {"exit_status": run.status, "model": run.model, "best_model": run.best_model, "eval_csv": eval_csv, "wall_clock_s": run.seconds}
            if run.status != 0:
                record["error"] = f"train.py exited with status {run.status}"
            elif run.model is None:
                record["error"] = "train.py printed no saved model"
            else:
                began = time.perf_counter()
                record["final"] = agent_episodes(run.model, spec["version"], spec["workload"], settings, log)
                record["best"] = agent_episodes(run.best_model, spec["version"], spec["workload"], settings, log) if run.best_model else None
                record |= {"status": "ok", "eval_s": time.perf_counter() - began}
        except Exception as exc:  # noqa: BLE001 - any error is the trial's failure, its traceback in the log
            traceback.print_exc(file=log)
            record["error"] = f"{type(exc).__name__}: {exc}"
    record["log_tail"] = log_tail(log_path)
    return record


def run_trial(config: dict[str, Any]) -> None:
    """Tune's trainable: one trial, reported once."""
    tune.report({"record": trial_record(config["trial"], config["settings"])})


def baseline_episodes(version: str, workload: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The baselines' (and offline, CP-SAT's) makespans on the sweep's seeded episodes, and their lower bounds."""
    cpsat = settings["cpsat_time"] is not None and version != "online"
    policies = [*BASELINES, *(["cpsat"] if cpsat else [])]
    rows, _ = evaluate(
        version, env_config(version, settings["N"], settings["M"]), workload, settings["eval_episodes"], settings["eval_seed"], policies, **({"cpsat_time": settings["cpsat_time"]} if cpsat else {})
    )
    return {
        "version": version,
        "workload": workload,
        "lower_bound": [row.lower_bound for row in rows if row.policy == BASELINES[0]],
        "makespan": {policy: [row.makespan for row in rows if row.policy == policy] for policy in policies},
        "cpsat_proven": sum(bool(row.optimal) for row in rows if row.policy == "cpsat") if cpsat else None,
    }


# --- records and tables, on the driver ---------------------------------------------------------


def write_json(path: Path, data: Any) -> None:
    """Write `data` as JSON through a temporary file and a rename: a kill leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(data, out, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    """The JSON in `path`, or None if it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def first_line(text: str) -> str:
    """The first line of an error text that says something (not Tune's `Failure # n` header)."""
    lines = [line.strip() for line in ANSI.sub("", text).splitlines() if line.strip() and not line.startswith("Failure #")]
    return lines[0] if lines else "unknown error"


def crash_record(spec: dict[str, Any], settings: dict[str, Any], error: str) -> dict[str, Any]:
    """The record of a trial whose Ray worker died (or raised) before it reported."""
    log_path = Path(settings["out"]) / "logs" / f"{spec['trial']}.log"
    return {**spec, "status": "failed", "log": str(log_path), "error": f"Ray worker failed: {error}", "log_tail": log_tail(log_path)}


class Recorder(tune.Callback):
    """Records each trial as Tune reports it, writing `<out>/results/<trial>.json` at once, and prints a line."""

    def __init__(self, out: Path, settings: dict[str, Any], total: int, done: int) -> None:
        self.out = out
        self.settings = settings
        self.total = total
        self.done = done
        self.records: dict[str, dict[str, Any]] = {}

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict[str, Any], **info: Any) -> None:
        self.record(result["record"])

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = Path(trial.error_file).read_text() if trial.error_file and Path(trial.error_file).is_file() else ""
        self.record(crash_record(trial.config["trial"], self.settings, first_line(error)))

    def record(self, record: dict[str, Any]) -> None:
        if record["trial"] in self.records:
            return
        if not Path(record["log"]).is_file():  # written on another node: keep its tail here
            local = self.out / "logs" / f"{record['trial']}.log"
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(f"(the last lines of {record['log']} on node {record.get('node', '?')})\n{record['log_tail']}")
            record["log"] = str(local)
        self.records[record["trial"]] = record
        write_json(self.out / "results" / f"{record['trial']}.json", record)
        self.done += 1
        if record["status"] == "ok":
            best = f", best {mean_ratio(record['best']['makespan'], record['best']['lower_bound']):.3f}" if record.get("best") else ""
            note = f"ok, final {mean_ratio(record['final']['makespan'], record['final']['lower_bound']):.3f}{best} ({record['wall_clock_s'] / 60:.1f} min training)"
        else:
            tail = record.get("log_tail", "").splitlines()[-PRINTED_TAIL_LINES:]
            note = "\n".join([f"FAILED: {record['error']}; log: {record['log']}", *(f"    | {line}" for line in tail)])
        print(f"[{self.done}/{self.total}] {record['trial']}: {note}", flush=True)


def mean_ratio(makespans: Sequence[float], divisors: Sequence[float]) -> float:
    """The mean over episodes of makespan / divisor (the lower bound, or CP-SAT's makespan)."""
    return statistics.mean(m / d for m, d in zip(makespans, divisors, strict=True))


def csv_columns(grid_keys: Sequence[str]) -> list[str]:
    """The columns of results.csv."""
    figures = [f"{who}_{to}" for who in ("final", "best", *BASELINES) for to in ("ratio", "cpsat")]
    return ["trial", "status", "version", "workload", "seed", *grid_keys, "num_steps", "wall_clock_s", "eval_s", *figures, "cpsat_ratio", "cpsat_proven", "model", "best_model", "node", "log", "error"]


def trial_row(record: dict[str, Any], baselines: dict[str, Any] | None, grid_keys: Sequence[str], num_steps: int) -> dict[str, Any]:
    """A trial's results.csv row: its agent's figures beside the baselines' on the same episodes."""
    row = {key: record.get(key) for key in ("trial", "status", "version", "workload", "seed", "wall_clock_s", "eval_s", "model", "best_model", "node", "log", "error")}
    row |= {key: record["hyperparameters"].get(key) for key in grid_keys} | {"num_steps": num_steps}
    baselines = baselines or {"makespan": {}, "lower_bound": None, "cpsat_proven": None}
    cpsat = baselines["makespan"].get("cpsat")
    for who in ("final", "best", *BASELINES, "cpsat"):
        episodes = (record.get(who) if who in ("final", "best") else None) or {"makespan": baselines["makespan"].get(who), "lower_bound": baselines["lower_bound"]}
        row[f"{who}_ratio"] = mean_ratio(episodes["makespan"], episodes["lower_bound"]) if episodes["makespan"] else None
        if who != "cpsat":
            row[f"{who}_cpsat"] = mean_ratio(episodes["makespan"], cpsat) if episodes["makespan"] and cpsat else None
    row["cpsat_proven"] = baselines["cpsat_proven"]
    return row


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], path: Path) -> None:
    """results.csv: one row per recorded trial; figures with 6 decimals, missing ones empty."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})


def spread(values: Sequence[float | None]) -> str:
    """`mean ± sample standard deviation` of the values present (one value: itself; none: -)."""
    present = [v for v in values if v is not None]
    if len(present) > 1:
        return f"{statistics.mean(present):.3f} ± {statistics.stdev(present):.3f}"
    return f"{present[0]:.3f}" if present else "-"


def summary_table(rows: Sequence[dict[str, Any]], grid_keys: Sequence[str]) -> str:
    """The Markdown table: per version, workload and grid setting, the agents' figures over the
    seeds that finished (mean ± standard deviation) beside the baselines' on the same episodes."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["version"], row["workload"], *(row[k] for k in grid_keys)), []).append(row)
    header = ["version", "workload", *grid_keys, "seeds ok", "final", "best", "final / cpsat", "best / cpsat", *BASELINES, "cpsat", "training min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, members in groups.items():
        ok = [r for r in members if r["status"] == "ok"]
        agents = [spread([r[column] for r in ok]) for column in ("final_ratio", "best_ratio", "final_cpsat", "best_cpsat")]
        baselines = [spread([members[0][f"{who}_ratio"]]) for who in (*BASELINES, "cpsat")]
        minutes = spread([r["wall_clock_s"] / 60 for r in ok])
        lines.append("| " + " | ".join([*map(str, key), f"{len(ok)}/{len(members)}", *agents, *baselines, minutes]) + " |")
    return "\n".join(lines)


def summary_text(rows: Sequence[dict[str, Any]], grid_keys: Sequence[str], settings: dict[str, Any]) -> str:
    """summary.md: what the figures are, the table, and the failed trials with their logs."""
    first, last = settings["eval_seed"], settings["eval_seed"] + settings["eval_episodes"] - 1
    text = [
        (
            f"Mean makespan / lower bound (and / CP-SAT makespan) on {settings['eval_episodes']} seeded episodes (seeds {first}-{last}), "
            f"N={settings['N']} M={settings['M']}, {settings['num_steps']} training steps per trial. Agents (final model, best checkpoint): "
            "mean ± standard deviation over the seeds that finished; baselines and CP-SAT on the same episodes."
        ),
        "",
        summary_table(rows, grid_keys),
    ]
    failed = [r for r in rows if r["status"] != "ok"]
    if failed:
        text += ["", "Failed trials:", "", *(f"- {r['trial']}: {r['error']} (log: {r['log']})" for r in failed)]
    return "\n".join(text) + "\n"


# --- the command ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags of sweep.py; argparse's own errors exit with status 2."""
    parser = OneLineParser(prog="sweep.py", description="Train and evaluate every chosen version x workload x seed x grid setting with Ray Tune.")
    parser.add_argument("--versions", required=True, help=f"comma-separated, from {','.join(VERSIONS)}, or all")
    parser.add_argument("--type_tasks", default="all", help=f"workloads, comma-separated, from {','.join(WORKLOAD_NAMES)}, or all (default all)")
    parser.add_argument("--seeds", type=int, default=1, help="training seeds per setting: 0, 1, ... (default 1)")
    parser.add_argument("--num_steps", type=int, required=True, help="training timesteps per trial")
    parser.add_argument("--N", type=int, default=14, help="ready task slots (default 14)")
    parser.add_argument("--M", type=int, default=14, help="discretization levels (default 14)")
    parser.add_argument("--preset", help="train.py --preset for every trial (e.g. fast)")
    parser.add_argument("--grid", help="YAML file of train.py flags to sweep (see sweeps/example_grid.yaml)")
    parser.add_argument("--eval_freq", type=int, help="train.py --eval_freq: evaluations during training, which keep the best checkpoint (default: train.py's)")
    parser.add_argument("--eval_episodes", type=int, default=20, help="seeded episodes of the final evaluation (and of train.py's) (default 20)")
    parser.add_argument("--eval_seed", type=seed_int, default=0, help="seed of the first final-evaluation episode (default 0)")
    parser.add_argument("--cpsat_time", type=positive_float, default=5.0, help="CP-SAT seconds per episode (default 5)")
    parser.add_argument("--no_cpsat", action="store_true", help="skip the CP-SAT reference (the / cpsat columns stay empty)")
    parser.add_argument("--address", help="join this Ray cluster (e.g. ray://host:10001 or auto) instead of starting Ray here")
    parser.add_argument("--cpus_per_trial", type=positive_float, default=1.0, help="CPUs Ray reserves per trial and per baseline job (default 1)")
    parser.add_argument("--gpus_per_trial", type=float, default=0.0, help="GPUs per trial; above 0 train.py runs with --device gpu (default 0)")
    parser.add_argument("--out", required=True, help="the sweep's folder (new, unless --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the sweep in --out: run only the trials without an ok result")
    return parser.parse_args(argv)


@dataclass
class Sweep:
    """A checked sweep: its folder, trials, defining settings and what each trial needs."""

    args: argparse.Namespace
    out: Path
    trials: list[Trial]
    defining: dict[str, Any]
    settings: dict[str, Any]


def prepare(args: argparse.Namespace) -> Sweep:
    """Check the flags, the grid (against train.py --help) and the folder; SweepError on bad input."""
    versions = choose(args.versions, VERSIONS, "--versions")
    workloads = choose(args.type_tasks, WORKLOAD_NAMES, "--type_tasks")
    for flag in ("seeds", "num_steps", "N", "M", "eval_episodes"):
        if getattr(args, flag) < 1:
            raise SweepError(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.eval_freq is not None and args.eval_freq < 0:
        raise SweepError(f"--eval_freq must be 0 (off) or positive, got {args.eval_freq}")
    if not (math.isfinite(args.gpus_per_trial) and args.gpus_per_trial >= 0):
        raise SweepError(f"--gpus_per_trial must be 0 or more, got {args.gpus_per_trial}")
    if args.eval_seed + args.eval_episodes - 1 > SEED_MAX:
        raise SweepError(f"--eval_seed {args.eval_seed} + --eval_episodes {args.eval_episodes}: the last episode's seed would pass {SEED_MAX}")
    out = Path(args.out).resolve()
    if args.resume and not (out / "sweep.json").is_file():
        raise SweepError(f"--resume: {args.out} is not a sweep folder (no sweep.json)")
    if not args.resume and out.exists():
        raise SweepError(f"--out {args.out} exists: add --resume to continue that sweep, or name a new folder")
    grid = load_grid(args.grid) if args.grid else {}
    defining = {
        "versions": versions, "workloads": workloads, "seeds": args.seeds, "num_steps": args.num_steps, "N": args.N, "M": args.M, "preset": args.preset,
        "grid": grid, "eval_freq": args.eval_freq, "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed, "cpsat_time": None if args.no_cpsat else args.cpsat_time,
    }  # fmt: skip
    if args.resume:
        stored = read_json(out / "sweep.json") or {}
        changed = [key for key in DEFINING if stored.get("settings", {}).get(key) != defining[key]]
        if changed:
            raise SweepError(f"--resume: these settings differ from {args.out}/sweep.json: {', '.join(changed)}")
    flags = train_flags(versions[0])
    check_grid(grid, flags, args.grid)
    presets = flags.get("preset", "{}").strip("{}").split(",")
    if args.preset is not None and args.preset not in presets:
        raise SweepError(f"--preset {args.preset}: train.py knows {', '.join(filter(None, presets)) or 'none'}")
    settings = {
        "out": str(out), "num_steps": args.num_steps, "N": args.N, "M": args.M, "preset": args.preset, "eval_freq": args.eval_freq,
        "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed, "cpsat_time": defining["cpsat_time"],
        "device": "gpu" if args.gpus_per_trial > 0 else "cpu", "switches": [flag for flag in grid if not flags[flag]],
    }  # fmt: skip
    trials = plan(versions, workloads, args.seeds, grid)
    if len({t.id for t in trials}) < len(trials):
        raise SweepError(f"--grid {args.grid}: two values differ only in characters that file names replace with _")
    return Sweep(args, out, trials, defining, settings)


def start_ray(sweep: Sweep) -> bool:
    """Join the cluster at --address, or start Ray on this machine; an initialised Ray session (a
    notebook, a test) is used as it is. True if this call started or joined it."""
    if ray.is_initialized():
        return False
    if sweep.args.address:
        try:
            ray.init(address=sweep.args.address, logging_level=logging.ERROR, log_to_driver=False)
        except (ConnectionError, TimeoutError, ValueError) as exc:
            raise SweepError(f"--address {sweep.args.address}: cannot join the Ray cluster ({first_line(str(exc))})") from None
        return True
    # "local": a new instance here, even where RAY_ADDRESS or a `ray start` names a running cluster
    ray.init(address="local", include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    resources = ray.cluster_resources()
    for name, wanted in (("CPU", sweep.args.cpus_per_trial), ("GPU", sweep.args.gpus_per_trial)):
        if wanted > resources.get(name, 0):
            ray.shutdown()
            raise SweepError(f"--{name.lower()}s_per_trial {wanted:g}: this machine has {resources.get(name, 0):g} {name}s")
    return True


def trial_name(trial: Any) -> str:
    """Tune's name and folder name of a trial: its id."""
    return trial.config["trial"]["trial"]


def launch_order(trials: Sequence[Trial]) -> list[Trial]:
    """Seed by seed, setting by setting, every version and workload: trials that start together
    then plan different model names and do not wait for each other's name lock."""
    return sorted(trials, key=lambda t: (t.seed, repr(t.hyperparameters)))


def run_trials(sweep: Sweep, todo: list[Trial], recorder: Recorder) -> None:
    """Run `todo` with Ray Tune; every trial that finishes is recorded through `recorder`."""
    client = ray.util.client.ray.is_connected()  # Tune's driver then runs on the head node
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's classic output, silent at verbose=0
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # results.csv replaces Tune's own result files
    logging.getLogger("ray.tune.execution.tune_controller").setLevel(logging.CRITICAL)  # a failed trial: our record, not Tune's traceback
    trainable = tune.with_resources(run_trial, {"cpu": sweep.args.cpus_per_trial, "gpu": sweep.args.gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([t.spec() for t in launch_order(todo)]), "settings": sweep.settings},
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


def baseline_path(out: Path, version: str, workload: str) -> Path:
    return out / "baselines" / f"{version}-{workload}.json"


def collect(sweep: Sweep, recorder: Recorder, elapsed: float) -> tuple[int, int]:
    """Write results.csv and summary.md from the records, print the summary: (trials ok, trials failed)."""
    grid_keys = list(sweep.defining["grid"])
    rows = []
    for trial in sweep.trials:
        record = recorder.records.get(trial.id) or read_json(sweep.out / "results" / f"{trial.id}.json")
        if record:
            baselines = read_json(baseline_path(sweep.out, trial.version, trial.workload))
            rows.append(trial_row(record, baselines, grid_keys, sweep.defining["num_steps"]))
    write_csv(rows, csv_columns(grid_keys), sweep.out / "results.csv")
    text = summary_text(rows, grid_keys, sweep.settings)
    (sweep.out / "summary.md").write_text(text)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"\n{text}\n{ok} trials ok, {len(rows) - ok} failed, {len(sweep.trials) - len(rows)} not run; {elapsed / 60:.1f} min. Wrote {sweep.out / 'results.csv'} and {sweep.out / 'summary.md'}")
    return ok, len(rows) - ok


def run(sweep: Sweep, command: Sequence[str]) -> int:
    """Run the sweep's missing trials and baselines, then write its tables: 0 if every trial is ok,
    1 if some failed, 130 if it was interrupted. A new sweep's folder starts with sweep.json: its
    defining settings and `command`, its flags."""
    began = time.perf_counter()
    started = start_ray(sweep)
    if not sweep.args.resume:
        write_json(sweep.out / "sweep.json", {"settings": sweep.defining, "command": ["sweep.py", *command]})
    done = {t.id for t in sweep.trials if (read_json(sweep.out / "results" / f"{t.id}.json") or {}).get("status") == "ok"}
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
    _, failed = collect(sweep, recorder, time.perf_counter() - began)
    if interrupted:
        print(f"interrupted: continue with the same command and --resume (finished trials are kept in {sweep.out / 'results'})")
        return 130
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `sweep.py` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        return run(prepare(args), argv)
    except SweepError as exc:
        print(f"sweep.py: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sweep.py: interrupted", file=sys.stderr)
        return 130
