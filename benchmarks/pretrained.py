"""Train and measure the pretrained agents in pretrained/<version>/<workload>/.

    python benchmarks/pretrained.py train [--version V,...] [--type_tasks W,...] [--minutes 30] [--seed 0] [--cores 0,1] [--force] [--folder pretrained]
    python benchmarks/pretrained.py measure [--version V,...] [--type_tasks W,...] [--episodes 200] [--cpsat_episodes 40] [--seed 30000] [--folder pretrained]

`train` runs each version's recommended recipe (`train.py --preset fast --minutes T`, N=14,
M=14) in a scratch copy of the version folder, one run per core of --cores, each pinned to its
core with one torch thread, and copies the final weights-only `.pt` and the run's record into
the agent's folder. Agents already there are kept unless --force. `--folder` puts the agents
(and RESULTS.md) elsewhere than pretrained/: the check of a recipe with another training seed is
`train --seed 1 --folder results/seed1`, then `measure --folder results/seed1`.

`measure` plays fresh seeded episodes nobody tuned a recipe on (seeds from --seed on).
Offline: --episodes episodes with `static`, `greedy`, `far`, the agent deterministic and with
0.1 s of search; the first --cpsat_episodes also with 1 s of search and CP-SAT at 1 s and 10 s
(one worker, hinted with static); every makespan over CP-SAT's 10-second schedule where it
was solved, over the lower bound otherwise. Online: --queues queues of 50 tasks, the agent
deterministic beside `static`, `greedy` and `far`, over the lower bound. CP-SAT's schedules are
the same for every version of a workload's episodes (the same batches, checked by fingerprint),
so they are solved once per workload and kept in pretrained/reference/<workload>.json; each
agent's figures, the baselines' in its version beside them, go to
its quality.json: a run that stops resumes where it was. Last, RESULTS.md is written
from the quality files of the folder. Pin it with `taskset -c 0`: search and CP-SAT
get their seconds of one core.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from migsched.cli import OneLineParser
from migsched.evaluation import batch_id
from migsched.models import write_atomically
from migsched.pretrained import AGENT_FILE, PRETRAINED_FOLDER, QUALITY_FILE, RECORD_FILE, agent_folder
from migsched.versions import REPO_ROOT, VERSIONS, get_version, make_env
from migsched.workloads import WORKLOAD_NAMES

SAVED = re.compile(r"^model saved: (.+\.zip)$", re.MULTILINE)
BASELINES = ("static", "greedy", "far")
SEARCH_SHORT, SEARCH_LONG = 0.1, 1.0
CPSAT_LIMITS = (1.0, 10.0)
REFERENCE_FOLDER = PRETRAINED_FOLDER / "reference"


def train_command(workload: str, minutes: float, seed: int) -> list[str]:
    """train.py's command line of a pretrained agent: the recommended recipe at N=14, M=14."""
    return [
        sys.executable,
        "train.py",
        "--preset",
        "fast",
        "--type_tasks",
        workload,
        "--N",
        "14",
        "--M",
        "14",
        "--seed",
        str(seed),
        "--minutes",
        f"{minutes:g}",
        "--eval_freq",
        "0",
    ]


def start_training(version: str, workload: str, minutes: float, seed: int, core: int, scratch: Path) -> tuple[subprocess.Popen, Path]:
    """Start one agent's run in a scratch copy of its version folder, pinned to `core`; the process and its log."""
    work = scratch / f"{version}_{workload}" / version
    shutil.copytree(REPO_ROOT / version, work, ignore=shutil.ignore_patterns("trained_models", "__pycache__", "*.csv", "*.png"))
    log = work / "train.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MIGSCHED_PROGRESS": "0"}
    command = ["taskset", "-c", str(core), *train_command(workload, minutes, seed)]
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=work, stdout=handle, stderr=subprocess.STDOUT, env=env)
    return process, log


def collect(root: Path, version: str, workload: str, log: Path) -> str:
    """Copy a finished run's weights and record into the agent's folder; a line saying what was kept."""
    found = SAVED.findall(log.read_text())
    if not found:
        return f"{version}/{workload}: no model saved, see {log}"
    model = Path(found[-1])
    record = json.loads(model.with_suffix(".json").read_text())
    if record.get("status") != "finished":
        return f"{version}/{workload}: the run ended {record.get('status')!r}, see {log}"
    folder = agent_folder(version, workload, root)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model.with_suffix(".pt"), folder / AGENT_FILE)
    (folder / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
    (folder / "quality.json").unlink(missing_ok=True)
    reached = ", ".join(f"{r['stage']} {r['done']} {r['unit']}" for r in record.get("stage_reports", []))
    return f"{version}/{workload}: {reached} in {record['wall_clock_s'] / 60:.1f} min"


def train(args: argparse.Namespace) -> int:
    """Train every missing agent, one run per core at a time."""
    todo = [(v, w) for v in args.versions for w in args.workloads if args.force or not (agent_folder(v, w, args.folder) / AGENT_FILE).is_file()]
    print(f"{len(todo)} agents to train, {args.minutes:g} min each, on cores {','.join(map(str, args.cores))}", flush=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="migsched-pretrain-") as scratch:
        running: dict[int, tuple[str, str, subprocess.Popen, Path]] = {}
        while todo or running:
            for core in args.cores:
                if core not in running and todo:
                    version, workload = todo.pop(0)
                    process, log = start_training(version, workload, args.minutes, args.seed, core, Path(scratch))
                    running[core] = (version, workload, process, log)
            time.sleep(2)
            for core, (version, workload, process, log) in list(running.items()):
                if process.poll() is not None:
                    del running[core]
                    line = collect(args.folder, version, workload, log)
                    failed += "no model" in line or "ended" in line
                    print(line, flush=True)
    return 1 if failed else 0


def write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON atomically, making its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1) + "\n"))


def read_json(path: Path) -> dict:
    """A JSON file's data, or {} where there is none."""
    return json.loads(path.read_text()) if path.is_file() else {}


def reference(args: argparse.Namespace, workload: str) -> dict:
    """CP-SAT's schedules (1 s and 10 s, one worker, hinted with static) of the workload's first
    --cpsat_episodes episodes, solved where the reference file lacks them."""
    from migsched.evaluation import schedule_hint
    from migsched.policies import make_baseline
    from migsched.policies.base import run_episode
    from migsched.policies.cpsat import solve_cpsat

    path = REFERENCE_FOLDER / f"{workload}.json"
    data = read_json(path)
    if data.get("first_seed") != args.first_seed:
        data = {"workload": workload, "N": 14, "M": 14, "first_seed": args.first_seed, "episodes": []}
    env = make_env("float", {"N": 14, "M": 14}, workload)
    for episode in range(len(data["episodes"]), args.cpsat_episodes):
        seed = args.first_seed + episode
        static = run_episode(env, make_baseline("static"), seed=seed)
        hint = schedule_hint(static.schedule, len(env.state.tasks))
        row = {"seed": seed, "batch": batch_id(env), "lower_bound": env.lower_bound}
        for limit in CPSAT_LIMITS:
            solved = solve_cpsat(env.state.tasks.tolist(), env.initial_free, time_limit=limit, workers=1, hint=hint, lower_bound=env.lower_bound)
            row[f"cpsat_{limit:g}s"] = solved.makespan
        data["episodes"].append(row)
        write_json(path, data)
        print(f"reference {workload}: episode {episode + 1}/{args.cpsat_episodes}", flush=True)
    return data


def file_digest(path: Path) -> str:
    """The sha256 of a file: quality.json names the agent file it measured."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def measure_agent(args: argparse.Namespace, version: str, workload: str) -> dict | None:
    """The agent's and the baselines' makespans on the fresh episodes, in its quality.json
    (kept where it measured this very agent file on the same episodes)."""
    from migsched.evaluation import load_model
    from migsched.policies import make_baseline
    from migsched.policies.agent import AgentPolicy
    from migsched.policies.base import run_episode
    from migsched.search import search

    folder = agent_folder(version, workload, args.folder)
    agent = folder / AGENT_FILE
    if not agent.is_file():
        return None
    digest = file_digest(agent)
    offline = get_version(version).offline
    plan = {"first_seed": args.first_seed, "episodes": args.episodes if offline else args.queues, "cpsat_episodes": args.cpsat_episodes if offline else 0}
    old = read_json(folder / QUALITY_FILE)
    if old.get("agent_sha256") == digest and all(old.get(k) == v for k, v in plan.items()):
        return old
    model, env_config = load_model(str(agent), version)
    if not offline:
        env_config = {**env_config, "queue_len": args.queue_len}
    env = make_env(version, env_config, workload)
    rows: dict[str, list[float]] = {name: [] for name in ("lower_bound", "agent", *BASELINES)}
    if offline:
        rows |= {f"search_{SEARCH_SHORT:g}s": [], f"search_{SEARCH_LONG:g}s": []}
    batches = []
    began = time.perf_counter()
    for episode in range(plan["episodes"]):
        seed = args.first_seed + episode
        for name in BASELINES:
            rows[name].append(run_episode(env, make_baseline(name), seed=seed).makespan)
        played = run_episode(env, AgentPolicy(model), seed=seed)
        rows["agent"].append(played.makespan)
        rows["lower_bound"].append(played.lower_bound)
        batches.append(batch_id(env))
        if offline:
            limits = (SEARCH_SHORT, SEARCH_LONG) if episode < plan["cpsat_episodes"] else (SEARCH_SHORT,)
            for limit in limits:
                found = search(model, env, time_limit=limit, seed=0, reset_seed=seed)
                rows[f"search_{limit:g}s"].append(found.best.makespan)
    quality = {"version": version, "workload": workload, "agent_sha256": digest, **plan, "queue_len": None if offline else args.queue_len}
    quality |= {"seconds": round(time.perf_counter() - began, 1), "batches": batches, "makespans": rows}
    write_json(folder / QUALITY_FILE, quality)
    print(f"measured {version}/{workload} in {quality['seconds']:.0f} s", flush=True)
    return quality


def mean_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Mean of the per-episode ratios over the episodes both lists hold."""
    count = min(len(numerators), len(denominators))
    return float(np.mean(np.asarray(numerators[:count]) / np.asarray(denominators[:count])))


def trained(folder: Path) -> str:
    """What trained an agent, from its record: the stages, what each reached, the wall clock."""
    record = read_json(folder / RECORD_FILE)
    stages = " + ".join(f"{r['stage']} {r['done']:,} {r['unit']}" for r in record.get("stage_reports", []))
    return f"{stages}, {record.get('wall_clock_s', 0) / 60:.0f} min, seed {record.get('seed')}"


def verdicts(rows: dict[str, list[float]], vs_cpsat: dict[str, float] | None) -> str:
    """The targets an agent misses, by how much; "met" where it misses none."""
    by_bound = {name: mean_ratio(values, rows["lower_bound"]) for name, values in rows.items() if name != "lower_bound"}
    misses = []
    rivals = ("static", "greedy") if vs_cpsat is not None else BASELINES
    for name in rivals:
        if by_bound["agent"] >= by_bound[name]:
            misses.append(f"agent {100 * (by_bound['agent'] / by_bound[name] - 1):+.2f}% vs {name}")
    if vs_cpsat is not None:
        short = f"search_{SEARCH_SHORT:g}s"
        for name in BASELINES:
            if by_bound[short] >= by_bound[name]:
                misses.append(f"{SEARCH_SHORT:g} s search {100 * (by_bound[short] / by_bound[name] - 1):+.2f}% vs {name}")
        if vs_cpsat[f"search_{SEARCH_LONG:g}s"] > 1.03:
            misses.append(f"{SEARCH_LONG:g} s search {vs_cpsat[f'search_{SEARCH_LONG:g}s']:.3f}x CP-SAT 10 s")
    return "met" if not misses else "missed: " + "; ".join(misses)


def results_table(args: argparse.Namespace) -> str:
    """The folder's RESULTS.md: every agent's measured quality, from the quality files."""
    offline_rows, cpsat_rows, online_rows, seen = [], [], [], {}
    for version, workload in ((v, w) for v in VERSIONS for w in WORKLOAD_NAMES):
        folder = agent_folder(version, workload, args.folder)
        quality = read_json(folder / QUALITY_FILE)
        if not quality:
            continue
        seen.setdefault("first_seed", quality["first_seed"])
        rows = quality["makespans"]
        ratio = {name: mean_ratio(values, rows["lower_bound"]) for name, values in rows.items() if name != "lower_bound"}
        name = f"{version} {workload}"
        if quality["cpsat_episodes"]:
            seen["offline"] = (quality["episodes"], quality["cpsat_episodes"])
            ref = read_json(REFERENCE_FOLDER / f"{workload}.json").get("episodes", [])[: quality["cpsat_episodes"]]
            if [r["batch"] for r in ref] != quality["batches"][: len(ref)] or len(ref) < quality["cpsat_episodes"]:
                raise SystemExit(f"pretrained.py: error: the CP-SAT reference of {workload} is missing or of other episodes: run measure first")
            ten = [r["cpsat_10s"] for r in ref]
            vs = {key: mean_ratio(rows[key], ten) for key in ("agent", f"search_{SEARCH_SHORT:g}s", f"search_{SEARCH_LONG:g}s", *BASELINES)}
            vs["cpsat_1s"] = mean_ratio([r["cpsat_1s"] for r in ref], ten)
            cells = [ratio["agent"], ratio[f"search_{SEARCH_SHORT:g}s"], *(ratio[b] for b in BASELINES)]
            offline_rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {verdicts(rows, vs)} | {trained(folder)} |")
            cells = [vs["agent"], vs[f"search_{SEARCH_SHORT:g}s"], vs[f"search_{SEARCH_LONG:g}s"], vs["cpsat_1s"], *(vs[b] for b in BASELINES)]
            cpsat_rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
        else:
            seen["online"] = (quality["episodes"], quality["queue_len"])
            cells = [ratio["agent"], *(ratio[b] for b in BASELINES)]
            online_rows.append(f"| {name} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {verdicts(rows, None)} | {trained(folder)} |")
    lines = [
        "# Pretrained agents: measured quality" if args.folder == PRETRAINED_FOLDER else f"# The agents of {args.folder.name}/: measured quality",
        "",
        "Written by `python benchmarks/pretrained.py measure` from the agents in this folder (N=14, M=14),",
        f"on fresh seeded episodes (seeds {seen.get('first_seed')} onwards) that no recipe was tuned on.",
        "Lower is better everywhere. Targets: deterministic below `static` and `greedy`; with 0.1 s of",
        "search below `static`, `greedy` and `far`; with 1 s of search at most 1.03x CP-SAT's 10-second",
        "schedule; online, below `static`, `greedy` and `far`.",
        "",
    ]
    if offline_rows:
        episodes, cpsat_episodes = seen["offline"]
        lines += [
            f"## Offline: {episodes} episodes, mean makespan / lower bound",
            "",
            "| agent | deterministic | search 0.1 s | static | greedy | far | targets | trained |",
            "|---|---|---|---|---|---|---|---|",
            *offline_rows,
            "",
            f"## Offline against CP-SAT: the first {cpsat_episodes} episodes, mean makespan / CP-SAT's 10-second schedule",
            "",
            "CP-SAT: one worker, hinted with static, reconfiguration costs left out (docs/MIG_MODEL.md).",
            "",
            "| agent | deterministic | search 0.1 s | search 1 s | CP-SAT 1 s | static | greedy | far |",
            "|---|---|---|---|---|---|---|---|",
            *cpsat_rows,
            "",
        ]
    if online_rows:
        queues, queue_len = seen["online"]
        lines += [
            f"## Online: {queues} queues of {queue_len} tasks, mean makespan / lower bound",
            "",
            "| agent | deterministic | static | greedy | far | targets | trained |",
            "|---|---|---|---|---|---|---|",
            *online_rows,
            "",
        ]
    return "\n".join(lines)


def measure(args: argparse.Namespace) -> int:
    """The reference, the agents, and RESULTS.md, as --only says."""
    offline = [w for w in args.workloads if any(get_version(v).offline for v in args.versions)]
    if args.only in ("all", "reference"):
        for workload in offline:
            reference(args, workload)
    if args.only in ("all", "agents"):
        for version in args.versions:
            for workload in args.workloads:
                measure_agent(args, version, workload)
    if args.only in ("all", "table"):
        path = args.folder / "RESULTS.md"
        text = results_table(args)
        write_atomically(path, lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {path}")
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The subcommand and its flags, checked."""
    parser = OneLineParser(prog="pretrained.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "measure"):
        command = sub.add_parser(name)
        command.add_argument("--version", dest="versions", default=",".join(VERSIONS), help="comma-separated versions")
        command.add_argument("--type_tasks", dest="workloads", default=",".join(WORKLOAD_NAMES), help="comma-separated workloads")
        command.add_argument(
            "--folder",
            type=Path,
            default=PRETRAINED_FOLDER,
            help="where the agents are, <folder>/<version>/<workload>/, and RESULTS.md (default pretrained/; another, e.g. for a second training seed)",
        )
    measurer = sub.choices["measure"]
    measurer.add_argument(
        "--only", choices=("all", "reference", "agents", "table"), default="all", help="one part: CP-SAT's reference, the agents, or RESULTS.md from the files"
    )
    measurer.add_argument("--episodes", type=int, default=200, help="offline episodes per agent")
    measurer.add_argument("--cpsat_episodes", type=int, default=40, help="of them, the first ones also with 1 s of search and CP-SAT")
    measurer.add_argument("--queues", type=int, default=100, help="online queues per agent")
    measurer.add_argument("--queue_len", type=int, default=50, help="tasks per online queue")
    measurer.add_argument("--seed", dest="first_seed", type=int, default=30000, help="seed of the first episode; episode k uses it + k")
    trainer = sub.choices["train"]
    trainer.add_argument("--minutes", type=float, default=30.0, help="wall-clock minutes of each run")
    trainer.add_argument("--seed", type=int, default=0, help="training seed")
    trainer.add_argument("--cores", default="0", help="comma-separated CPU cores, one run on each at a time")
    trainer.add_argument("--force", action="store_true", help="retrain agents already in --folder")
    args = parser.parse_args(argv)
    args.folder = args.folder.resolve()
    args.versions = args.versions.split(",")
    args.workloads = args.workloads.split(",")
    if bad := [v for v in args.versions if v not in VERSIONS] + [w for w in args.workloads if w not in WORKLOAD_NAMES]:
        parser.error(f"unknown version or workload: {', '.join(bad)}")
    if args.command == "measure" and (min(args.episodes, args.cpsat_episodes, args.queues, args.queue_len) < 1 or args.cpsat_episodes > args.episodes):
        parser.error("--episodes, --cpsat_episodes, --queues and --queue_len must be positive, --cpsat_episodes at most --episodes")
    if args.command == "train":
        args.cores = [int(c) for c in args.cores.split(",")]
        if args.minutes <= 0:
            parser.error("--minutes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subcommand."""
    args = parse_args(argv)
    args.folder.mkdir(parents=True, exist_ok=True)
    return train(args) if args.command == "train" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
