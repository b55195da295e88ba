"""What a sweep reports, on the driver: each trial's record as it finishes (`results/<trial>.json`
and a printed line), then `results.csv`, `summary.md` and the printed table."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray import tune

from migsched.evaluation import BASELINES
from migsched.sweep.plan import Sweep, baseline_path, read_json, result_path, write_json
from migsched.sweep.trial import crash_record, first_line

PRINTED_TAIL_LINES = 4


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
        """Keep and write a trial's record (once), and print how it went."""
        if record["trial"] in self.records:
            return
        if not Path(record["log"]).is_file():  # written on another node: keep its tail here
            local = self.out / "logs" / f"{record['trial']}.log"
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(f"(the last lines of {record['log']} on node {record.get('node', '?')})\n{record['log_tail']}")
            record["log"] = str(local)
        self.records[record["trial"]] = record
        write_json(result_path(self.out, record["trial"]), record)
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
    return [
        "trial",
        "status",
        "version",
        "workload",
        "seed",
        *grid_keys,
        "num_steps",
        "wall_clock_s",
        "eval_s",
        *figures,
        "cpsat_ratio",
        "cpsat_proven",
        "model",
        "best_model",
        "node",
        "log",
        "error",
    ]


def trial_row(record: dict[str, Any], baselines: dict[str, Any] | None, grid_keys: Sequence[str], num_steps: int) -> dict[str, Any]:
    """A trial's results.csv row: its agent's figures beside the baselines' on the same episodes."""
    row = {
        key: record.get(key)
        for key in ("trial", "status", "version", "workload", "seed", "wall_clock_s", "eval_s", "model", "best_model", "node", "log", "error")
    }
    row |= {key: record["hyperparameters"].get(key) for key in grid_keys} | {"num_steps": num_steps}
    baselines = baselines or {"makespan": {}, "lower_bound": None, "cpsat_proven": None}
    cpsat = baselines["makespan"].get("cpsat")
    for who in ("final", "best", *BASELINES, "cpsat"):
        episodes = (record.get(who) if who in ("final", "best") else None) or {
            "makespan": baselines["makespan"].get(who),
            "lower_bound": baselines["lower_bound"],
        }
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


def collect(sweep: Sweep, records: dict[str, dict[str, Any]], elapsed: float) -> tuple[int, int]:
    """Write results.csv and summary.md from the records (those of this run, else those in
    `<out>/results/`), print the summary: (trials ok, trials failed)."""
    grid_keys = list(sweep.defining["grid"])
    rows = []
    for trial in sweep.trials:
        record = records.get(trial.id) or read_json(result_path(sweep.out, trial.id))
        if record:
            baselines = read_json(baseline_path(sweep.out, trial.version, trial.workload))
            rows.append(trial_row(record, baselines, grid_keys, sweep.defining["num_steps"]))
    write_csv(rows, csv_columns(grid_keys), sweep.out / "results.csv")
    text = summary_text(rows, grid_keys, sweep.settings)
    (sweep.out / "summary.md").write_text(text)
    ok = sum(r["status"] == "ok" for r in rows)
    print(
        f"\n{text}\n{ok} trials ok, {len(rows) - ok} failed, {len(sweep.trials) - len(rows)} not run; {elapsed / 60:.1f} min. Wrote {sweep.out / 'results.csv'} and {sweep.out / 'summary.md'}"
    )
    return ok, len(rows) - ok
