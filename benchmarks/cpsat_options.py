"""What the CP-SAT reference's options buy: the cumulative constraint, makespan >= lower bound, the static hint.

    python benchmarks/cpsat_options.py [--batches 10] [--time 10] [--type_tasks mix_scaling_soft]

On seeded 14-task episodes of the float environment (the evaluation's own batches and busy
starts), each variant solves every batch with 2 workers and the same time limit; the table
gives the mean best makespan / lower bound, how many were proven optimal, and the mean solver
bound / lower bound.
"""

from __future__ import annotations

import statistics

from migsched import make_env
from migsched.cli import OneLineParser
from migsched.evaluation import schedule_hint
from migsched.policies.base import run_episode
from migsched.policies.cpsat import solve_cpsat
from migsched.policies.static import StaticPolicy

VARIANTS = {
    "plain": dict(redundant=False, bound=False, hint=False),
    "+cumulative": dict(redundant=True, bound=False, hint=False),
    "+lower bound": dict(redundant=False, bound=True, hint=False),
    "+static hint": dict(redundant=False, bound=False, hint=True),
    "all three": dict(redundant=True, bound=True, hint=True),
}


def main() -> None:
    parser = OneLineParser(prog="cpsat_options.py", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="seeded batches solved with each option set")
    parser.add_argument("--time", type=float, default=10.0, help="CP-SAT seconds per batch")
    parser.add_argument("--type_tasks", default="mix_scaling_soft", help="workload of the batches")
    args = parser.parse_args()
    env = make_env("float", {"N": 14, "M": 14}, args.type_tasks)
    results: dict[str, list[tuple[float, bool, float]]] = {name: [] for name in VARIANTS}
    for seed in range(args.batches):
        hint = schedule_hint(run_episode(env, StaticPolicy(), seed=seed).schedule, len(env.state.tasks))
        bound = env.lower_bound
        for name, v in VARIANTS.items():
            r = solve_cpsat(
                env.state.tasks.tolist(),
                env.initial_free,
                time_limit=args.time,
                redundant=v["redundant"],
                lower_bound=bound if v["bound"] else None,
                hint=hint if v["hint"] else None,
            )
            results[name].append((r.makespan / bound, r.proven_optimal, r.best_bound / bound))
    print(f"{args.type_tasks}, {args.batches} batches of 14 tasks, {args.time:g} s, 2 workers")
    print(f"{'variant':<14} {'makespan/LB':>11} {'proven':>7} {'bound/LB':>9}")
    for name, rows in results.items():
        print(f"{name:<14} {statistics.mean(r[0] for r in rows):11.4f} {sum(r[1] for r in rows):>4}/{len(rows):<2} {statistics.mean(r[2] for r in rows):9.4f}")


if __name__ == "__main__":
    main()
