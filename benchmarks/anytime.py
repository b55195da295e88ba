"""Schedule quality against seconds per batch: the agent's search, CP-SAT and the baselines.

    taskset -c 0 python benchmarks/anytime.py --version float --model float/trained_models/X.zip --type_tasks mix_scaling_soft [--episodes 40 --seed 1000 --limits 0.01,0.1,1,5 --reference 10 --out anytime_runs/NAME --cpsat_from anytime_runs/OTHER/anytime.csv]

On the seeded episodes first_seed .. first_seed + episodes - 1 (N and M from the model, or
--N/--M without one), every makespan is divided by the CP-SAT reference's makespan on the same
batch (--reference seconds, hinted with the static schedule). Measured per episode: the agent
deterministic, the agent's search (`migsched.search`) with each of --limits seconds, CP-SAT
with each limit (hinted with static; a `from_hint` row is the hint's own schedule, CP-SAT having
found none in time or a longer one), and `static`, `greedy` and `far` with their own times. Without --model,
the baselines and CP-SAT only. One core: torch and CP-SAT use one thread each; pin the process
with `taskset -c 0` so nothing else shares it.

Writes <out>/anytime.csv (one row per episode, method and limit) and <out>/anytime.png (mean
makespan / reference against mean seconds per batch, log scale) and prints the table.
--cpsat_from takes the CP-SAT rows (the reference and every limit) from an earlier anytime.csv
of the same version, workload and episodes instead of solving again: two models of one workload
then share one reference and save 16 s per episode. Each reused row must match this run's
batch (a fingerprint of its task times, the CSV's `batch` column), its hint (a fingerprint of
the static schedule that hinted CP-SAT, the `hint` column: versions' static schedules differ)
and limits, or the run stops.
Offline versions only: online episodes have no batch to search or solve.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from migsched.cli import OneLineParser, model_file
from migsched.evaluation import batch_id, load_model, schedule_hint
from migsched.models import TRUST_FLAG, TRUST_HELP
from migsched.policies import make_baseline
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import run_episode
from migsched.policies.cpsat import CpsatResult, solve_cpsat
from migsched.search import DEFAULT_TEMPERATURE, search
from migsched.versions import REPO_ROOT, VERSIONS, get_version, make_env
from migsched.workloads import WORKLOAD_NAMES

BASELINES = ("static", "greedy", "far")
CSV_COLUMNS = ("episode", "seed", "method", "limit", "makespan", "lower_bound", "ratio", "seconds", "from_hint", "optimal", "rollouts", "batch", "hint")
T = TypeVar("T")


@dataclass(frozen=True)
class Measurement:
    """One method's schedule of one episode: `limit` is its seconds per batch (None: runs to its end)."""

    episode: int
    seed: int
    method: str
    limit: float | None
    makespan: float
    lower_bound: float
    reference: float
    seconds: float
    from_hint: bool | None = None
    optimal: bool | None = None
    rollouts: int | None = None
    batch: str = ""
    hint: str = ""

    @property
    def ratio(self) -> float:
        return self.makespan / self.reference


def timed(call: Callable[[], T]) -> tuple[T, float]:
    """`call()`'s result and its wall-clock seconds."""
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags, checked; the limits parsed and the output folder filled in."""
    parser = OneLineParser(prog="anytime.py", description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=[v for v in VERSIONS if get_version(v).offline], required=True, help="an offline version")
    parser.add_argument("--type_tasks", choices=WORKLOAD_NAMES, required=True, help="the workload of the episodes")
    parser.add_argument(
        "--model",
        type=model_file,
        help="trained model of --version: its zip, weights-only .pt or pretrained:<version>/<workload> (without it: baselines and CP-SAT only)",
    )
    parser.add_argument(TRUST_FLAG, action="store_true", help=f"with --model: {TRUST_HELP}")
    parser.add_argument("--episodes", type=int, default=40, help="seeded episodes (batches)")
    parser.add_argument("--seed", dest="first_seed", type=int, default=1000, help="seed of the first episode; episode k uses seed + k (default 1000)")
    parser.add_argument("--limits", default="0.01,0.1,1,5", help="comma-separated seconds per batch for the search and CP-SAT")
    parser.add_argument("--reference", type=float, default=10.0, help="seconds of the CP-SAT reference per batch")
    parser.add_argument("--search_seed", type=int, default=0, help="seed of the search's rollouts")
    parser.add_argument("--temperature", type=float, default=DEFAULT_TEMPERATURE, help="sampling temperature of the search's rollouts")
    parser.add_argument("--N", type=int, default=14, help="without --model: ready task slots")
    parser.add_argument("--M", type=int, default=14, help="without --model: levels")
    parser.add_argument("--out", type=Path, help="output folder (default anytime_runs/<version>_<type_tasks>)")
    parser.add_argument("--cpsat_from", type=Path, help="an earlier anytime.csv of the same episodes whose CP-SAT rows to reuse")
    args = parser.parse_args(argv)
    try:
        args.limits = sorted({float(x) for x in args.limits.split(",") if x.strip()})
    except ValueError:
        parser.error(f"--limits must be comma-separated seconds, got {args.limits!r}")
    if not args.limits or min(args.limits) <= 0 or args.reference <= 0 or not args.temperature > 0 or args.episodes < 1 or args.N < 1 or args.M < 1:
        parser.error("--limits, --reference, --temperature, --episodes, --N and --M must be positive")
    if args.model and not Path(args.model).is_file():
        parser.error(f"model file not found: {args.model}")
    if args.cpsat_from and not args.cpsat_from.is_file():
        parser.error(f"--cpsat_from file not found: {args.cpsat_from}")
    args.out = args.out or REPO_ROOT / "anytime_runs" / f"{args.version}_{args.type_tasks}"
    return args


def solve(env: Any, hint: list, time_limit: float) -> tuple[CpsatResult, float]:
    """CP-SAT on the episode's batch with one worker, hinted; the result and its wall seconds (model building included)."""
    return timed(lambda: solve_cpsat(env.state.tasks.tolist(), env.initial_free, time_limit=time_limit, workers=1, hint=hint, lower_bound=env.lower_bound))


CpsatRows = dict[tuple[int, str, float], dict[str, str]]
"""CP-SAT rows of an earlier anytime.csv by (seed, method, limit)."""


def hint_id(hint: list) -> str:
    """A fingerprint of a CP-SAT hint (per task its instance and start), to match reused rows."""
    text = repr([None if h is None else (h[0], round(float(h[1]), 9)) for h in hint])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_cpsat_rows(path: Path) -> CpsatRows:
    """The CP-SAT rows (reference and limits) of an earlier anytime.csv."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        found = {(int(r["seed"]), r["method"], float(r["limit"])): r for r in rows if r["method"] in ("cpsat_reference", "cpsat")}
        if not found or any(not r["batch"] or not r.get("hint") for r in found.values()):
            raise ValueError("no CP-SAT rows with a batch and a hint")
        return found
    except (OSError, UnicodeDecodeError, KeyError, ValueError, TypeError, csv.Error) as error:
        raise SystemExit(f"anytime.py: error: --cpsat_from {path} is not an anytime.csv ({error})") from None


def cpsat_measurement(
    args: argparse.Namespace, env: Any, hint: list, episode: int, method: str, limit: float, reference: float | None, batch: str, hinted: str
) -> Measurement:
    """CP-SAT's schedule at `limit`, solved now or reused from --cpsat_from (checked to be this batch's, hinted alike:
    `batch` and `hinted` are the fingerprints of this episode's batch and hint)."""
    seed = args.first_seed + episode
    if args.reused is None:
        result, seconds = solve(env, hint, limit)
        ref = result.makespan if reference is None else reference
        return Measurement(episode, seed, method, limit, result.makespan, env.lower_bound, ref, seconds, result.from_hint, result.proven_optimal)
    row = args.reused.get((seed, method, limit))
    if row is None:
        raise SystemExit(f"anytime.py: error: --cpsat_from has no {method} row for seed {seed} at {limit:g} s")
    if row["batch"] != batch:
        raise SystemExit(f"anytime.py: error: --cpsat_from's seed {seed} is another batch (another workload, N or M?)")
    if row["hint"] != hinted:
        raise SystemExit(f"anytime.py: error: --cpsat_from's seed {seed} was hinted with another static schedule (another version?)")
    makespan = float(row["makespan"])
    ref = makespan if reference is None else reference
    return Measurement(
        episode, seed, method, limit, makespan, env.lower_bound, ref, float(row["seconds"]), row["from_hint"] == "true", row["optimal"] == "true"
    )


def measure_episode(args: argparse.Namespace, env: Any, model: Any, episode: int) -> list[Measurement]:
    """Every method's schedule of episode `episode`, against the CP-SAT reference."""
    seed = args.first_seed + episode
    static, static_seconds = timed(lambda: run_episode(env, make_baseline("static"), seed=seed))
    hint = schedule_hint(static.schedule, len(env.state.tasks))
    batch, hinted = batch_id(env), hint_id(hint)
    rows = [cpsat_measurement(args, env, hint, episode, "cpsat_reference", args.reference, None, batch, hinted)]
    ref = rows[0].makespan
    if model is not None:
        agent, seconds = timed(lambda: run_episode(env, AgentPolicy(model), seed=seed))
        rows.append(Measurement(episode, seed, "agent", None, agent.makespan, agent.lower_bound, ref, seconds))
        for limit in args.limits:
            found = search(model, env, time_limit=limit, seed=args.search_seed, reset_seed=seed, temperature=args.temperature)
            rows.append(Measurement(episode, seed, "search", limit, found.best.makespan, found.best.lower_bound, ref, found.seconds, rollouts=found.rollouts))
    rows.extend(cpsat_measurement(args, env, hint, episode, "cpsat", limit, ref, batch, hinted) for limit in args.limits)
    rows.append(Measurement(episode, seed, "static", None, static.makespan, static.lower_bound, ref, static_seconds))
    for name in BASELINES[1:]:
        result, seconds = timed(partial(run_episode, env, make_baseline(name), seed=seed))
        rows.append(Measurement(episode, seed, name, None, result.makespan, result.lower_bound, ref, seconds))
    return [replace(row, batch=batch, hint=hinted) for row in rows]


def groups(rows: Sequence[Measurement]) -> dict[tuple[str, float | None], list[Measurement]]:
    """The rows by (method, limit), in the order they first appear."""
    grouped: dict[tuple[str, float | None], list[Measurement]] = {}
    for row in rows:
        grouped.setdefault((row.method, row.limit), []).append(row)
    return grouped


def table(rows: Sequence[Measurement]) -> str:
    """Per method and limit: mean makespan / reference, mean seconds, and how many came from the hint."""
    header = f"{'method':<16} {'limit s':>8} {'/reference':>10} {'seconds':>9} {'from hint':>9}"
    lines = [header, "-" * len(header)]
    for (method, limit), group in groups(rows).items():
        hinted = sum(bool(row.from_hint) for row in group)
        lines.append(
            f"{method:<16} {'-' if limit is None else f'{limit:g}':>8} {statistics.mean(r.ratio for r in group):10.4f} "
            f"{statistics.mean(r.seconds for r in group):9.4f} {hinted if group[0].from_hint is not None else '-':>9}"
        )
    return "\n".join(lines)


def write_csv(rows: Sequence[Measurement], path: Path) -> None:
    """One line per episode, method and limit, with the columns of CSV_COLUMNS."""

    def flag(value: bool | None) -> str:
        return "" if value is None else str(value).lower()

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in rows:
            writer.writerow(
                [
                    r.episode,
                    r.seed,
                    r.method,
                    "" if r.limit is None else f"{r.limit:g}",
                    f"{r.makespan:.6f}",
                    f"{r.lower_bound:.6f}",
                    f"{r.ratio:.6f}",
                    f"{r.seconds:.6f}",
                    flag(r.from_hint),
                    flag(r.optimal),
                    "" if r.rollouts is None else r.rollouts,
                    r.batch,
                    r.hint,
                ]
            )


def plot(rows: Sequence[Measurement], path: Path, title: str) -> None:
    """Mean makespan / reference against mean seconds per batch (log x): lines for the search and
    CP-SAT over their limits, points for the deterministic agent and the baselines."""
    fig, ax = plt.subplots(figsize=(8, 4.8))
    grouped = groups(rows)
    for method, style in (("search", "o-"), ("cpsat", "s-")):
        points = sorted(
            (statistics.mean(r.seconds for r in g), statistics.mean(r.ratio for r in g), sum(bool(r.from_hint) for r in g) > len(g) / 2)
            for (m, _), g in grouped.items()
            if m == method
        )
        if points:
            xs, ys, _ = zip(*points)
            (line,) = ax.plot(xs, ys, style, label="agent search" if method == "search" else "CP-SAT (1 worker; hollow: mostly the hint's schedule)")
            hollow = [(x, y) for x, y, h in points if h]
            if hollow:
                ax.plot(*zip(*hollow), "s", markersize=9, markerfacecolor="white", markeredgecolor=line.get_color())
    for (method, _), group in grouped.items():
        if method in ("agent", *BASELINES):
            label = "agent deterministic" if method == "agent" else method
            ax.plot(
                statistics.mean(r.seconds for r in group), statistics.mean(r.ratio for r in group), "D" if method == "agent" else "x", markersize=8, label=label
            )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="CP-SAT reference")
    ax.set_xscale("log")
    ax.set_xlabel("seconds per batch (mean, one core)")
    ax.set_ylabel("mean makespan / CP-SAT reference")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every method on the seeded episodes; write the CSV and the PNG, print the table."""
    import torch

    args = parse_args(argv)
    args.reused = read_cpsat_rows(args.cpsat_from) if args.cpsat_from else None
    torch.set_num_threads(1)
    print("one core: torch uses 1 thread, CP-SAT 1 worker; pin the process with `taskset -c 0` so nothing else shares it", flush=True)
    model, env_config = None, {"N": args.N, "M": args.M}
    if args.model:
        model, env_config = load_model(args.model, args.version, trusted=args.trust_model)
    env = make_env(args.version, env_config, args.type_tasks)
    rows: list[Measurement] = []
    for episode in range(args.episodes):
        rows.extend(measure_episode(args, env, model, episode))
        print(f"episode {episode + 1}/{args.episodes} done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(rows, args.out / "anytime.csv")
    title = f"{args.version}, {args.type_tasks}, N={env_config['N']} M={env_config['M']}, {args.episodes} episodes from seed {args.first_seed}"
    plot(rows, args.out / "anytime.png", title)
    print(title)
    print(f"makespan / CP-SAT({args.reference:g} s)")
    print(table(rows))
    print(f"wrote {args.out / 'anytime.csv'} and {args.out / 'anytime.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
