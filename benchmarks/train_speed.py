"""Training fps of each version's train.py with the default settings and with the fast CPU settings.

    python benchmarks/train_speed.py [--version float,online] [--settings defaults,fast] [--rollouts 5] [--runs 3]
    python benchmarks/train_speed.py --device gpu --version float --settings defaults,gpu1024,gpu4096 --rollouts 3 --runs 1

The last column projects the original tool's run, 200 million steps, at the median fps.

Each run is a real `python <version>/train.py` subprocess at N=14 M=14 on mix_scaling_soft for
`--rollouts` rollouts of the version's rollout_steps (2048) transitions. Its fps is the timesteps it trained over the seconds
from its start line to its "model saved" line: every rollout and update and the final save, but
not the interpreter's start-up. The model it wrote is deleted. The table gives the median over
`--runs` (seeds 0, 1, ...) with the min and max, and each setting's speed-up over the defaults.
The machine's other load shows as a wide min-max spread.

`--reference` adds, for each version, the same defaults' training on a stand-in environment with
that version's spaces whose step costs nothing (constant observation, every action valid,
episodes of 30 steps): the fps no implementation of the environment can beat. Each of its runs starts a fresh interpreter, as each train.py run does.
"""

from __future__ import annotations

import multiprocessing
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from migsched.cli import OneLineParser
from migsched.models import OPTIMIZER_KWARGS
from migsched.versions import VERSIONS, get_version, make_env
from migsched.workers import torch_threads

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "defaults": [],
    "n_envs8": ["--n_envs", "8"],
    "fast": ["--n_envs", "8", "--vec_env", "dummy", "--batch_size", "512"],
    "fast_batched": ["--n_envs", "8", "--vec_env", "batched", "--batch_size", "512"],
    "batched64": ["--n_envs", "64", "--vec_env", "batched", "--batch_size", "512"],
    # Candidates for a GPU (`--device gpu`): thousands of lanes, rollouts and minibatches sized for it.
    "gpu1024": ["--n_envs", "1024", "--vec_env", "batched", "--rollout_steps", "131072", "--batch_size", "16384", "--n_epochs", "4"],
    "gpu4096": ["--n_envs", "4096", "--vec_env", "batched", "--rollout_steps", "262144", "--batch_size", "32768", "--n_epochs", "4"],
}
#: The original tool's run, whose projected time the table prints.
ORIGINAL_STEPS = 200_000_000


def run_fps(version: str, flags: list[str], rollouts: int, seed: int, device: str = "cpu") -> float:
    """Trained timesteps per second of one `train.py` run."""
    rollout = int(flags[flags.index("--rollout_steps") + 1]) if "--rollout_steps" in flags else get_version(version).defaults["rollout_steps"]
    argv = [
        sys.executable,
        "train.py",
        "--device",
        device,
        "--num_steps",
        str(rollouts * rollout),
        "--N",
        "14",
        "--M",
        "14",
        "--type_tasks",
        "mix_scaling_soft",
        "--seed",
        str(seed),
        *flags,
    ]
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
    for written in (saved, saved.with_suffix(".pt"), saved.with_suffix(".json")):
        written.unlink(missing_ok=True)
    return timesteps / (end - start)


class FreeEnv(gym.Env):
    """A version's observation and action spaces with a step that does no work."""

    def __init__(self, version: str) -> None:
        real = make_env(version, {"N": 14, "M": 14})
        self.observation_space, self.action_space = real.observation_space, real.action_space
        self._obs = self.observation_space.sample() * 0
        self._mask = np.ones(self.action_space.n, dtype=bool)
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._t = 0
        return self._obs, {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self._t += 1
        return self._obs, -1.0, self._t >= 30, False, {}

    def action_masks(self) -> np.ndarray:
        return self._mask


def reference_fps(version: str, rollouts: int, seed: int) -> float:
    """Timesteps per second of the defaults' training (as train.py builds it) on `FreeEnv`."""
    torch.set_num_threads(torch_threads(1, "subproc"))
    torch.distributions.Distribution.set_default_validate_args(False)
    env = VecMonitor(DummyVecEnv([lambda: FreeEnv(version)]))
    defaults = get_version(version).defaults
    widths = [int(width) for width in str(defaults["net_arch"]).split(",")]
    net_arch = {"pi": widths, "vf": widths}
    ent_coef = float(str(defaults["ent_coef"]).split(",")[0])
    model = MaskablePPO(
        "MlpPolicy",
        env,
        n_steps=defaults["rollout_steps"],
        gamma=defaults["gamma"],
        ent_coef=ent_coef,
        seed=seed,
        policy_kwargs={"net_arch": net_arch, "optimizer_kwargs": OPTIMIZER_KWARGS},
    )
    start = time.perf_counter()
    model.learn(rollouts * defaults["rollout_steps"])
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "model.zip")  # as train.py's timing ends with its save
    return model.num_timesteps / (time.perf_counter() - start)


def in_fresh_process(function: Any, *args: Any) -> Any:
    """`function(*args)` in a new interpreter, which pays torch's first-call costs as train.py does."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def main() -> None:
    parser = OneLineParser(prog="train_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("--version", dest="versions", default=",".join(VERSIONS), help="one version or several, comma-separated (default: all five)")
    parser.add_argument("--settings", default="defaults,fast", help=f"from {','.join(SETTINGS)}")
    parser.add_argument("--rollouts", type=int, default=5, help="PPO rollouts per timed run")
    parser.add_argument("--runs", type=int, default=3, help="runs per setting; the median is printed")
    parser.add_argument("--reference", action="store_true", help="also train the defaults on a free stand-in environment")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="train.py's --device; with gpu try --settings defaults,gpu1024,gpu4096")
    args = parser.parse_args()
    settings = args.settings.split(",")
    print(f"N=14 M=14 mix_scaling_soft, {args.rollouts} rollouts of rollout_steps transitions, median of {args.runs} runs")
    for name in settings:
        print(f"  {name}: train.py {' '.join(SETTINGS[name]) or '(no flags)'}")
    print(f"{'version':<16} {'setting':<12} {'fps':>9} {'min':>9} {'max':>9} {'speed-up':>9} {'200M steps':>11}")
    for version in args.versions.split(","):
        medians = {}
        for name in settings:
            rates = [run_fps(version, SETTINGS[name], args.rollouts, seed, args.device) for seed in range(args.runs)]
            medians[name] = statistics.median(rates)
            speedup = f"{medians[name] / medians['defaults']:.2f}x" if "defaults" in medians else ""
            hours = f"{ORIGINAL_STEPS / medians[name] / 3600:.1f} h"
            print(f"{version:<16} {name:<12} {medians[name]:>9,.0f} {min(rates):>9,.0f} {max(rates):>9,.0f} {speedup:>9} {hours:>11}", flush=True)
        if args.reference:
            rates = [in_fresh_process(reference_fps, version, args.rollouts, seed) for seed in range(args.runs)]
            print(f"{version:<16} {'free env':<12} {statistics.median(rates):>9,.0f} {min(rates):>9,.0f} {max(rates):>9,.0f}", flush=True)


if __name__ == "__main__":
    main()
