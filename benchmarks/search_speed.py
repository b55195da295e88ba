"""Stochastic rollouts per second of the agent's search (`migsched.search`), the time of one
self-imitation round's episodes (`pretrain.imitation_demonstrations`) and of an evaluation's
deterministic episodes (`evaluation.evaluate`).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/search_speed.py --model float=PATH.zip --model direct_reconfig=PATH.zip
        [--N 14] [--M 14] [--queue_len 50] [--type_tasks wide_times] [--limits 0.1,1] [--runs 5] [--imitation 100] [--samples 64] [--epochs 5]
        [--evaluation 200]

Each run is one search of episode `reset_seed = run` with `time_limit` seconds; its figure is
`rollouts / seconds` (the deterministic rollout and the final replay included in the seconds, as
the search reports them), and the table gives the median over `--runs`. With `--imitation K`,
the seconds of one self-imitation round are printed per model too: `imitation_demonstrations`
over K episodes with `--samples` rollouts each, then `clone` of its schedules for `--epochs`
passes (as `train.py --imitation_rounds` does). With `--evaluation K`, the seconds of the agent's
deterministic episodes 0..K-1 in `evaluate` (as `evaluate.py` and train.py's periodic
evaluation play them), the median of `--runs`. It uses only the public API, so the same script
measures any checkout put first on PYTHONPATH. `--queue_len` configures an online model's queue.
"""

from __future__ import annotations

import statistics
import time

import torch
from sb3_contrib import MaskablePPO

from migsched import make_env
from migsched.cli import OneLineParser
from migsched.evaluation import evaluate
from migsched.pretrain import clone, imitation_demonstrations
from migsched.search import search
from migsched.versions import get_version


def search_rates(model: MaskablePPO, version: str, config: dict, type_tasks: str, limit: float, runs: int) -> list[float]:
    """Rollouts per second of `runs` searches of `limit` seconds, one per episode seed."""
    env = make_env(version, config, type_tasks)
    search(model, env, samples=8, reset_seed=0)  # warm-up: compilation, caches
    rates = []
    for run in range(runs):
        result = search(model, env, time_limit=limit, seed=run, reset_seed=run)
        rates.append(result.rollouts / result.seconds)
    return rates


def main() -> None:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="VERSION=PATH of a trained model; repeat for several")
    parser.add_argument("--N", type=int, default=14, help="ready task slots (the model's)")
    parser.add_argument("--M", type=int, default=14, help="discretization levels (the model's)")
    parser.add_argument("--queue_len", type=int, default=50, help="an online model's queue of tasks per episode")
    parser.add_argument("--type_tasks", default="wide_times", help="workload of the episodes")
    parser.add_argument("--limits", default="0.1,1", help="comma-separated seconds per search (empty: none)")
    parser.add_argument("--runs", type=int, default=5, help="searches per figure (episodes 0..runs-1); the median is printed")
    parser.add_argument("--imitation", type=int, default=0, help="episodes of one self-imitation round to time (0: none)")
    parser.add_argument("--samples", type=int, default=64, help="stochastic rollouts per self-imitation episode")
    parser.add_argument("--epochs", type=int, default=5, help="cloning passes over a self-imitation round's schedules")
    parser.add_argument("--evaluation", type=int, default=0, help="deterministic episodes of the agent in evaluate to time (0: none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| version | seconds per search | rollouts/s (median) | runs |")
    print("|---|---|---|---|")
    timings = []
    for entry in args.model:
        version, path = entry.split("=", 1)
        model = MaskablePPO.load(path, device="cpu")
        online = get_version(version).online  # searched only in hindsight, by self-imitation: no rollouts/s row
        config = {"N": args.N, "M": args.M, **({"queue_len": args.queue_len} if online else {})}
        for limit in () if online else (float(x) for x in args.limits.split(",") if x):
            rates = search_rates(model, version, config, args.type_tasks, limit, args.runs)
            print(f"| {version} | {limit:g} | {statistics.median(rates):,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} |", flush=True)
        if args.imitation:
            began = time.perf_counter()
            data = imitation_demonstrations(model, version, config, args.type_tasks, episodes=args.imitation, samples=args.samples)
            episodes = time.perf_counter() - began
            clone(model, data, epochs=args.epochs, seed=0)
            cloned = time.perf_counter() - began - episodes
            timings.append(
                f"{version}: one self-imitation round, {args.imitation} episodes x {args.samples} samples: episodes {episodes:.2f} s, "
                f"clone of {len(data)} steps x {args.epochs} epochs {cloned:.2f} s, round {episodes + cloned:.2f} s"
            )
        if args.evaluation:
            seconds = []
            for _ in range(args.runs):
                began = time.perf_counter()
                evaluate(version, config, args.type_tasks, args.evaluation, 0, ["agent"], model=model)
                seconds.append(time.perf_counter() - began)
            timings.append(f"{version}: evaluation of {args.evaluation} deterministic episodes {statistics.median(seconds):.3f} s (median of {args.runs})")
    for line in timings:
        print(line)


if __name__ == "__main__":
    main()
