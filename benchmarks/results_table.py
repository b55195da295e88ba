"""Turn evaluate.py CSVs into the README's results table (mean makespan / lower bound and / cpsat).

    python benchmarks/results_table.py results/            # reads <version>_<workload>.csv files

Each CSV is `evaluate.py --csv` output for one version and workload; the `cpsat` rows may come
from a separate `cpsat_<workload>.csv` (the offline versions share their seeded episodes, so one
CP-SAT run per workload serves them all).
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

from migsched.cli import OneLineParser
from migsched.versions import VERSIONS, get_version
from migsched.workloads import WORKLOAD_NAMES

POLICIES = ("agent", "random", "static", "greedy", "far", "cpsat")


def read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cell(rows: list[dict[str, str]], policy: str, cpsat: dict[str, float]) -> str:
    """`ratio` or `ratio / to-cpsat` of one policy, or a dash if it did not run."""
    mine = [row for row in rows if row["policy"] == policy]
    if not mine:
        return "-"
    ratio = statistics.mean(float(row["ratio"]) for row in mine)
    if not cpsat:
        return f"{ratio:.3f}"
    return f"{ratio:.3f} / {statistics.mean(float(row['makespan']) / cpsat[row['episode']] for row in mine):.3f}"


def main() -> None:
    parser = OneLineParser(prog="results_table.py", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the folder of result CSVs")
    args = parser.parse_args()
    print("| version | workload | " + " | ".join(POLICIES) + " |")
    print("|---|---|" + "---|" * len(POLICIES))
    for version in VERSIONS:
        for workload in WORKLOAD_NAMES:
            path = args.folder / f"{version}_{workload}.csv"
            if not path.exists():
                continue
            rows = read(path)
            shared = args.folder / f"cpsat_{workload}.csv"
            if get_version(version).offline and shared.exists():
                rows += [row for row in read(shared) if row["policy"] == "cpsat"]
            cpsat = {row["episode"]: float(row["makespan"]) for row in rows if row["policy"] == "cpsat"}
            print(f"| {version} | {workload} | " + " | ".join(cell(rows, p, cpsat) for p in POLICIES) + " |")


if __name__ == "__main__":
    main()
