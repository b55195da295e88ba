"""Compare a trained agent with the baselines on the same seeded episodes: `evaluate.py`.

Episode k of an evaluation is `env.reset(seed=seed + k)` for every policy, so all policies
schedule the same batches from the same initial GPU state, and every makespan is the env's
real-time replay. `cpsat` is not a policy in the environment but the near-optimal schedule of
the batch with reconfiguration ignored (offline versions only).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from migsched.cli import SEED_MAX, OneLineParser, check_image_file, check_output_file, positive_float, seed_int
from migsched.env import MigSchedEnv
from migsched.policies.base import EpisodeResult, Policy, RandomPolicy, run_episode
from migsched.policies.greedy import GreedyPolicy
from migsched.policies.static import StaticPolicy
from migsched.replay import Schedule
from migsched.versions import make_env
from migsched.workloads import WORKLOAD_NAMES

BASELINES = ("random", "static", "greedy", "far")
POLICY_NAMES = ("agent", *BASELINES, "cpsat")
CSV_COLUMNS = ("episode", "policy", "makespan", "lower_bound", "ratio", "optimal")


@dataclass(frozen=True)
class Row:
    """One policy's result on one episode (`optimal` only for cpsat)."""

    episode: int
    policy: str
    makespan: float
    lower_bound: float
    optimal: bool | None = None

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound


class AgentPolicy(Policy):
    """A trained MaskablePPO model: deterministic, or sampling its policy after seeding torch with `sample_seed`.

    A deterministic policy can cycle forever (reconfigure, wait, reconfigure back): after 20
    steps per task it samples from its policy for the rest of the episode, seeded, so every
    episode ends and the result stays reproducible.
    """

    name = "agent"

    def __init__(self, model: Any, sample_seed: int | None = None) -> None:
        self.model = model
        self.sample_seed = sample_seed

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        import torch

        self.steps = 0
        self.deterministic_steps = 0 if self.sample_seed is not None else 20 * len(env.state.tasks) + 100
        torch.manual_seed(self.sample_seed if self.sample_seed is not None else (seed or 0))

    def act(self, env: MigSchedEnv) -> int:
        obs = env.encoder.encode(env.state)
        self.steps += 1
        deterministic = self.steps <= self.deterministic_steps
        action, _ = self.model.predict(obs, action_masks=env.action_masks(), deterministic=deterministic)
        return int(action)


def make_baseline(name: str) -> Policy:
    """A baseline policy by name."""
    if name == "far":
        from migsched.policies.far import FarPolicy

        return FarPolicy()
    return {"random": RandomPolicy, "static": StaticPolicy, "greedy": GreedyPolicy}[name]()


def agent_episode(env: MigSchedEnv, model: Any, seed: int, samples: int) -> EpisodeResult:
    """The agent's deterministic episode, or the best of it and `samples` stochastic ones."""
    best = run_episode(env, AgentPolicy(model), seed=seed)
    for k in range(samples):
        trial = run_episode(env, AgentPolicy(model, sample_seed=seed * 1000 + k), seed=seed)
        if trial.makespan < best.makespan:
            best = trial
    return best


def schedule_hint(schedule: Schedule, n_tasks: int) -> list[tuple[tuple[int, int], float]]:
    """A real schedule as a CP-SAT solution hint: per task its (size, first slice) and start."""
    hint: list = [None] * n_tasks
    for interval in schedule.intervals:
        if interval.kind == "run":
            hint[interval.task] = ((interval.size, min(interval.slices)), interval.start)
    return hint


def cpsat_row(env: MigSchedEnv, episode: int, seed: int, time_limit: float) -> Row:
    """The CP-SAT reference of the episode's batch, hinted with the static schedule."""
    from migsched.policies.cpsat import solve_cpsat

    hint = schedule_hint(run_episode(env, StaticPolicy(), seed=seed).schedule, len(env.state.tasks))
    result = solve_cpsat(env.state.tasks.tolist(), env.initial_free, time_limit=time_limit, hint=hint, lower_bound=env.lower_bound)
    return Row(episode, "cpsat", result.makespan, env.lower_bound, result.proven_optimal)


def evaluate(
    version: str,
    env_config: dict[str, int],
    type_tasks: str,
    episodes: int,
    seed: int,
    policies: Sequence[str],
    model: Any = None,
    samples: int = 0,
    cpsat_time: float = 10.0,
) -> tuple[list[Row], dict[str, dict[int, EpisodeResult]]]:
    """Run every policy on episodes seed, seed+1, ...: the rows and each policy's episode results."""
    env = make_env(version, env_config, type_tasks)
    rows, results = [], {}
    for name in policies:
        results[name] = {}
        for episode in range(episodes):
            episode_seed = seed + episode
            if name == "cpsat":
                env.reset(seed=episode_seed)
                rows.append(cpsat_row(env, episode, episode_seed, cpsat_time))
                continue
            if name == "agent":
                result = agent_episode(env, model, episode_seed, samples)
            else:
                result = run_episode(env, make_baseline(name), seed=episode_seed)
            results[name][episode] = result
            rows.append(Row(episode, name, result.makespan, result.lower_bound))
    return rows, results


def summary(rows: Sequence[Row]) -> str:
    """The table per policy: makespan / lower bound (mean, median, p95), / cpsat, and the agent's win share."""
    by_policy: dict[str, dict[int, Row]] = {}
    for row in rows:
        by_policy.setdefault(row.policy, {})[row.episode] = row
    cpsat = by_policy.get("cpsat")
    agent = by_policy.get("agent")
    header = f"{'policy':<8} {'mean':>7} {'median':>7} {'p95':>7} {'/cpsat':>7} {'agent wins':>10}"
    lines = ["makespan / lower bound", header, "-" * len(header)]
    for name, episodes in by_policy.items():
        ratios = [row.ratio for row in episodes.values()]
        to_cpsat = f"{statistics.mean(row.makespan / cpsat[k].makespan for k, row in episodes.items()):7.3f}" if cpsat else f"{'-':>7}"
        wins = f"{'-':>10}"
        if agent and name != "agent":
            share = statistics.mean(agent[k].makespan < row.makespan - 1e-9 for k, row in episodes.items())
            wins = f"{share:10.0%}"
        lines.append(f"{name:<8} {statistics.mean(ratios):7.3f} {statistics.median(ratios):7.3f} {np.percentile(ratios, 95):7.3f} {to_cpsat} {wins}")
    if cpsat:
        proven = sum(bool(row.optimal) for row in cpsat.values())
        lines.append(f"cpsat proven optimal on {proven} of {len(cpsat)} episodes")
    return "\n".join(lines)


def write_csv(rows: Sequence[Row], path: str | Path) -> None:
    """One line per episode and policy, with the columns of CSV_COLUMNS."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            optimal = "" if row.optimal is None else str(row.optimal).lower()
            writer.writerow([row.episode, row.policy, f"{row.makespan:.6f}", f"{row.lower_bound:.6f}", f"{row.ratio:.6f}", optimal])


def load_model(path: str, version: str) -> tuple[Any, dict[str, int]]:
    """Load a MaskablePPO zip and read N and M from it; refuse one that does not fit `version`."""
    from migsched.models import load_checked_model

    return load_checked_model(path, version)


def parse_args(version: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of `evaluate.py`, checked, output paths included; any invalid one exits with status 2."""
    parser = OneLineParser(prog="evaluate.py", description=f"Evaluate a {version} agent and the baselines on the same seeded episodes.")
    parser.add_argument("--model", help="trained model zip (without it, the baselines alone)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--type_tasks", default="good_scaling", choices=WORKLOAD_NAMES)
    parser.add_argument("--seed", type=seed_int, default=0, help=f"seed of the first episode; episode k uses seed + k (0..{SEED_MAX})")
    parser.add_argument("--samples", type=int, default=0, help="also try K stochastic rollouts per episode and keep the best")
    parser.add_argument("--policies", help=f"comma-separated, from {','.join(POLICY_NAMES)} (default: all that apply)")
    parser.add_argument("--csv", help="write one row per episode and policy")
    parser.add_argument("--gantt", help="draw one episode as a Gantt chart (PNG)")
    parser.add_argument("--gantt_episode", type=int, default=0)
    parser.add_argument("--cpsat_time", type=positive_float, default=10.0, help="seconds per CP-SAT solve")
    parser.add_argument("--N", type=int, default=14, help="without --model: ready task slots")
    parser.add_argument("--M", type=int, default=14, help="without --model: levels")
    parser.add_argument("--queue_len", type=int, default=50, help="online only: tasks per episode")
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.samples < 0 or args.N < 1 or args.M < 1 or args.queue_len < 1:
        parser.error("--episodes, --N, --M and --queue_len must be positive, --samples >= 0")
    if args.seed + args.episodes - 1 > SEED_MAX:
        parser.error(f"--seed {args.seed} with --episodes {args.episodes}: the last episode's seed would pass {SEED_MAX}")
    if args.model and not Path(args.model).is_file():
        parser.error(f"model file not found: {args.model}")
    offline = version != "online"
    available = [p for p in POLICY_NAMES if (p != "agent" or args.model) and (p != "cpsat" or offline)]
    if args.policies is not None:
        args.policies = [p.strip() for p in args.policies.split(",") if p.strip()]
        unknown = [p for p in args.policies if p not in available]
        twice = sorted({p for p in args.policies if args.policies.count(p) > 1})
        if not args.policies:
            parser.error(f"--policies: empty list; choose from {','.join(available)}")
        if unknown:
            parser.error(f"policies {unknown} not available here; choose from {','.join(available)}")
        if twice:
            parser.error(f"--policies: listed twice: {','.join(twice)}")
    else:
        args.policies = available
    if not 0 <= args.gantt_episode < args.episodes:
        parser.error("--gantt_episode must be one of the evaluated episodes")
    if args.gantt and args.policies == ["cpsat"]:
        parser.error("--gantt draws a policy's episode, and cpsat is a reference without one: add a policy to --policies")
    check_output_file(parser, "--csv", args.csv)
    check_image_file(parser, "--gantt", args.gantt)
    return args


def main(version: str, argv: Sequence[str] | None = None) -> int:
    """The `evaluate.py` command of a version folder."""
    args = parse_args(version, argv)
    model, env_config = None, {"N": args.N, "M": args.M}
    if args.model:
        try:
            model, env_config = load_model(args.model, version)
        except (OSError, ValueError) as exc:
            print(f"evaluate.py: error: {exc}", file=sys.stderr)
            return 2
    if version == "online":
        env_config["queue_len"] = args.queue_len
    rows, results = evaluate(version, env_config, args.type_tasks, args.episodes, args.seed, args.policies, model, args.samples, args.cpsat_time)
    print(f"{version}, {args.type_tasks}, N={env_config['N']} M={env_config['M']}, {args.episodes} episodes from seed {args.seed}")
    print(summary(rows))
    if args.csv:
        write_csv(rows, args.csv)
        print(f"wrote {args.csv}")
    if args.gantt:
        from migsched.plots import gantt

        drawn = next(name for name in args.policies if results.get(name))
        result = results[drawn][args.gantt_episode]
        gantt(result.schedule, args.gantt, title=f"{version} {drawn}, {args.type_tasks} episode {args.gantt_episode}: makespan {result.makespan:.1f} s, ratio {result.ratio:.3f}")
        print(f"wrote {args.gantt}")
    return 0


EVAL_SEED = 1_000_000  # evaluation episodes during training use seeds from here, apart from training's
EVAL_BASELINES = ("static", "greedy", "far")


class PeriodicEvaluation:
    """Evaluates the model being trained every `eval_freq` timesteps on a fixed seeded episode set.

    Each evaluation prints the mean makespan ratio, records `eval/makespan_ratio` (TensorBoard
    when enabled), appends a row to `csv_path` (timesteps, minutes, agent, then the baselines'
    means on the same episodes, computed once) and saves a new best model with `save_best`.
    `training.EvalCallback` calls `start` once, then `evaluate` whenever `due`.
    """

    def __init__(self, version: str, env_config: dict[str, int], type_tasks: str, eval_freq: int, episodes: int, csv_path: Path, save_best: Callable[[Any], Path]) -> None:
        self.env = make_env(version, env_config, type_tasks)
        self.eval_freq = eval_freq
        self.seeds = [EVAL_SEED + k for k in range(episodes)]
        self.csv_path = csv_path
        self.save_best = save_best
        self.best = float("inf")

    def start(self) -> None:
        """Measure the baselines and write the CSV header."""
        import time

        self.began = time.perf_counter()
        self.baselines = {name: statistics.mean(run_episode(self.env, make_baseline(name), seed=s).ratio for s in self.seeds) for name in EVAL_BASELINES}
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.csv_path, "w", newline="") as handle:
            csv.writer(handle).writerow(["timesteps", "minutes", "agent", *EVAL_BASELINES])
        print("evaluation baselines (mean makespan / lower bound): " + ", ".join(f"{k} {v:.4f}" for k, v in self.baselines.items()), flush=True)

    def due(self, steps_done: int, steps_before: int) -> bool:
        """Whether an evaluation boundary was crossed between two step counts of the run."""
        return steps_done // self.eval_freq > steps_before // self.eval_freq

    def evaluate(self, model: Any, timesteps: int) -> float:
        """Evaluate `model` (deterministic), log and record the result, keep it if it is the best."""
        import time

        ratio = statistics.mean(run_episode(self.env, AgentPolicy(model), seed=s).ratio for s in self.seeds)
        minutes = (time.perf_counter() - self.began) / 60
        with open(self.csv_path, "a", newline="") as handle:
            csv.writer(handle).writerow([timesteps, f"{minutes:.3f}", f"{ratio:.6f}", *(f"{v:.6f}" for v in self.baselines.values())])
        note = ""
        if ratio < self.best:
            self.best = ratio
            note = f", new best saved: {self.save_best(model)}"
        print(f"evaluation at {timesteps} timesteps: mean makespan / lower bound {ratio:.4f} over {len(self.seeds)} episodes{note}", flush=True)
        return ratio
