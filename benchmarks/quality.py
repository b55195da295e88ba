"""Schedule quality against wall-clock training time: one version, one workload, one budget.

    python benchmarks/quality.py --version float --type_tasks mix_scaling_soft --minutes 60 --preset fast [--pretrain greedy]

Runs `<version>/train.py --minutes` (N=14, M=14, seed 0): its stages (the preset's recipe for
the workload) share the wall-clock budget and it ends on its own, any clone included; a SIGTERM a
minute after the budget is only a backstop. The run writes a checkpoint every `--save_minutes`
(a 30th of the budget by default: PPO after a rollout, self-imitation after a round); this script
notes the wall-clock minute at which each appeared. After training, each checkpoint and the final model are evaluated
(deterministic policy, `evaluate.py`'s code) on the seeded episodes 0..`--episodes`-1, the same as
the README's results table, beside the static, greedy and FAR baselines and, offline, the CP-SAT
reference (`--cpsat_time` seconds per batch; the result is cached in the output folder).

Writes `<out>/quality.csv` (minutes, timesteps, mean makespan / lower bound, mean makespan /
cpsat) and `<out>/quality.png` (the agent's ratio to cpsat offline, to the lower bound online,
against minutes, with the baselines as horizontal lines); prints the table. Checkpoints are
deleted once evaluated, except the best, kept as `<out>/best_<its name>.zip`; the final model
stays in `<version>/trained_models/`.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from migsched.cli import CPSAT_SECONDS, OneLineParser
from migsched.evaluation import Row, evaluate
from migsched.models import load_checked_model, record_path
from migsched.pretrain import TEACHERS
from migsched.versions import REPO_ROOT, VERSIONS, get_version
from migsched.workloads import WORKLOAD_NAMES

BASELINES = ("static", "greedy", "far")
#: How long after its budget a run that has not ended is sent SIGTERM.
BACKSTOP_S = 60


def config(version: str) -> dict[str, int]:
    """The environment train.py trains with by default: N and M of the version's hyperparams.yaml."""
    defaults = get_version(version).defaults
    return {"N": defaults["N"], "M": defaults["M"]}


def parse_args() -> argparse.Namespace:
    """The flags, checked; the run's steps, checkpoint interval and output folder filled in."""
    parser = OneLineParser(prog="quality.py", description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=VERSIONS, required=True, help="the version to train and measure")
    parser.add_argument("--type_tasks", choices=WORKLOAD_NAMES, required=True, help="the workload")
    parser.add_argument("--minutes", type=float, required=True, help="wall-clock training budget")
    parser.add_argument("--preset", choices=("fast", "none"), default="fast", help="train.py --preset, or none for the defaults")
    parser.add_argument("--pretrain", choices=(*TEACHERS, "none"), help="train.py --pretrain (none: no clone, whatever the preset says)")
    parser.add_argument("--stages", help="train.py --stages, e.g. clone,ppo (default: the preset's recipe)")
    parser.add_argument("--learning_rate", help="train.py --learning_rate, e.g. 0.001 or lin_0.001 (default: the preset's)")
    parser.add_argument("--ent_coef", help="train.py --ent_coef, e.g. 0.01,0.001,0 (default: the version's)")
    parser.add_argument("--num_steps", type=int, help="train.py --num_steps (default: the version's; the minutes end the run first)")
    parser.add_argument("--save_minutes", type=float, help="checkpoint interval in wall-clock minutes (default: a 30th of --minutes)")
    parser.add_argument("--episodes", type=int, default=20, help="seeded evaluation episodes (default 20)")
    parser.add_argument("--cpsat_time", type=float, default=CPSAT_SECONDS, help=f"CP-SAT seconds per batch (default {CPSAT_SECONDS:g})")
    parser.add_argument("--out", type=Path, help="output folder (default quality_runs/<version>_<type_tasks>_<preset>[_pretrain])")
    args = parser.parse_args()
    if args.minutes <= 0 or args.episodes < 1:
        parser.error("--minutes and --episodes must be positive")
    args.save_minutes = args.save_minutes or args.minutes / 30
    label = (
        f"{args.version}_{args.type_tasks}_{args.preset}"
        + (f"_pretrain_{args.pretrain}" if args.pretrain else "")
        + (f"_lr{args.learning_rate}" if args.learning_rate else "")
        + (f"_ent{args.ent_coef}" if args.ent_coef else "")
    )
    args.out = args.out or REPO_ROOT / "quality_runs" / label
    return args


def train(args: argparse.Namespace, log_path: Path) -> list[tuple[float, int, Path]]:
    """Run train.py for the budget; (minutes, timesteps, path) of every model it saved."""
    argv = [
        sys.executable,
        "train.py",
        "--minutes",
        str(args.minutes),
        "--N",
        "14",
        "--M",
        "14",
        "--type_tasks",
        args.type_tasks,
        "--seed",
        "0",
        "--save_minutes",
        str(args.save_minutes),
        "--eval_freq",
        "0",
    ]
    argv += ["--num_steps", str(args.num_steps)] if args.num_steps else []
    argv += ["--preset", args.preset] if args.preset != "none" else []
    argv += ["--pretrain", args.pretrain] if args.pretrain else []
    argv += ["--stages", args.stages] if args.stages else []
    argv += ["--learning_rate", args.learning_rate] if args.learning_rate else []
    argv += ["--ent_coef", args.ent_coef] if args.ent_coef else []
    began = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO_ROOT / args.version, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    timer = threading.Timer(args.minutes * 60 + BACKSTOP_S, proc.send_signal, (signal.SIGTERM,))
    timer.start()
    saved = []
    with open(log_path, "w") as log:
        for line in proc.stdout:
            log.write(line)
            if match := re.match(r"(?:checkpoint|model) saved: (.+\.zip)$", line.strip()):
                path = Path(match.group(1))
                saved.append(((time.perf_counter() - began) / 60, json.loads(record_path(path).read_text())["timesteps"], path))
    timer.cancel()
    if proc.wait() not in (0, 143):
        raise SystemExit(f"quality.py: error: train.py failed (exit {proc.returncode}), see {log_path}")
    return saved


def cpsat_makespans(args: argparse.Namespace) -> dict[int, float]:
    """CP-SAT's makespan per episode, computed once per workload and episode count, then cached."""
    cache = args.out / f"cpsat_{args.type_tasks}_{args.episodes}_{args.cpsat_time:g}s.json"
    if cache.exists():
        return {int(k): v for k, v in json.loads(cache.read_text()).items()}
    rows, _ = evaluate("float", config(args.version), args.type_tasks, args.episodes, 0, ["cpsat"], cpsat_time=args.cpsat_time)
    makespans = {row.episode: row.makespan for row in rows}
    cache.write_text(json.dumps(makespans))
    return makespans


def ratios(rows: list[Row], cpsat: dict[int, float]) -> tuple[float, float | None]:
    """Mean makespan / lower bound and mean makespan / cpsat's (None online)."""
    to_bound = statistics.mean(row.ratio for row in rows)
    return to_bound, statistics.mean(row.makespan / cpsat[row.episode] for row in rows) if cpsat else None


def fmt(value: float | None) -> str:
    """A CSV cell: four decimals, or empty for a ratio that does not apply."""
    return "" if value is None else f"{value:.4f}"


def plot(args: argparse.Namespace, points: list[tuple[float, int, float, float | None]], baselines: dict[str, tuple[float, float | None]]) -> Path:
    """The agent's ratio against minutes, with the baselines as horizontal lines."""
    offline = points[0][3] is not None
    column = 3 if offline else 2
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([p[0] for p in points], [p[column] for p in points], marker="o", markersize=3, label="agent")
    for k, (name, values) in enumerate(baselines.items()):
        ax.axhline(values[column - 2], color=f"C{k + 1}", linestyle="--", label=name)
    if offline:
        ax.axhline(1.0, color="black", linewidth=0.8, label="cpsat")
        ax.axhline(1.05, color="grey", linestyle=":", label="1.05 x cpsat")
    ax.set_xlabel("wall-clock minutes of training")
    ax.set_ylabel("mean makespan / " + ("cpsat makespan" if offline else "lower bound"))
    pretrain = (
        (f", pretrain {args.pretrain}" if args.pretrain else "")
        + (f", learning rate {args.learning_rate}" if args.learning_rate else "")
        + (f", ent_coef {args.ent_coef}" if args.ent_coef else "")
    )
    ax.set_title(f"{args.version}, {args.type_tasks}: {args.episodes} seeded episodes\npreset {args.preset}{pretrain}", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = args.out / "quality.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Train for the budget, evaluate every saved model and the baselines, write the CSV and PNG."""
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(
        f"training {args.version} on {args.type_tasks} for {args.minutes:g} min (preset {args.preset}, checkpoint every {args.save_minutes:g} min)",
        flush=True,
    )
    saved = train(args, args.out / "train.log")
    cpsat = cpsat_makespans(args) if get_version(args.version).offline else {}
    base_rows, _ = evaluate(args.version, config(args.version), args.type_tasks, args.episodes, 0, BASELINES)
    baselines = {name: ratios([r for r in base_rows if r.policy == name], cpsat) for name in BASELINES}
    points = []
    for minutes, steps, path in saved:
        model, _ = load_checked_model(path, args.version)
        rows, _ = evaluate(args.version, config(args.version), args.type_tasks, args.episodes, 0, ["agent"], model=model)
        points.append((minutes, steps, *ratios(rows, cpsat)))
    best = min(range(len(points)), key=lambda k: points[k][3 if cpsat else 2])
    kept = args.out / f"best_{saved[best][2].name}"
    if best == len(saved) - 1:
        shutil.copyfile(saved[best][2], kept)
    else:
        saved[best][2].replace(kept)
    for _, _, path in saved[:-1]:
        path.unlink(missing_ok=True)
    with open(args.out / "quality.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["minutes", "timesteps", "agent_to_lower_bound", "agent_to_cpsat", *(f"{b}_to_{t}" for b in BASELINES for t in ("lower_bound", "cpsat"))]
        )
        for minutes, steps, to_bound, to_cpsat in points:
            writer.writerow([f"{minutes:.2f}", steps, fmt(to_bound), fmt(to_cpsat), *(fmt(v) for b in BASELINES for v in baselines[b])])
    print(f"{'minutes':>8} {'timesteps':>10} {'/ bound':>8} {'/ cpsat':>8}")
    for minutes, steps, to_bound, to_cpsat in points:
        print(f"{minutes:8.2f} {steps:10d} {to_bound:8.4f} {to_cpsat or float('nan'):8.4f}")
    for name, (to_bound, to_cpsat) in baselines.items():
        print(f"{name:>8} {'':>10} {to_bound:8.4f} {to_cpsat or float('nan'):8.4f}")
    print(f"wrote {args.out / 'quality.csv'}, {plot(args, points, baselines)}; best model {kept} (at {points[best][0]:.1f} min); final model {saved[-1][2]}")


if __name__ == "__main__":
    main()
