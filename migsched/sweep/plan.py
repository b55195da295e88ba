"""What a sweep runs: its flags checked against train.py's parser, the grid, the trial list, and
the sweep's folder (sweep.json, the per-trial results that `--resume` reads)."""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from migsched.cli import SEED_MAX
from migsched.settings import BY_NAME, Setting
from migsched.training import build_parser, parse_args
from migsched.versions import REPO_ROOT, VERSIONS, get_version
from migsched.workloads import WORKLOAD_NAMES

#: train.py flags that sweep.py sets itself for every trial (or that are no hyperparameter); a grid may not hold them.
SET_BY_SWEEP = (
    "help",
    "num_steps",
    "N",
    "M",
    "type_tasks",
    "seed",
    "device",
    "preset",
    "eval_freq",
    "eval_episodes",
    "restore",
    "queue_len",
    "progress_bar",
    "record",
)
#: The most trials one sweep may plan: far above any sensible sweep, low enough that a typo in
#: --seeds or a grid is refused before its trial list fills the memory.
MAX_TRIALS = 100_000
#: The settings that define a sweep's trials and figures, stored in `<out>/sweep.json`: `--resume` keeps them.
DEFINING = ("versions", "workloads", "seeds", "num_steps", "N", "M", "preset", "grid", "eval_freq", "eval_episodes", "eval_seed", "cpsat_time")


class SweepError(Exception):
    """Invalid input to sweep.py: one `sweep.py: error: ...` line, exit status 2."""


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


@dataclass
class Sweep:
    """A checked sweep: its folder, trials, defining settings and what each trial needs."""

    args: argparse.Namespace
    out: Path
    trials: list[Trial]
    defining: dict[str, Any]
    settings: dict[str, Any]


# --- the grid -----------------------------------------------------------------------------------


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


def train_flags(version: str) -> dict[str, argparse.Action]:
    """The flags of `<version>/train.py`, without their dashes, each with its argparse action."""
    return dict(build_parser(version).flags)


def is_switch(action: argparse.Action) -> bool:
    """An on/off flag (`store_true`): it takes no value."""
    return action.nargs == 0


def check_grid(grid: dict[str, list[Any]], flags: dict[str, argparse.Action], path: str, version: str) -> None:
    """SweepError unless every grid key is a flag of `version`'s train.py that sweep.py leaves
    free, on/off flags with booleans."""
    unknown = [key for key in grid if key not in flags]
    if unknown:
        free = [flag for flag in flags if flag not in SET_BY_SWEEP]
        raise SweepError(f"--grid {path}: not train.py flags: {', '.join(unknown)} ({version}/train.py has {', '.join(free)})")
    reserved = [key for key in grid if key in SET_BY_SWEEP]
    if reserved:
        raise SweepError(f"--grid {path}: set by sweep.py itself, not sweepable: {', '.join(reserved)}")
    switches = [key for key, values in grid.items() if is_switch(flags[key]) and not all(isinstance(v, bool) for v in values)]
    if switches:
        raise SweepError(f"--grid {path}: on/off flags take true or false: {', '.join(switches)}")


def plan(versions: Sequence[str], workloads: Sequence[str], seeds: int, grid: dict[str, list[Any]]) -> list[Trial]:
    """Every version x workload x seed x combination of the grid's values, in that order."""
    settings = [tuple(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    return [Trial(v, w, s, hp) for v in versions for w in workloads for s in range(seeds) for hp in settings]


def env_config(version: str, n_slots: int, levels: int) -> dict[str, int]:
    """The environment configuration of the sweep's episodes (online: hyperparams.yaml's queue, as train.py trains with)."""
    info = get_version(version)
    return {"N": n_slots, "M": levels} | ({"queue_len": info.defaults["queue_len"]} if info.online else {})


def default_setting(versions: Sequence[str], name: str) -> int:
    """The versions' common hyperparams.yaml default of N or M; SweepError if they differ."""
    values = {get_version(v).defaults[name] for v in versions}
    if len(values) > 1:
        raise SweepError(f"--{name}: the versions' hyperparams.yaml defaults differ ({', '.join(map(str, sorted(values)))}); give --{name}")
    return values.pop()


def ppo_stages(spec: dict[str, Any], preset: str | None) -> list[str]:
    """A sweep trains PPO for its --num_steps, whatever the preset's recipe: `--stages clone,ppo`
    where the trial clones a teacher first (its grid's --pretrain, else the preset's), `ppo`
    where it does not; nothing where its grid sets the stages itself."""
    chosen = spec["hyperparameters"]
    if "stages" in chosen:
        return []
    teacher = chosen.get("pretrain", get_version(spec["version"]).settings(preset, spec["workload"]).get("pretrain"))
    return ["--stages", "ppo" if teacher in (None, "none") else "clone,ppo"]


def train_argv(spec: dict[str, Any], settings: dict[str, Any], record: Path) -> list[str]:
    """The train.py flags of a trial: the sweep's, then its grid setting."""
    argv: list[Any] = [
        "--num_steps",
        settings["num_steps"],
        "--N",
        settings["N"],
        "--M",
        settings["M"],
        "--type_tasks",
        spec["workload"],
        "--seed",
        spec["seed"],
    ]
    argv += ["--device", settings["device"], "--eval_episodes", settings["eval_episodes"], "--record", record]
    argv += ["--preset", settings["preset"]] if settings["preset"] else []
    argv += ppo_stages(spec, settings["preset"])
    argv += ["--eval_freq", settings["eval_freq"]] if settings["eval_freq"] is not None else []
    for key, value in spec["hyperparameters"].items():
        if key in settings["switches"]:
            argv += [f"--{key}"] if value else []
        else:
            argv += [f"--{key}", value]
    return [str(a) for a in argv]


# --- the sweep's folder --------------------------------------------------------------------------


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


def result_path(out: Path, trial: str) -> Path:
    """`<out>/results/<trial>.json`: a trial's record with its per-episode makespans."""
    return out / "results" / f"{trial}.json"


def baseline_path(out: Path, version: str, workload: str) -> Path:
    """`<out>/baselines/<version>-<workload>.json`: the baselines' and CP-SAT's makespans."""
    return out / "baselines" / f"{version}-{workload}.json"


# --- the plan -----------------------------------------------------------------------------------


def prepare(args: argparse.Namespace, scripts: Path = REPO_ROOT) -> Sweep:
    """Check the flags, the grid (against each version's train.py parser) and the folder;
    SweepError on bad input. The trials run `<scripts>/<version>/train.py`."""
    versions = choose(args.versions, VERSIONS, "--version")
    workloads = choose(args.type_tasks, WORKLOAD_NAMES, "--type_tasks")
    n_slots = default_setting(versions, "N") if args.N is None else args.N
    levels = default_setting(versions, "M") if args.M is None else args.M
    seeds = Setting("seeds", "training seeds per trial", "run", int, low=1, high=MAX_TRIALS)
    for setting, value in (
        (seeds, args.seeds),
        *((BY_NAME[f], v) for f, v in (("num_steps", args.num_steps), ("N", n_slots), ("M", levels), ("eval_episodes", args.eval_episodes))),
    ):
        if (problem := setting.problem(value)) is not None:
            raise SweepError(problem)
    if args.eval_freq is not None and args.eval_freq < 0:
        raise SweepError(f"--eval_freq must be 0 (off) or positive, got {args.eval_freq}")
    if not (math.isfinite(args.gpus_per_trial) and args.gpus_per_trial >= 0):
        raise SweepError(f"--gpus_per_trial must be 0 or more, got {args.gpus_per_trial}")
    if args.eval_seed + args.eval_episodes - 1 > SEED_MAX:
        raise SweepError(f"--seed {args.eval_seed} + --eval_episodes {args.eval_episodes}: the last episode's seed would pass {SEED_MAX}")
    out = Path(args.out).resolve()
    if args.resume and not (out / "sweep.json").is_file():
        raise SweepError(f"--resume: {args.out} is not a sweep folder (no sweep.json)")
    if not args.resume and out.exists():
        raise SweepError(f"--out {args.out} exists: add --resume to continue that sweep, or name a new folder")
    grid = load_grid(args.grid) if args.grid else {}
    defining = {
        "versions": versions, "workloads": workloads, "seeds": args.seeds, "num_steps": args.num_steps, "N": n_slots, "M": levels, "preset": args.preset,
        "grid": grid, "eval_freq": args.eval_freq, "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed, "cpsat_time": None if args.no_cpsat else args.cpsat_time,
    }  # fmt: skip
    if args.resume:
        stored = read_json(out / "sweep.json") or {}
        changed = [key for key in DEFINING if stored.get("settings", {}).get(key) != defining[key]]
        if changed:
            raise SweepError(f"--resume: these settings differ from {args.out}/sweep.json: {', '.join(changed)}")
    switches: set[str] = set()
    for version in versions:
        flags = train_flags(version)
        check_grid(grid, flags, args.grid, version)
        switches |= {key for key in grid if is_switch(flags[key])}
        presets = get_version(version).presets
        if args.preset is not None and args.preset not in presets:
            raise SweepError(f"--preset {args.preset}: {version}/train.py knows {', '.join(presets) or 'none'}")
    settings = {
        "out": str(out), "scripts": str(Path(scripts).resolve()), "num_steps": args.num_steps, "N": n_slots, "M": levels, "preset": args.preset,
        "eval_freq": args.eval_freq, "eval_episodes": args.eval_episodes, "eval_seed": args.eval_seed, "cpsat_time": defining["cpsat_time"],
        "device": "gpu" if args.gpus_per_trial > 0 else "cpu", "switches": sorted(switches),
    }  # fmt: skip
    count = len(versions) * len(workloads) * args.seeds * math.prod(len(values) for values in grid.values())
    if count > MAX_TRIALS:
        raise SweepError(f"{count} trials (versions x workloads x seeds x grid settings): at most {MAX_TRIALS} in one sweep")
    trials = plan(versions, workloads, args.seeds, grid)
    if len({t.id for t in trials}) < len(trials):
        raise SweepError(f"--grid {args.grid}: two values differ only in characters that file names replace with _")
    for trial in trials:
        check_trial(trial, settings)
    return Sweep(args, out, trials, defining, settings)


def check_trial(trial: Trial, settings: dict[str, Any]) -> None:
    """SweepError, with train.py's own one-line message and the trial's name, unless its train.py
    parser accepts the trial's flags. The check runs here, on the driver: with --device cpu (a
    cluster node may have the GPU this machine lacks) and a record file in the temporary folder."""
    argv = train_argv(trial.spec(), settings | {"device": "cpu"}, Path(tempfile.gettempdir()) / "sweep-check.json")
    message = io.StringIO()
    try:
        with contextlib.redirect_stderr(message):
            parse_args(trial.version, argv)
    except SystemExit:
        raise SweepError(f"trial {trial.id}: {message.getvalue().strip() or 'train.py refuses its flags'}") from None
