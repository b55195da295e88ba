"""Training fps of each version's train.py with the default settings and with the fast CPU settings.

    python benchmarks/train_speed.py [--versions float,online] [--settings defaults,fast] [--rollouts 5] [--runs 3]

Each run is a real `python <version>/train.py` subprocess at N=14 M=14 on mix_scaling_soft for
`--rollouts` rollouts of 2048 transitions. Its fps is the timesteps it trained over the seconds
from its start line to its "model saved" line: every rollout and update and the final save, but
not the interpreter's start-up. The model it wrote is deleted. The table gives the median over
`--runs` (seeds 0, 1, ...) with the min and max, and each setting's speed-up over the defaults.
The machine's other load shows as a wide min-max spread.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ("one_hot", "float", "entropy", "direct_reconfig", "online")
SETTINGS = {
    "defaults": [],
    "n_envs8": ["--n_envs", "8"],
    "fast": ["--n_envs", "8", "--vec_env", "dummy", "--batch_size", "512"],
}


def run_fps(version: str, flags: list[str], rollouts: int, seed: int) -> float:
    """Trained timesteps per second of one `train.py` run."""
    argv = [sys.executable, "train.py", "--num_steps", str(rollouts * 2048), "--N", "14", "--M", "14", "--type_tasks", "mix_scaling_soft", "--seed", str(seed), *flags]
    proc = subprocess.Popen(argv, cwd=ROOT / version, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    start = end = None
    timesteps, saved, lines = 0, None, []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(f"training {version}:"):
            start = time.perf_counter()
        elif match := re.search(r"total_timesteps\s*\|\s*(\d+)", line):
            timesteps = int(match.group(1))
        elif line.startswith("model saved: "):
            end, saved = time.perf_counter(), Path(line.removeprefix("model saved: ").strip())
    if proc.wait() != 0 or start is None or end is None:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{''.join(lines[-20:])}")
    saved.unlink()
    return timesteps / (end - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--settings", default="defaults,fast", help=f"from {','.join(SETTINGS)}")
    parser.add_argument("--rollouts", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = args.settings.split(",")
    print(f"N=14 M=14 mix_scaling_soft, {args.rollouts} rollouts of 2048 transitions, median of {args.runs} runs")
    for name in settings:
        print(f"  {name}: train.py {' '.join(SETTINGS[name]) or '(no flags)'}")
    print(f"{'version':<16} {'setting':<9} {'fps':>7} {'min':>7} {'max':>7} {'speed-up':>9}")
    for version in args.versions.split(","):
        medians = {}
        for name in settings:
            rates = [run_fps(version, SETTINGS[name], args.rollouts, seed) for seed in range(args.runs)]
            medians[name] = statistics.median(rates)
            speedup = f"{medians[name] / medians['defaults']:.2f}x" if "defaults" in medians else ""
            print(f"{version:<16} {name:<9} {medians[name]:>7,.0f} {min(rates):>7,.0f} {max(rates):>7,.0f} {speedup:>9}", flush=True)


if __name__ == "__main__":
    main()
