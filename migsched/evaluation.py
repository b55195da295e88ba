"""Compare a trained agent with the baselines on the same seeded episodes: `evaluate.py`.

Episode k of an evaluation is `env.reset(seed=seed + k)` for every policy, so all policies
schedule the same batches from the same initial GPU state, and every makespan is the env's
real-time replay. `cpsat` is not a policy in the environment but the near-optimal schedule of
the batch with reconfiguration ignored (offline versions only).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from migsched.cli import (
    CPSAT_SECONDS,
    SEED_MAX,
    OneLineParser,
    add_search_flags,
    check_bounds,
    check_image_file,
    check_output_file,
    check_search_flags,
    model_file,
    positive_float,
    progress,
    seed_int,
)
from migsched.env import MigSchedEnv
from migsched.models import TRUST_FLAG, TRUST_HELP, ModelError, first_line, read_facts, write_atomically
from migsched.policies import BASELINES, make_baseline
from migsched.policies.base import EpisodeResult, run_episode
from migsched.policies.static import StaticPolicy
from migsched.replay import Schedule
from migsched.search import DEFAULT_TEMPERATURE, deterministic_episodes, search
from migsched.versions import get_version, make_env
from migsched.workloads import WORKLOAD_NAMES

POLICY_NAMES = ("agent", *BASELINES, "cpsat")
CSV_COLUMNS = ("episode", "policy", "makespan", "lower_bound", "ratio", "optimal", "seconds", "from_hint")


@dataclass(frozen=True)
class Row:
    """One policy's result on one episode: `seconds` it took (the whole search for a searching
    agent); for cpsat, whether it is proven `optimal` and whether it is its hint's schedule
    (`from_hint`: none shorter than the hint within the limit); for a searching agent, its stochastic `rollouts`."""

    episode: int
    policy: str
    makespan: float
    lower_bound: float
    optimal: bool | None = None
    seconds: float | None = None
    from_hint: bool | None = None
    rollouts: int | None = None

    @property
    def ratio(self) -> float:
        return self.makespan / self.lower_bound


def agent_row(env: MigSchedEnv, model: Any, episode: int, seed: int, samples: int, time_limit: float | None, temperature: float) -> tuple[Row, EpisodeResult]:
    """The agent's search on one episode: the best of `samples` rollouts and/or `time_limit` seconds
    (`migsched.search` at `temperature`, its sampling seeded with the episode's seed)."""
    found = search(model, env, samples=samples or None, time_limit=time_limit, seed=seed, reset_seed=seed, temperature=temperature)
    best = found.best
    return Row(episode, "agent", best.makespan, best.lower_bound, seconds=found.seconds, rollouts=found.rollouts), best


def batch_id(env: MigSchedEnv) -> str:
    """A fingerprint of an episode's batch (task times and initial busy times): results of the same
    batch measured apart (a CP-SAT reference, another version) are matched by it."""
    data = np.concatenate([np.asarray(env.state.tasks, dtype=np.float64).ravel(), np.asarray(env.initial_free, dtype=np.float64)])
    return hashlib.sha256(np.round(data, 9).tobytes()).hexdigest()[:16]


def schedule_hint(schedule: Schedule, n_tasks: int) -> list[tuple[tuple[int, int], float]]:
    """A real schedule as a CP-SAT solution hint: per task its (size, first slice) and start."""
    hint: list = [None] * n_tasks
    for interval in schedule.intervals:
        if interval.kind == "run":
            hint[interval.task] = ((interval.size, min(interval.slices)), interval.start)
    return hint


def cpsat_row(env: MigSchedEnv, episode: int, seed: int, time_limit: float) -> Row:
    """The CP-SAT reference of the episode's batch, hinted with the static schedule (which it
    returns, marked `from_hint`, if it finds no shorter one within the limit); `seconds` counts the hint."""
    from migsched.policies.cpsat import solve_cpsat

    began = time.perf_counter()
    hint = schedule_hint(run_episode(env, StaticPolicy(), seed=seed).schedule, len(env.state.tasks))
    result = solve_cpsat(env.state.tasks.tolist(), env.initial_free, time_limit=time_limit, hint=hint, lower_bound=env.lower_bound)
    return Row(episode, "cpsat", result.makespan, env.lower_bound, result.proven_optimal, time.perf_counter() - began, result.from_hint)


def evaluate(
    version: str,
    env_config: dict[str, int],
    type_tasks: str,
    episodes: int,
    seed: int,
    policies: Sequence[str],
    model: Any = None,
    samples: int = 0,
    cpsat_time: float = CPSAT_SECONDS,
    time_limit: float | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
) -> tuple[list[Row], dict[str, dict[int, EpisodeResult]]]:
    """Run every policy on episodes seed, seed+1, ...: the rows and each policy's episode results.
    The agent searches (`samples` rollouts and/or `time_limit` seconds per episode, at
    `temperature`) if asked; otherwise its deterministic episodes are played together
    (`search.deterministic_episodes`, the same episodes), each row's seconds their mean."""
    env = make_env(version, env_config, type_tasks)
    rows, results = [], {}
    for name in policies:
        results[name] = {}
        if name == "agent" and not samples and time_limit is None:  # deterministic: the episodes played together
            began = time.perf_counter()
            played = deterministic_episodes(model, env, [seed + episode for episode in range(episodes)])
            seconds = (time.perf_counter() - began) / max(1, episodes)
            for episode, result in enumerate(played):
                results[name][episode] = result
                rows.append(Row(episode, name, result.makespan, result.lower_bound, seconds=seconds))
            continue
        for episode in progress(range(episodes), episodes, name, "episode"):
            episode_seed = seed + episode
            if name == "cpsat":
                env.reset(seed=episode_seed)
                rows.append(cpsat_row(env, episode, episode_seed, cpsat_time))
                continue
            if name == "agent":
                row, result = agent_row(env, model, episode, episode_seed, samples, time_limit, temperature)
            else:
                began = time.perf_counter()
                result = run_episode(env, make_baseline(name), seed=episode_seed)
                row = Row(episode, name, result.makespan, result.lower_bound, seconds=time.perf_counter() - began)
            results[name][episode] = result
            rows.append(row)
    return rows, results


def summary(rows: Sequence[Row]) -> str:
    """The table per policy: makespan / lower bound (mean, median, p95), / cpsat, and the agent's win share."""
    by_policy: dict[str, dict[int, Row]] = {}
    for row in rows:
        by_policy.setdefault(row.policy, {})[row.episode] = row
    cpsat = by_policy.get("cpsat")
    agent = by_policy.get("agent")
    header = f"{'policy':<8} {'mean':>7} {'median':>7} {'p95':>7} {'/cpsat':>7} {'agent wins':>10} {'s/batch':>8}"
    lines = ["makespan / lower bound", header, "-" * len(header)]
    for name, episodes in by_policy.items():
        ratios = [row.ratio for row in episodes.values()]
        to_cpsat = f"{statistics.mean(row.makespan / cpsat[k].makespan for k, row in episodes.items()):7.3f}" if cpsat else f"{'-':>7}"
        wins = f"{'-':>10}"
        if agent and name != "agent":
            share = statistics.mean(agent[k].makespan < row.makespan - 1e-9 for k, row in episodes.items())
            wins = f"{share:10.0%}"
        seconds = [row.seconds for row in episodes.values() if row.seconds is not None]
        per_batch = f"{statistics.mean(seconds):8.3f}" if seconds else f"{'-':>8}"
        lines.append(
            f"{name:<8} {statistics.mean(ratios):7.3f} {statistics.median(ratios):7.3f} {np.percentile(ratios, 95):7.3f} {to_cpsat} {wins} {per_batch}"
        )
    if cpsat:
        proven = sum(bool(row.optimal) for row in cpsat.values())
        hinted = sum(bool(row.from_hint) for row in cpsat.values())
        lines.append(
            f"cpsat proven optimal on {proven} of {len(cpsat)} episodes"
            + (f"; none shorter than its hint (static) within the limit on {hinted}, the hint's kept" if hinted else "")
        )
    if agent and any(row.rollouts is not None for row in agent.values()):
        rollouts = statistics.mean(row.rollouts or 0 for row in agent.values())
        lines.append(
            f"agent search: {rollouts:.0f} stochastic rollouts per batch on average, {statistics.mean(row.seconds for row in agent.values()):.3f} s per batch"
        )
    return "\n".join(lines)


def write_csv(rows: Sequence[Row], path: str | Path) -> None:
    """One line per episode and policy, with the columns of CSV_COLUMNS, written atomically (a
    full disk leaves `path` as it was)."""
    write_atomically(Path(path), partial(_write_rows, rows))


def _write_rows(rows: Sequence[Row], path: str | Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            optimal = "" if row.optimal is None else str(row.optimal).lower()
            from_hint = "" if row.from_hint is None else str(row.from_hint).lower()
            seconds = "" if row.seconds is None else f"{row.seconds:.4f}"
            writer.writerow([row.episode, row.policy, f"{row.makespan:.6f}", f"{row.lower_bound:.6f}", f"{row.ratio:.6f}", optimal, seconds, from_hint])


def load_model(path: str, version: str, trusted: bool = False) -> tuple[Any, dict[str, int]]:
    """Load a model (a zip, read without unpickling unless `trusted`, or a weights-only `.pt`) and
    read N and M from it; refuse one that does not fit `version`."""
    from migsched.models import load_checked_model

    return load_checked_model(path, version, trusted=trusted)


def parse_args(version: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of `evaluate.py`, checked, output paths included; any invalid one exits with status 2.
    With `--model`, N, M and the workload are the model's unless given (N and M must then agree)."""
    info = get_version(version)
    defaults = info.defaults
    parser = OneLineParser(prog="evaluate.py", description=f"Evaluate a {version} agent and the baselines on the same seeded episodes.")
    parser.add_argument(
        "--model", type=model_file, help="trained model: its zip or weights-only .pt, or pretrained:<version>/<workload> (default: none, the baselines alone)"
    )
    parser.add_argument(TRUST_FLAG, action="store_true", help=TRUST_HELP)
    parser.add_argument("--episodes", type=int, default=100, help="seeded episodes to evaluate (default 100)")
    parser.add_argument(
        "--type_tasks",
        choices=WORKLOAD_NAMES,
        help=f"workload of the episodes (default: the model's, else {defaults['type_tasks']}): {', '.join(WORKLOAD_NAMES)}",
    )
    parser.add_argument("--seed", type=seed_int, default=0, help=f"seed of the first episode; episode k uses seed + k (0..{SEED_MAX}; default 0)")
    add_search_flags(parser, online=info.online)
    parser.add_argument(
        "--policies",
        help=f"comma-separated, from {','.join(POLICY_NAMES)} (default: agent with --model, and {','.join(BASELINES)}; "
        "cpsat, the near-optimal reference, only when named: it takes --cpsat_time per episode)",
    )
    parser.add_argument("--csv", help="write one row per episode and policy to this file (default: none)")
    parser.add_argument("--gantt", help="draw one episode as a Gantt chart to this image file, .png, .pdf or .svg (default: none)")
    parser.add_argument("--gantt_episode", type=int, default=0, help="which episode --gantt draws, 0 is the first (default 0)")
    parser.add_argument("--cpsat_time", type=positive_float, default=CPSAT_SECONDS, help=f"seconds per CP-SAT solve (default {CPSAT_SECONDS:g})")
    parser.add_argument("--N", type=int, help=f"ready task slots (default: the model's, else {defaults['N']})")
    parser.add_argument("--M", type=int, help=f"discretization levels (default: the model's, else {defaults['M']})")
    if info.online:
        parser.add_argument("--queue_len", type=int, default=defaults["queue_len"], help=f"tasks per episode (default {defaults['queue_len']})")
    args = parser.parse_args(argv)
    args.queue_len = getattr(args, "queue_len", None)
    check_bounds(parser, args, ("episodes", "N", "M", "queue_len"))
    if args.trust_model and not args.model:
        parser.error(f"{TRUST_FLAG} says how to read --model; give --model")
    check_search_flags(parser, args)
    if args.seed + args.episodes - 1 > SEED_MAX:
        parser.error(f"--seed {args.seed} with --episodes {args.episodes}: the last episode's seed would pass {SEED_MAX}")
    args.workload_note = None
    if args.model:
        try:
            facts = read_facts(args.model, version)
        except ModelError as exc:
            parser.error(str(exc))
        for flag in ("N", "M"):
            given, trained = getattr(args, flag), getattr(facts, flag)
            if given is not None and trained is not None and given != trained:
                parser.error(f"--{flag} {given}: the model was trained with {flag}={trained}; drop --{flag}")
        args.N, args.M = facts.N, facts.M if facts.M is not None else args.M
        if args.type_tasks is not None and facts.type_tasks not in (None, args.type_tasks):
            args.workload_note = f"evaluate.py: note: the model was trained on {facts.type_tasks}; evaluating on {args.type_tasks}, as --type_tasks asks"
        args.type_tasks = args.type_tasks or facts.type_tasks
    args.N = args.N or defaults["N"]
    args.M = args.M or defaults["M"]
    args.type_tasks = args.type_tasks or defaults["type_tasks"]
    available = [p for p in POLICY_NAMES if (p != "agent" or args.model) and (p != "cpsat" or info.offline)]
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
        args.policies = [p for p in available if p != "cpsat"]
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
            model, env_config = load_model(args.model, version, trusted=args.trust_model)
        except (OSError, ValueError) as exc:
            print(f"evaluate.py: error: {exc}", file=sys.stderr)
            return 2
    if get_version(version).online:
        env_config["queue_len"] = args.queue_len
    if args.workload_note:
        print(args.workload_note, file=sys.stderr)
    if "cpsat" in args.policies:
        print(f"cpsat: up to {args.cpsat_time:g} s per episode, {args.episodes} episodes: up to {args.cpsat_time * args.episodes / 60:.1f} min", flush=True)
    rows, results = evaluate(
        version, env_config, args.type_tasks, args.episodes, args.seed, args.policies, model, args.samples, args.cpsat_time, args.time_limit, args.temperature
    )
    print(f"{version}, {args.type_tasks}, N={env_config['N']} M={env_config['M']}, {args.episodes} episodes from seed {args.seed}")
    print(summary(rows))
    target = None
    try:
        if args.csv:
            target = args.csv
            write_csv(rows, args.csv)
            print(f"wrote {args.csv}")
        if args.gantt:
            from migsched.plots import gantt

            drawn = next(name for name in args.policies if results.get(name))
            result = results[drawn][args.gantt_episode]
            target = args.gantt
            gantt(
                result.schedule,
                args.gantt,
                title=f"{version} {drawn}, {args.type_tasks} episode {args.gantt_episode}: makespan {result.makespan:.1f} s, makespan / lower bound {result.ratio:.3f}",
            )
            print(f"wrote {args.gantt}")
    except OSError as exc:
        print(f"evaluate.py: error: {target} not written ({exc.strerror or first_line(exc)}); the table above is complete", file=sys.stderr)
        return 1
    return 0


EVAL_SEED = 1_000_000  # evaluation episodes during training use seeds from here, apart from training's
EVAL_BASELINES = ("static", "greedy", "far")


class PeriodicEvaluation:
    """Evaluates the model being trained every `eval_freq` timesteps on a fixed seeded episode set.

    Each evaluation prints the mean makespan ratio, records `eval/makespan_ratio` (TensorBoard
    when enabled), appends a row to `csv_path` (timesteps, minutes, agent, then the baselines'
    means on the same episodes, computed once) and saves a new best model with `save_best`.
    `stages.EvalCallback` calls `start` once, then `evaluate` whenever `due`.
    """

    def __init__(
        self, version: str, env_config: dict[str, int], type_tasks: str, eval_freq: int, episodes: int, csv_path: Path, save_best: Callable[[Any], Path]
    ) -> None:
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

        ratio = statistics.mean(result.ratio for result in deterministic_episodes(model, self.env, self.seeds))
        minutes = (time.perf_counter() - self.began) / 60
        with open(self.csv_path, "a", newline="") as handle:
            csv.writer(handle).writerow([timesteps, f"{minutes:.3f}", f"{ratio:.6f}", *(f"{v:.6f}" for v in self.baselines.values())])
        note = ""
        if ratio < self.best:
            self.best = ratio
            note = f", new best saved: {self.save_best(model)}"
        print(f"evaluation at {timesteps} timesteps: mean makespan / lower bound {ratio:.4f} over {len(self.seeds)} episodes{note}", flush=True)
        return ratio
