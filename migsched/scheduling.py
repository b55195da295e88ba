"""Schedule a real task list with a trained agent (or a baseline): `schedule.py`.

The GPU starts idle in `--partition`. The online version feeds the whole list through its
ready window in file order; an offline version schedules it in batches of N in file order,
each batch starting, idle, in the partition where the previous one ended, after it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from migsched import a100
from migsched.cli import OneLineParser, check_image_file
from migsched.evaluation import BASELINES, AgentPolicy, load_model, make_baseline
from migsched.policies.base import EpisodeResult, Policy, run_episode
from migsched.policies.static import StaticPolicy
from migsched.replay import Interval, Schedule, lower_bound
from migsched.versions import make_env
from migsched.workloads import parse_task_file


@dataclass(frozen=True)
class Batch:
    """One episode of the schedule: which tasks (indices into the file), when it began, its result."""

    tasks: list[int]
    offset: float
    result: EpisodeResult


def schedule_tasks(version: str, env_config: dict[str, int], times: np.ndarray, partition: int, make_policy: Callable[[], Policy]) -> list[Batch]:
    """Schedule all `times` (in file order) from an idle GPU in `partition`."""
    env = make_env(version, env_config)
    if version == "online":
        result = run_episode(env, make_policy(), options={"tasks": times.tolist(), "partition": partition})
        return [Batch(list(range(len(times))), 0.0, result)]
    batches, offset = [], 0.0
    for first in range(0, len(times), env.N):
        chunk = list(range(first, min(first + env.N, len(times))))
        idle = [0] * len(a100.PARTITIONS[partition])
        result = run_episode(env, make_policy(), options={"tasks": times[chunk].tolist(), "partition": partition, "busy": idle})
        batches.append(Batch(chunk, offset, result))
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
    who.add_argument("--model", help="trained model zip")
    who.add_argument("--baseline", choices=[b for b in BASELINES if b != "random"], help="schedule with a baseline instead")
    parser.add_argument("--tasks", required=True, help="task file: 'Task NAME' then 'SIZE TIME' lines for sizes 1, 2, 3, 4, 7")
    parser.add_argument("--partition", type=int, default=1, help="initial partition 1..16 (idle)")
    parser.add_argument("--gantt", help="draw the schedule (PNG)")
    parser.add_argument("--N", type=int, default=14, help="with --baseline: ready task slots")
    parser.add_argument("--M", type=int, default=14, help="with --baseline: levels")
    args = parser.parse_args(argv)
    if not 1 <= args.partition <= a100.NUM_PARTITIONS:
        parser.error(f"--partition must be in 1..{a100.NUM_PARTITIONS}")
    if args.N < 1 or args.M < 1:
        parser.error("--N and --M must be >= 1")
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
            model, env_config = load_model(args.model, version)
            make_policy: Callable[[], Policy] = partial(AgentPolicy, model)
        else:
            env_config = {"N": args.N, "M": args.M}
            make_policy = partial(make_baseline, args.baseline)
    except (OSError, ValueError) as exc:
        print(f"schedule.py: error: {exc}", file=sys.stderr)
        return 2
    batches = schedule_tasks(version, env_config, times, args.partition, make_policy)
    who = "agent" if args.model else args.baseline
    print(f"{len(names)} tasks from {args.tasks}, scheduled by the {version} {who} from an idle GPU in partition {args.partition} ({a100.describe(args.partition)})")
    for number, batch in enumerate(batches, start=1):
        if len(batches) > 1:
            print(f"batch {number} ({len(batch.tasks)} tasks):")
        print("\n".join(describe_decisions(batch, names)))
    makespan = sum(b.result.makespan for b in batches)
    bound = lower_bound(times, [0.0] * a100.NUM_SLICES)
    static = sum(b.result.makespan for b in schedule_tasks(version, env_config, times, args.partition, StaticPolicy))
    print(f"makespan {makespan:.3f} s, lower bound {bound:.3f} s (ratio {makespan / bound:.3f}); static baseline {static:.3f} s")
    if args.gantt:
        from migsched.plots import gantt

        gantt(combined(batches), args.gantt, title=f"{version} {who}: {Path(args.tasks).name}, makespan {makespan:.2f} s", task_names=names)
        print(f"wrote {args.gantt}")
    return 0
