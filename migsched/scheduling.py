"""Schedule a real task list with a trained agent (or a baseline): `schedule.py`.

The GPU starts idle in `--partition`. The online version feeds the whole list through its
ready window in file order; an offline version schedules it in batches of N in file order,
each batch starting, idle, in the partition where the previous one ended, after it. Offline,
the agent may search each batch (`--samples`, `--time_limit`: `migsched.search`).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

import migsched.a100 as a100
from migsched.cli import OneLineParser, add_search_flags, check_bounds, check_image_file, check_output_file, check_search_flags, model_file
from migsched.env import MigSchedEnv
from migsched.evaluation import load_model
from migsched.models import TRUST_FLAG, TRUST_HELP, first_line
from migsched.policies import BASELINES, make_baseline
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import EpisodeResult, Policy, run_episode
from migsched.policies.static import StaticPolicy
from migsched.replay import Interval, Schedule, lower_bound
from migsched.versions import get_version, make_env
from migsched.workloads import parse_task_file, validate_tasks


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


def instance_name(size: int, slices: Sequence[int]) -> str:
    """An instance as users know it: `3g (slices 0-2)`, `1g (slice 4)`."""
    where = f"slice {slices[0]}" if len(slices) == 1 else f"slices {slices[0]}-{slices[-1]}"
    return f"{size}g ({where})"


def partition_text(partition: int) -> str:
    """A partition and its instances: `partition 8: 2g (slices 0-1), 1g (slice 2), ...`."""
    return f"partition {partition}: " + ", ".join(instance_name(inst.size, inst.slices) for inst in a100.INSTANCES[partition])


#: Partitions 8-10 and 11-13 are each other's mirror image across slices 0,1 and 2,3; the others are their own.
MIRROR = {**{p: q for p, q in a100.RELABEL.items()}, **{q: p for p, q in a100.RELABEL.items()}}


def physical_partitions(log: Sequence[Any]) -> dict[int, int]:
    """Per reconfiguration step of a decision log, the partition the GPU then has on its own
    slices: after an 11-13 reconfiguration the model renames slices 0,1 and 2,3 (MIG_MODEL.md
    section 1), so while an odd number of those is in effect its 8-10 are the GPU's 11-13."""
    physical, swapped = {}, False
    for step, decision in enumerate(log):
        if decision.kind == "reconfigure":
            physical[step] = MIRROR.get(decision.target, decision.target) if swapped else decision.target
            swapped ^= decision.target in a100.RELABEL
    return physical


PARTITION_NOTE = "a partition splits the A100's 7 compute slices into instances; a Kg instance has K slices and runs one task at a time"


@dataclass
class ScheduleResult:
    """A task list scheduled from an idle GPU: its batches (one online), the task names and times,
    who scheduled it, the makespan and the lower bound. `to_dict` is the documented JSON form
    (docs/commands.md, schedule.py's `--out`); `write` saves it as JSON or CSV."""

    version: str
    scheduler: str
    names: list[str]
    times: np.ndarray
    initial_partition: int
    batches: list[Batch]

    @property
    def makespan(self) -> float:
        return sum(b.result.makespan for b in self.batches)

    @property
    def lower_bound(self) -> float:
        return lower_bound(self.times, [0.0] * a100.NUM_SLICES)

    def events(self) -> list[dict[str, Any]]:
        """Every task run and every reconfigured instance, in real seconds, in time order."""
        found = []
        for number, batch in enumerate(self.batches, start=1):
            physical = physical_partitions(batch.result.log)
            for bar in batch.result.schedule.intervals:
                if bar.kind == "busy":
                    continue
                event = {"kind": bar.kind, "start": bar.start + batch.offset, "end": bar.end + batch.offset, "batch": number}
                event["instance"] = {"name": f"{bar.size}g", "size": bar.size, "slices": list(bar.slices)}
                if bar.kind == "run":
                    task = batch.tasks[bar.task]
                    event |= {"task": task, "name": self.names[task]}
                else:
                    event |= {"partition": physical[bar.step], "step": bar.step}
                found.append(event)
        return sorted(found, key=lambda e: (e["start"], e["kind"] != "reconfigure", e["instance"]["slices"][0]))

    def to_dict(self) -> dict[str, Any]:
        """The schedule as plain data (JSON-ready): format, who, makespan, lower bound, runs and reconfigurations."""
        events = self.events()
        return {
            "format": "migsched-schedule",
            "format_version": 1,
            "version": self.version,
            "scheduler": self.scheduler,
            "initial_partition": self.initial_partition,
            "makespan": self.makespan,
            "lower_bound": self.lower_bound,
            "batches": len(self.batches),
            "tasks": [{k: e[k] for k in ("task", "name", "instance", "start", "end", "batch")} for e in events if e["kind"] == "run"],
            "reconfigurations": [{k: e[k] for k in ("partition", "instance", "start", "end", "batch")} for e in events if e["kind"] == "reconfigure"],
        }

    def write(self, path: str | Path) -> None:
        """Save atomically as JSON (`.json`) or CSV (`.csv`: one row per run and reconfigured
        instance, then a `makespan` and a `lower_bound` row)."""
        from migsched.models import write_atomically

        target = Path(path)
        if target.suffix.lower() == ".json":
            write_atomically(target, lambda tmp: Path(tmp).write_text(json.dumps(self.to_dict(), indent=2) + "\n"))
        else:
            write_atomically(target, self._write_csv)

    def _write_csv(self, path: str) -> None:
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(OUT_CSV_COLUMNS)
            for e in self.events():
                slices = e["instance"]["slices"]
                writer.writerow(
                    [
                        e["kind"],
                        e.get("task", ""),
                        e.get("name", ""),
                        e["instance"]["size"],
                        " ".join(map(str, slices)),
                        f"{e['start']:.6f}",
                        f"{e['end']:.6f}",
                        e["batch"],
                        e.get("partition", ""),
                    ]
                )
            writer.writerow(["makespan", "", "", "", "", f"{0.0:.6f}", f"{self.makespan:.6f}", "", ""])
            writer.writerow(["lower_bound", "", "", "", "", f"{0.0:.6f}", f"{self.lower_bound:.6f}", "", ""])

    def lines(self) -> list[str]:
        """The printout: per batch, one line per task run and reconfiguration, in time order; a
        partition's instances are spelt out where it first appears."""
        explained = {self.initial_partition}
        out = []
        every = self.events()
        for number, batch in enumerate(self.batches, start=1):
            if len(self.batches) > 1:
                out.append(f"batch {number} ({len(batch.tasks)} tasks, scheduled in {batch.seconds:.3f} s):")
            events = [e for e in every if e["batch"] == number]
            steps: dict[int, list[dict[str, Any]]] = {}
            for e in events:
                if e["kind"] == "reconfigure":
                    steps.setdefault(e["step"], []).append(e)
            for e in events:
                if e["kind"] == "run":
                    out.append(f"{e['start']:10.3f} - {e['end']:10.3f} s  run {e['name']} on {instance_name(e['instance']['size'], e['instance']['slices'])}")
                elif e is steps[e["step"]][0]:
                    created = steps[e["step"]]
                    target = e["partition"]
                    text = partition_text(target) if target not in explained else f"partition {target}"
                    explained.add(target)
                    new = ", ".join(instance_name(c["instance"]["size"], c["instance"]["slices"]) for c in created)
                    span = f"{min(c['start'] for c in created):10.3f} - {max(c['end'] for c in created):10.3f} s"
                    out.append(f"{span}  reconfigure to {text} (creates {new})")
        return out


OUT_CSV_COLUMNS = ("kind", "task", "name", "size", "slices", "start", "end", "batch", "partition")


def read_tasks(tasks: str | Path | Sequence[Sequence[float]] | np.ndarray) -> tuple[list[str], np.ndarray]:
    """Task names and (n, 5) times from a task file's path or from an array of five times per task."""
    if isinstance(tasks, (str, Path)):
        return parse_task_file(str(tasks))
    times = validate_tasks(tasks)
    return [f"T{i}" for i in range(len(times))], times


def schedule(
    model: Any,
    tasks: str | Path | Sequence[Sequence[float]] | np.ndarray,
    version: str | None = None,
    partition: int = 1,
    samples: int | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    temperature: float | None = None,
    trusted: bool = False,
) -> ScheduleResult:
    """Schedule a task list with a trained agent from an idle GPU in `partition`.

    `model`: a model file (a zip or its weights-only `.pt`, of any version: the file says which;
    `pretrained:<version>/<workload>` for a shipped agent)
    or a loaded model; `tasks`: a task file's path or an array of five times in seconds per task
    (sizes 1, 2, 3, 4, 7; `inf`: does not fit). Offline versions may search each batch
    (`samples` rollouts and/or `time_limit` seconds per batch). `trusted`: see `--trust_model`.
    """
    from migsched.models import read_facts
    from migsched.pretrained import resolve
    from migsched.search import DEFAULT_TEMPERATURE

    if isinstance(model, (str, Path)):
        model = resolve(model)
        version = version or read_facts(model).version
        if version is None:
            raise ValueError(f"{model} does not say which version trained it: give version=")
        model, env_config = load_model(str(model), version, trusted=trusted)
    else:
        version = version or getattr(model, "migsched_version", None)
        if version is None:
            raise ValueError("this model does not say which version trained it: give version=")
        env_config = dict(model.env_config)
    if not 1 <= partition <= a100.NUM_PARTITIONS:
        raise ValueError(f"partition must be in 1..{a100.NUM_PARTITIONS}, got {partition}")
    names, times = read_tasks(tasks)
    searching = bool(samples) or time_limit is not None
    if searching and get_version(version).online:
        raise ValueError("an online agent schedules without search: its tasks arrive as they are revealed")
    play: Play = partial(play_policy, partial(AgentPolicy, model))
    if searching:
        play = partial(play_search, model, samples or None, time_limit, temperature or DEFAULT_TEMPERATURE, seed)
    return ScheduleResult(version, "agent", names, times, partition, schedule_tasks(version, env_config, times, partition, play))


def parse_args(version: str, argv: Sequence[str] | None) -> argparse.Namespace:
    """The flags of `schedule.py`, checked, the output paths included; any invalid one exits with status 2."""
    info = get_version(version)
    defaults = info.defaults
    parser = OneLineParser(prog="schedule.py", description=f"Schedule a task file with a trained {version} agent or a baseline.")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", type=model_file, help="trained model: its zip or weights-only .pt, or pretrained:<version>/<workload>")
    who.add_argument("--baseline", choices=[b for b in BASELINES if b != "random"], help="schedule with a baseline instead: static, greedy or far")
    parser.add_argument(TRUST_FLAG, action="store_true", help=f"with --model: {TRUST_HELP}")
    parser.add_argument("--tasks", required=True, help="task file: 'Task NAME' then 'SIZE TIME' lines for sizes 1, 2, 3, 4, 7")
    parser.add_argument("--partition", type=int, default=1, help="initial partition 1..16 of the idle GPU (default 1: one 7g instance)")
    parser.add_argument("--out", help="also write the schedule as JSON (.json) or CSV (.csv) for another program (default: none)")
    parser.add_argument("--gantt", help="draw the schedule to this image file, .png, .pdf or .svg (default: none)")
    add_search_flags(parser, online=info.online)
    if info.offline:
        parser.add_argument("--seed", type=int, default=0, help="seed of the search's sampling (default 0)")
    parser.add_argument("--N", type=int, help=f"with --baseline: ready task slots (default {defaults['N']}; with --model, the model's)")
    parser.add_argument("--M", type=int, help=f"with --baseline: levels (default {defaults['M']}; with --model, the model's)")
    args = parser.parse_args(argv)
    args.seed = getattr(args, "seed", 0)
    if not 1 <= args.partition <= a100.NUM_PARTITIONS:
        parser.error(f"--partition must be in 1..{a100.NUM_PARTITIONS}")
    check_bounds(parser, args, ("N", "M"))
    if args.trust_model and not args.model:
        parser.error(f"{TRUST_FLAG} says how to read --model; give --model")
    if args.model and (args.N is not None or args.M is not None):
        parser.error("--N and --M are for --baseline: a model schedules with the N and M it was trained with")
    args.N, args.M = args.N or defaults["N"], args.M or defaults["M"]
    check_search_flags(parser, args)
    if args.model and not Path(args.model).is_file():
        parser.error(f"model file not found: {args.model}")
    if args.out is not None:
        check_output_file(parser, "--out", args.out)
        if Path(args.out).suffix.lower() not in (".json", ".csv"):
            parser.error(f"--out {args.out}: end the name in .json or .csv")
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
    who = "agent" if args.model else args.baseline
    if args.samples or args.time_limit is not None:
        who += (
            " with search ("
            + ", ".join(filter(None, (f"{args.samples} samples" if args.samples else "", f"{args.time_limit} s" if args.time_limit else "")))
            + " per batch)"
        )
    print(f"{len(names)} tasks from {args.tasks}, scheduled by the {version} {who} from an idle GPU in {partition_text(args.partition)}")
    print(f"({PARTITION_NOTE})")
    if get_version(version).offline and len(names) > env_config["N"]:
        batches = -(-len(names) // env_config["N"])
        print(
            f"note: {len(names)} tasks are more than this offline agent's N={env_config['N']} ready slots: it schedules them as {batches} batches "
            "in file order, each starting when the last has ended; online/ schedules a whole list as one stream"
        )
    result = ScheduleResult(version, who, names, times, args.partition, schedule_tasks(version, env_config, times, args.partition, play))
    print("\n".join(result.lines()))
    static = sum(b.result.makespan for b in schedule_tasks(version, env_config, times, args.partition, partial(play_policy, StaticPolicy)))
    print(
        f"makespan {result.makespan:.3f} s, lower bound {result.lower_bound:.3f} s (ratio {result.makespan / result.lower_bound:.3f}, lower is better); "
        f"static baseline {static:.3f} s"
    )
    written = [(args.out, result.write)] if args.out else []
    if args.gantt:
        from migsched.plots import gantt

        title = f"{version} {who}: {Path(args.tasks).name}, makespan {result.makespan:.2f} s"
        written.append((args.gantt, lambda path: gantt(combined(result.batches), path, title=title, task_names=names)))
    for path, write in written:
        try:
            write(path)
        except OSError as exc:
            print(f"schedule.py: error: {path} not written ({exc.strerror or first_line(exc)}); the schedule above is complete", file=sys.stderr)
            return 1
        print(f"wrote {path}")
    return 0
