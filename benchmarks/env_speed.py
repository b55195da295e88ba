"""Random-masked-policy steps per second (action mask plus step) of each version's environment.

    python benchmarks/env_speed.py [--N 14] [--M 14] [--steps 200000] [--runs 5] [--reward levels|real]

Each run steps one environment with a uniformly random valid action for `--steps` steps,
resetting when an episode ends (resets included); the figure is the median over `--runs`.
"""

from __future__ import annotations

import random
import statistics
import time

from migsched import VERSIONS, make_env
from migsched.cli import OneLineParser
from migsched.env import REWARDS


def steps_per_second(version: str, n_slots: int, levels: int, steps: int, seed: int, reward: str = "levels") -> float:
    """One timed run of `steps` random masked steps with the given training reward."""
    env = make_env(version, {"N": n_slots, "M": levels, "reward": reward}, "mix_scaling_soft")
    env.reset(seed=seed)
    pick = random.Random(seed).choice
    start = time.perf_counter()
    for _ in range(steps):
        action = pick(env.action_masks().nonzero()[0].tolist())
        if env.step(action)[2]:
            env.reset()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = OneLineParser(prog="env_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=14, help="ready task slots")
    parser.add_argument("--M", type=int, default=14, help="discretization levels")
    parser.add_argument("--steps", type=int, default=200_000, help="random masked steps per run")
    parser.add_argument("--runs", type=int, default=5, help="runs; the median is printed")
    parser.add_argument("--version", dest="versions", default=",".join(VERSIONS), help="one version or several, comma-separated (default: all five)")
    parser.add_argument("--reward", choices=REWARDS, default="levels", help="the env_config reward")
    args = parser.parse_args()
    print(f"random masked policy, N={args.N} M={args.M}, reward={args.reward}, {args.steps} steps x {args.runs} runs")
    print(f"{'version':<16} {'median steps/s':>15} {'min':>10} {'max':>10}")
    for version in args.versions.split(","):
        rates = [steps_per_second(version, args.N, args.M, args.steps, seed, args.reward) for seed in range(args.runs)]
        print(f"{version:<16} {statistics.median(rates):>15,.0f} {min(rates):>10,.0f} {max(rates):>10,.0f}")


if __name__ == "__main__":
    main()
