"""One markdown table from several runs of benchmarks/anytime.py, a column per run.

    python benchmarks/anytime_table.py results/anytime/float_wide_times/anytime.csv results/anytime/float_mix_scaling_soft/anytime.csv [--names wt,mss] [--rows]

Each cell is the run's mean makespan / CP-SAT reference for a method and limit (the rows of
anytime.py's own table), to four decimals. A column is named after the folder holding its CSV
unless --names gives the names. Runs need not share their methods: a missing one is left blank.
--rows turns the table: a row per run, a column per method and limit.
"""

from __future__ import annotations

import csv
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from migsched.cli import OneLineParser

ROW_ORDER = ("agent", "search", "cpsat", "static", "greedy", "far")
LABELS = {"agent": "agent, deterministic", "search": "agent, search {limit} s", "cpsat": "CP-SAT {limit} s"}


def read_means(path: Path) -> dict[tuple[str, str], float]:
    """Mean ratio per (method, limit) of one anytime.csv, the reference left out."""
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["method"] != "cpsat_reference"]
    if not rows:
        raise ValueError("no measured rows")
    grouped: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        grouped.setdefault((row["method"], row["limit"]), []).append(float(row["ratio"]))
    return {key: statistics.mean(values) for key, values in grouped.items()}


def order(key: tuple[str, str]) -> tuple[int, float]:
    """Rows as in anytime.py: agent, search by limit, CP-SAT by limit, then the baselines."""
    method, limit = key
    return (ROW_ORDER.index(method) if method in ROW_ORDER else len(ROW_ORDER), float(limit) if limit else 0.0)


def table(names: Sequence[str], runs: Sequence[dict[tuple[str, str], float]]) -> str:
    """The markdown table: a row per method and limit, a column per run."""
    keys = sorted({key for run in runs for key in run}, key=order)
    lines = ["| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method, limit in keys:
        label = LABELS.get(method, "{method}").format(method=method, limit=limit)
        cells = [f"{run[(method, limit)]:.4f}" if (method, limit) in run else "" for run in runs]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_by_run(names: Sequence[str], runs: Sequence[dict[tuple[str, str], float]]) -> str:
    """The markdown table turned: a row per run, a column per method and limit."""
    keys = sorted({key for run in runs for key in run}, key=order)
    labels = [LABELS.get(method, "{method}").format(method=method, limit=limit).replace("agent, ", "") for method, limit in keys]
    lines = ["| run | " + " | ".join(labels) + " |", "|---|" + "---|" * len(keys)]
    for name, run in zip(names, runs):
        lines.append(f"| {name} | " + " | ".join(f"{run[key]:.4f}" if key in run else "" for key in keys) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="anytime_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("csvs", nargs="+", type=Path, help="anytime.csv files")
    parser.add_argument("--names", help="comma-separated column names, one per CSV")
    parser.add_argument("--rows", action="store_true", help="a row per run instead of a column")
    args = parser.parse_args(argv)
    names = args.names.split(",") if args.names else [path.parent.name for path in args.csvs]
    if len(names) != len(args.csvs):
        parser.error(f"--names gives {len(names)} names for {len(args.csvs)} CSVs")
    runs = []
    for path in args.csvs:
        try:
            runs.append(read_means(path))
        except (OSError, UnicodeDecodeError, KeyError, ValueError, csv.Error) as error:
            print(f"anytime_table.py: error: {path} is not an anytime.csv ({error})", file=sys.stderr)
            return 2
    print(table_by_run(names, runs) if args.rows else table(names, runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
