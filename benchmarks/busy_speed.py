"""train.py's speed on a machine that is not quiet: alone, beside a busy process, two runs at once.

    python benchmarks/busy_speed.py [--version float] [--rollouts 20] [--runs 3] [--policies default,threads1,passive]

Each run is `<version>/train.py --preset fast --stages ppo` (mix_scaling_soft, N=14, M=14; PPO
alone, without the preset's clone or self-imitation) in a temporary copy of the version folder, for `--rollouts`
rollouts; its fps is the last one SB3 logs (timesteps / seconds since `learn` began). A torch thread
policy is how the environment sets up the run: `default` is train.py's own choice, `threads1` one
torch thread (OMP_NUM_THREADS=1), `threads2` two, `passive` two threads that sleep instead of
spinning while they wait (OMP_WAIT_POLICY=PASSIVE). The conditions: `alone`; `beside_busy`, beside
one CPU-bound process (a Python busy loop); `two_runs`, two of these runs started together (the fps
of each). Prints the median over `--runs` runs of each policy and condition; the policies take turns
in each round, so a drift of the machine's speed hits them alike.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from migsched.cli import OneLineParser
from migsched.versions import REPO_ROOT, VERSIONS, get_version

POLICIES: dict[str, dict[str, str]] = {
    "default": {},
    "threads1": {"OMP_NUM_THREADS": "1"},
    "threads2": {"OMP_NUM_THREADS": "2"},
    "passive": {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"},
}
CONDITIONS = ("alone", "beside_busy", "two_runs")
BUSY_LOOP = "while True: pass"


def start_training(folder: Path, rollouts: int, environment: dict[str, str]) -> subprocess.Popen:
    argv = [
        sys.executable,
        "train.py",
        "--preset",
        "fast",
        "--type_tasks",
        "mix_scaling_soft",
        "--num_steps",
        str(rollouts * get_version(folder.name).defaults["rollout_steps"]),
        "--eval_freq",
        "0",
        "--seed",
        "0",
        "--stages",
        "ppo",
    ]
    env = {key: value for key, value in os.environ.items() if key not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    return subprocess.Popen(argv, cwd=folder, env={**env, **environment}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def fps_of(proc: subprocess.Popen) -> float:
    out = proc.communicate()[0]
    if proc.returncode != 0:
        raise RuntimeError(f"train.py failed:\n{out[-2000:]}")
    return float(re.findall(r"\|\s+fps\s+\|\s+(\d+)", out)[-1])


def measure(folders: list[Path], rollouts: int, policy: str, condition: str) -> list[float]:
    """The fps of one run (two for `two_runs`) under `condition`."""
    busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) if condition == "beside_busy" else None
    try:
        runs = [start_training(folder, rollouts, POLICIES[policy]) for folder in folders[: 2 if condition == "two_runs" else 1]]
        return [fps_of(proc) for proc in runs]
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()


def main() -> int:
    parser = OneLineParser(prog="busy_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--version", choices=VERSIONS, default="float", help="the version whose training is measured")
    parser.add_argument("--rollouts", type=int, default=20, help="rollouts of rollout_steps (hyperparams.yaml: 2048) transitions per run (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs per policy and condition; the median is printed (default 3)")
    parser.add_argument("--policies", default="default,threads1,passive", help=f"comma-separated, from {','.join(POLICIES)}")
    parser.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated, from {','.join(CONDITIONS)}")
    args = parser.parse_args()
    policies, conditions = args.policies.split(","), args.conditions.split(",")
    if not set(policies) <= set(POLICIES) or not set(conditions) <= set(CONDITIONS) or args.rollouts < 1 or args.runs < 1:
        parser.error("unknown policy or condition, or a count below 1")
    with tempfile.TemporaryDirectory() as root:
        folders = []
        for k in range(2):
            folder = Path(root) / str(k) / args.version
            shutil.copytree(REPO_ROOT / args.version, folder, ignore=shutil.ignore_patterns("trained_models", "__pycache__"))
            folders.append(folder)
        print(f"{args.version}, train.py --preset fast, {args.rollouts} rollouts, median of {args.runs} runs (fps; two_runs: each run's)")
        values: dict[tuple[str, str], list[float]] = {(p, c): [] for p in policies for c in conditions}
        for _ in range(args.runs):  # policies interleaved in each round, so the machine's drift hits them alike
            for condition in conditions:
                for policy in policies:
                    values[policy, condition] += measure(folders, args.rollouts, policy, condition)
        print(f"{'policy':<10}" + "".join(f"{c:>14}" for c in conditions))
        for policy in policies:
            print(f"{policy:<10}" + "".join(f"{statistics.median(values[policy, c]):>14,.0f}" for c in conditions))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
