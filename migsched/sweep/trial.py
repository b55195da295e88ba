"""One trial, on a Ray worker: `<version>/train.py --record FILE` in a subprocess (its output in
the trial's log), then the final model and the best checkpoint that the record names evaluated
on the sweep's seeded episodes. Also the baselines' episodes of a (version, workload)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import IO, Any

from ray import tune

from migsched.evaluation import BASELINES, evaluate, load_model
from migsched.sweep.plan import env_config, read_json, train_argv
from migsched.versions import get_version

LOG_TAIL_LINES = 12
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_line(text: str) -> str:
    """The first line of an error text that says something (not Tune's `Failure # n` header)."""
    lines = [line.strip() for line in ANSI.sub("", text).splitlines() if line.strip() and not line.startswith("Failure #")]
    return lines[0] if lines else "unknown error"


def log_path(settings: dict[str, Any], trial: str) -> Path:
    """`<out>/logs/<trial>.log`: the trial's train.py output and evaluation notes."""
    return Path(settings["out"]) / "logs" / f"{trial}.log"


def trial_files(settings: dict[str, Any], trial: str) -> tuple[Path, Path]:
    """The trial's log and train.py record files: in `<out>/logs/` and `<out>/records/`, or in a
    temporary folder of a cluster node that cannot write the driver's folder (the driver then
    gets the log's tail)."""
    log, record = log_path(settings, trial), Path(settings["out"]) / "records" / f"{trial}.json"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        record.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        local = Path(tempfile.mkdtemp(prefix="migsched-sweep-"))
        return local / log.name, local / record.name
    return log, record


def run_training(script: Path, argv: list[str], log: IO[str]) -> int:
    """Run `script argv` in its folder with its output in `log`; its exit status."""
    log.flush()
    return subprocess.run(
        [sys.executable, str(script), *argv], check=False, cwd=script.parent, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1")
    ).returncode


def training_error(status: int, record: dict[str, Any] | None, record_file: Path) -> str | None:
    """What went wrong in a train.py run, from its exit status and its record (None: nothing)."""
    if status != 0:
        stopped = f" ({record['status']})" if record and record.get("status") not in (None, "finished") else ""
        return f"train.py exited with status {status}{stopped}"
    if record is None:
        return f"train.py wrote no record to {record_file}"
    if not record.get("model"):
        return f"train.py saved no model ({record.get('status')})"
    return None


def agent_episodes(path: str, version: str, workload: str, settings: dict[str, Any], log: IO[str]) -> dict[str, list[float]]:
    """A saved model's makespans on the sweep's seeded episodes, and the episodes' lower bounds."""
    model, config = load_model(path, version)
    print(f"sweep: evaluating {path} on {settings['eval_episodes']} episodes from seed {settings['eval_seed']}", file=log, flush=True)
    rows, _ = evaluate(version, config, workload, settings["eval_episodes"], settings["eval_seed"], ["agent"], model=model)
    return {"makespan": [row.makespan for row in rows], "lower_bound": [row.lower_bound for row in rows]}


def log_tail(path: Path) -> str:
    """The last lines of a log file ('' if it is not on this machine)."""
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-LOG_TAIL_LINES:])
    except OSError:
        return ""


def trial_record(spec: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """Train, then evaluate the final and best models that train.py's record names: the trial's
    record (status ok or failed), train.py's own record under `training`."""
    log_file, record_file = trial_files(settings, spec["trial"])
    record: dict[str, Any] = {**spec, "status": "failed", "node": platform.node(), "log": str(log_file), "error": None}
    with open(log_file, "w") as log:
        try:
            record_file.unlink(missing_ok=True)  # a resumed trial's record from its last run
            script = Path(settings["scripts"]) / spec["version"] / "train.py"
            status = run_training(script, train_argv(spec, settings, record_file), log)
            training = read_json(record_file)
            best = (training or {}).get("best_evaluation") or {}
            record |= {
                "exit_status": status, "training": training, "model": (training or {}).get("model"), "best_model": best.get("model"),
                "eval_csv": (training or {}).get("eval_csv"), "wall_clock_s": (training or {}).get("wall_clock_s"),
            }  # fmt: skip
            record["error"] = training_error(status, training, record_file)
            if record["error"] is None:
                began = time.perf_counter()
                record["final"] = agent_episodes(record["model"], spec["version"], spec["workload"], settings, log)
                record["best"] = agent_episodes(record["best_model"], spec["version"], spec["workload"], settings, log) if record["best_model"] else None
                record |= {"status": "ok", "eval_s": time.perf_counter() - began}
        except Exception as exc:  # noqa: BLE001 - any error is the trial's failure, its traceback in the log
            traceback.print_exc(file=log)
            record["error"] = f"{type(exc).__name__}: {exc}"
    record["log_tail"] = log_tail(log_file)
    return record


def run_trial(config: dict[str, Any]) -> None:
    """Tune's trainable: one trial, reported once."""
    tune.report({"record": trial_record(config["trial"], config["settings"])})


def crash_record(spec: dict[str, Any], settings: dict[str, Any], error: str) -> dict[str, Any]:
    """The record of a trial whose Ray worker died (or raised) before it reported."""
    log_file = log_path(settings, spec["trial"])
    return {**spec, "status": "failed", "log": str(log_file), "error": f"Ray worker failed: {error}", "log_tail": log_tail(log_file)}


def baseline_episodes(version: str, workload: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The baselines' (and offline, CP-SAT's) makespans on the sweep's seeded episodes, and their lower bounds."""
    cpsat = settings["cpsat_time"] is not None and get_version(version).offline
    policies = [*BASELINES, *(["cpsat"] if cpsat else [])]
    rows, _ = evaluate(
        version,
        env_config(version, settings["N"], settings["M"]),
        workload,
        settings["eval_episodes"],
        settings["eval_seed"],
        policies,
        **({"cpsat_time": settings["cpsat_time"]} if cpsat else {}),
    )
    return {
        "version": version,
        "workload": workload,
        "lower_bound": [row.lower_bound for row in rows if row.policy == BASELINES[0]],
        "makespan": {policy: [row.makespan for row in rows if row.policy == policy] for policy in policies},
        "cpsat_proven": sum(bool(row.optimal) for row in rows if row.policy == "cpsat") if cpsat else None,
    }
