"""Schedule a real task list with a trained agent (or a baseline): `schedule.py`.

The GPU starts idle in `--partition`. The online version feeds the whole list through its
ready window in file order; an offline version schedules it in batches of N in file order,
each batch starting, idle, in the partition where the previous one ended, after it. Offline,
the agent may search each batch (`--samples`, `--time_limit`: `migsched.search`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from migsched import a100
from migsched.cli import OneLineParser, add_search_flags, check_bounds, check_image_file, check_search_flags
from migsched.env import MigSchedEnv
from migsched.evaluation import load_model
from migsched.models import TRUST_FLAG, TRUST_HELP, first_line
from migsched.policies import BASELINES, make_baseline
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import EpisodeResult, Policy, run_episode
from migsched.policies.static import StaticPolicy
from migsched.replay import Interval, Schedule, lower_bound
from migsched.versions import get_version, make_env
from migsched.workloads import parse_task_file


@dataclass(frozen=True)
class Batch:
    """One episode of the schedule: which tasks (indices into the file), when it began, its
    result, and the wall-clock seconds it took to schedule."""

    tasks: list[int]
    offset: float
    result: EpisodeResult
    seconds: float


#: Plays one episode in an env, reset with the given options, to its end; `env` is left at the end.
Play = Callable[[MigSchedEnv, dict], EpisodeResult]


def play_policy(make_policy: Callable[[], Policy], env: MigSchedEnv, options: dict) -> EpisodeResult:
    """A `Play`: a new policy from `make_policy` plays the episode."""
    return run_episode(env, make_policy(), options=options)


def play_search(model: Any, samples: int | None, time_limit: float | None, temperature: float, seed: int, env: MigSchedEnv, options: dict) -> EpisodeResult:
    """A `Play`: the agent's search (offline) keeps its best schedule of the episode."""
    from migsched.search import search

    return search(model, env, samples=samples, time_limit=time_limit, seed=seed, options=options, temperature=temperature).best


def schedule_tasks(version: str, env_config: dict[str, Any], times: np.ndarray, partition: int, play: Play) -> list[Batch]:
    """Schedule all `times` (in file order) from an idle GPU in `partition`."""
    env = make_env(version, env_config)
    if get_version(version).online:
        began = time.perf_counter()
        result = play(env, {"tasks": times.tolist(), "partition": partition})
        return [Batch(list(range(len(times))), 0.0, result, time.perf_counter() - began)]
    batches, offset = [], 0.0
    for first in range(0, len(times), env.N):
        chunk = list(range(first, min(first + env.N, len(times))))
        idle = [0] * len(a100.PARTITIONS[partition])
        began = time.perf_counter()
        result = play(env, {"tasks": times[chunk].tolist(), "partition": partition, "busy": idle})
        batches.append(Batch(chunk, offset, result, time.perf_counter() - began))
        offset += result.makespan
        partition = env.state.partition
    return batches


def combined(batches: Sequence[Batch]) -> Schedule:
    """All batches as one schedule on file task indices and absolute times."""
    intervals = [
        Interval(i.kind, i.start + b.offset, i.end + b.offset, i.slices, b.tasks[i.task] if i.task >= 0 else -1, i.size, i.step)
        for b in batches
        for i in b.result.schedule.intervals
    ]
    return Schedule(intervals=intervals, free=[sum(b.result.makespan for b in batches)] * a100.NUM_SLICES)


def describe_decisions(batch: Batch, names: Sequence[str]) -> list[str]:
    """One line per decision: what it did and, for runs and reconfigurations, its real start and end."""
    by_step: dict[int, list[Interval]] = {}
    for interval in batch.result.schedule.intervals:
        by_step.setdefault(interval.step, []).append(interval)
    lines = []
    for step, decision in enumerate(batch.result.log):
        bars = by_step.get(step, [])
        if decision.kind == "wait":
            lines.append(f"{'':>23}wait")
        elif decision.kind == "reconfigure":
            start, end = min(b.start for b in bars) + batch.offset, max(b.end for b in bars) + batch.offset
            lines.append(f"{start:10.3f} - {end:10.3f}  reconfig {a100.describe(decision.target)}")
        else:
            bar = bars[0]
            where = f"slice {bar.slices[0]}" if len(bar.slices) == 1 else f"slices {bar.slices[0]}-{bar.slices[-1]}"
            name = names[batch.tasks[decision.target]]
            lines.append(f"{bar.start + batch.offset:10.3f} - {bar.end + batch.offset:10.3f}  run {name} on {bar.size}g instance at {where}")
    return lines


def parse_args(version: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of `schedule.py`, checked, the --gantt path included; any invalid one exits with status 2."""
    parser = OneLineParser(prog="schedule.py", description=f"Schedule a task file with a trained {version} agent or a baseline.")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="trained model: its zip or weights-only .pt")
    who.add_argument("--baseline", choices=[b for b in BASELINES if b != "random"], help="schedule with a baseline instead")
    parser.add_argument(TRUST_FLAG, action="store_true", help=f"with --model: {TRUST_HELP}")
    parser.add_argument("--tasks", required=True, help="task file: 'Task NAME' then 'SIZE TIME' lines for sizes 1, 2, 3, 4, 7")
    parser.add_argument("--partition", type=int, default=1, help="initial partition 1..16 (idle)")
    parser.add_argument("--gantt", help="draw the schedule (PNG)")
    add_search_flags(parser, per="batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search's sampling (default 0)")
    defaults = get_version(version).defaults
    parser.add_argument("--N", type=int, default=defaults["N"], help=f"with --baseline: ready task slots (default {defaults['N']})")
    parser.add_argument("--M", type=int, default=defaults["M"], help=f"with --baseline: levels (default {defaults['M']})")
    args = parser.parse_args(argv)
    if not 1 <= args.partition <= a100.NUM_PARTITIONS:
        parser.error(f"--partition must be in 1..{a100.NUM_PARTITIONS}")
    check_bounds(parser, args, ("N", "M"))
    if args.trust_model and not args.model:
        parser.error(f"{TRUST_FLAG} says how to read --model; give --model")
    check_search_flags(parser, args, get_version(version).online)
    if args.model and not Path(args.model).is_file():
        parser.error(f"model file not found: {args.model}")
    check_image_file(parser, "--gantt", args.gantt)
    return args


def main(version: str, argv: Sequence[str] | None = None) -> int:
    """The `schedule.py` command of a version folder."""
    args = parse_args(version, argv)
    try:
        names, times = parse_task_file(args.tasks)
        if args.model:
            model, env_config = load_model(args.model, version, trusted=args.trust_model)
            play: Play = partial(play_policy, partial(AgentPolicy, model))
            if args.samples or args.time_limit is not None:
                play = partial(play_search, model, args.samples or None, args.time_limit, args.temperature, args.seed)
        else:
            env_config = {"N": args.N, "M": args.M}
            play = partial(play_policy, partial(make_baseline, args.baseline))
    except (OSError, ValueError) as exc:
        print(f"schedule.py: error: {exc}", file=sys.stderr)
        return 2
    batches = schedule_tasks(version, env_config, times, args.partition, play)
    who = "agent" if args.model else args.baseline
    if args.samples or args.time_limit is not None:
        who += (
            " with search ("
            + ", ".join(filter(None, (f"{args.samples} samples" if args.samples else "", f"{args.time_limit} s" if args.time_limit else "")))
            + " per batch)"
        )
    print(
        f"{len(names)} tasks from {args.tasks}, scheduled by the {version} {who} from an idle GPU in partition {args.partition} ({a100.describe(args.partition)})"
    )
    for number, batch in enumerate(batches, start=1):
        print(f"batch {number} ({len(batch.tasks)} tasks, scheduled in {batch.seconds:.3f} s):")
        print("\n".join(describe_decisions(batch, names)))
    makespan = sum(b.result.makespan for b in batches)
    bound = lower_bound(times, [0.0] * a100.NUM_SLICES)
    static = sum(b.result.makespan for b in schedule_tasks(version, env_config, times, args.partition, partial(play_policy, StaticPolicy)))
    print(f"makespan {makespan:.3f} s, lower bound {bound:.3f} s (ratio {makespan / bound:.3f}); static baseline {static:.3f} s")
    if args.gantt:
        from migsched.plots import gantt

        try:
            gantt(combined(batches), args.gantt, title=f"{version} {who}: {Path(args.tasks).name}, makespan {makespan:.2f} s", task_names=names)
        except OSError as exc:
            print(f"schedule.py: error: {args.gantt} not written ({exc.strerror or first_line(exc)}); the schedule above is complete", file=sys.stderr)
            return 1
        print(f"wrote {args.gantt}")
    return 0
