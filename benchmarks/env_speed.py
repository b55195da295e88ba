"""Random-masked-policy steps per second (action mask plus step) of each version's environment,
the scalar `SchedEnv` and the batched `BatchEnv` measured in the same run.

    taskset -c 0 python benchmarks/env_speed.py [--N 14] [--M 14] [--seconds 1] [--runs 3]
        [--reward levels|real|both] [--num_envs 1,64,1024,4096] [--version ...] [--scalar_rng]

Each run steps for `--seconds` with uniformly random valid actions, resetting when an episode ends
(resets included); the figure is the median over `--runs`. The scalar env picks one valid action
per step; the batch draws one per lane from the mask at once (argmax of uniform noise plus the
mask), and that sampling is timed with it. A batch step of `num_envs` lanes counts `num_envs` steps.
"""

from __future__ import annotations

import random
import statistics
import time

import numpy as np

from migsched import VERSIONS, make_env
from migsched.batch import BatchEnv
from migsched.cli import OneLineParser
from migsched.env import REWARDS

WORKLOAD = "mix_scaling_soft"


def scalar_rate(version: str, config: dict, seconds: float, seed: int) -> float:
    """Steps per second of one scalar env over about `seconds`."""
    env = make_env(version, config, WORKLOAD)
    env.reset(seed=seed)
    pick = random.Random(seed).choice
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(1000):
            action = pick(env.action_masks().nonzero()[0].tolist())
            if env.step(action)[2]:
                env.reset()
        steps += 1000
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return steps / elapsed


def batch_rate(version: str, config: dict, num_envs: int, seconds: float, seed: int, scalar_rng: bool) -> float:
    """Lane steps per second of one `BatchEnv` over about `seconds` (its construction and first reset excluded)."""
    env = BatchEnv(version, config, WORKLOAD, num_envs, seed=seed, scalar_rng=scalar_rng)
    env.reset()
    rng = np.random.default_rng(seed)
    calls, start = 0, time.perf_counter()
    while True:
        masks = env.action_masks()
        env.step(np.argmax(rng.random(masks.shape, dtype=np.float32) + masks, axis=1))
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * num_envs / elapsed


def main() -> None:
    parser = OneLineParser(prog="env_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=14, help="ready task slots")
    parser.add_argument("--M", type=int, default=14, help="discretization levels")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one timed run")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure; the median is printed")
    parser.add_argument("--version", dest="versions", default=",".join(VERSIONS), help="one version or several, comma-separated (default: all five)")
    parser.add_argument("--reward", choices=(*REWARDS, "both"), default="both", help="the env_config reward")
    parser.add_argument("--num_envs", default="1,64,1024,4096", help="comma-separated lane counts of the batch")
    parser.add_argument("--scalar_rng", action="store_true", help="batch lanes draw with numpy exactly as scalar envs (slower resets)")
    args = parser.parse_args()
    lanes = [int(n) for n in args.num_envs.split(",")]
    rewards = REWARDS if args.reward == "both" else (args.reward,)
    print(f"random masked policy, N={args.N} M={args.M}, median of {args.runs} runs of {args.seconds:g} s, scalar_rng={args.scalar_rng}")
    print(f"{'version':<16} {'reward':<7} {'scalar':>9} " + " ".join(f"{f'batch {n}':>20}" for n in lanes))
    for version in args.versions.split(","):
        for reward in rewards:
            config = {"N": args.N, "M": args.M, "reward": reward}
            scalar = statistics.median(scalar_rate(version, config, args.seconds, seed) for seed in range(args.runs))
            cells = []
            for n in lanes:
                rate = statistics.median(batch_rate(version, config, n, args.seconds, seed, args.scalar_rng) for seed in range(args.runs))
                cells.append(f"{rate:>12,.0f} ({rate / scalar:>4.1f}x)")
            print(f"{version:<16} {reward:<7} {scalar:>9,.0f} " + " ".join(f"{cell:>20}" for cell in cells), flush=True)


if __name__ == "__main__":
    main()
