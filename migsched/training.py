"""The training harness behind each version's `train.py`: MaskablePPO (sb3-contrib) on its `SchedEnv`.

    cd float && python train.py --num_steps 100000 --N 14 --M 14 --type_tasks wide_times

Top to bottom, as `main` runs it: check the flags (a bad one is a one-line error, exit 2, before
anything is built); build the vectorised environments; build a new model or restore one whose
spaces fit; train inside one `learn` with callbacks (entropy schedule, makespan-ratio logging,
checkpoints, stop on SIGINT/SIGTERM); save the model atomically under a name that is still free.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import os
import re
import signal
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.save_util import json_to_data
from stable_baselines3.common.vec_env import (
    DummyVecEnv,
    SubprocVecEnv,
    VecEnv,
    VecMonitor,
)

from migsched.a100 import NUM_SLICES
from migsched.env import DEFAULT_QUEUE_LEN
from migsched.evaluation import PeriodicEvaluation
from migsched.pretrain import TEACHERS, clone, demonstrations
from migsched.state import FIRST_RUN_ACTION
from migsched.versions import REPO_ROOT, check_version, make_env
from migsched.workloads import WORKLOAD_NAMES

#: Transitions per rollout, whatever the number of environments (the library's default n_steps).
ROLLOUT_TRANSITIONS = 2048
#: The library's Adam (eps 1e-5 is SB3's default for it), fused: the same update in fewer kernels,
#: measured 14% (float) to 25% (one_hot) faster per PPO update on CPU.
OPTIMIZER_KWARGS = dict(eps=1e-5, fused=True)
ENT_COEF = 0.01
#: Versions whose entropy coefficient decays, with its value in each of the run's equal phases.
ENT_COEF_PHASES: dict[str, tuple[float, ...]] = {
    version: (0.01, 0.00075, 0.0005, 0.0) for version in ("entropy", "direct_reconfig", "online")
}
#: The settings a preset may change, at their defaults (the original tool's), and the presets.
DEFAULT_SETTINGS: dict[str, Any] = {
    "n_envs": 1,
    "vec_env": "subproc",
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "net_arch": "256,256",
    "pretrain": None,
}
PRESETS: dict[str, dict[str, Any]] = {
    # Chosen by measurement (README, "Training on a workstation"): 8 environments in this process
    # and 512-transition minibatches give 3-4.5x the defaults' fps on 2 cores; a learning rate of
    # 1e-3 reached better schedules in the same time than 3e-4 or 1e-4, and letting it fall to 0
    # over the run steadied the late checkpoints (set --num_steps to what the time allows).
    "fast": {"n_envs": 8, "vec_env": "dummy", "batch_size": 512, "learning_rate": "lin_0.001"},
}
#: What a preset changes for one version on top of the above. Offline without an entropy schedule
#: of its own, the coefficient steps down as well (float, measured; one_hot shares float's
#: information). Online, PPO alone stays behind every baseline for many minutes; a clone of
#: static starts below greedy and FAR, and a small constant learning rate keeps it there while PPO
#: improves it (a new model only: a restore is not pretrained).
VERSION_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "fast": {
        "one_hot": {"ent_coef": "0.01,0.001,0"},
        "float": {"ent_coef": "0.01,0.001,0"},
        "online": {"pretrain": "static", "learning_rate": 1e-4},
    },
}
#: Episodes averaged in `rollout/makespan_ratio`, as SB3 averages `ep_rew_mean`.
STATS_WINDOW = 100
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
#: fork starts the environment subprocesses at once; the others re-import torch in every worker.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else None


# --- command line -----------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2), without the usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(version: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags of `train.py`, checked; any invalid one exits with status 2."""
    parser = OneLineParser(prog="train.py", description=f"Train a MaskablePPO agent of the {version} version.")
    parser.add_argument("--num_steps", type=int, default=200_000_000, help="training timesteps for this run (default 200000000)")
    parser.add_argument("--N", type=int, default=14, help="ready task slots (default 14)")
    parser.add_argument("--M", type=int, default=14, help="discretization levels (default 14)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="gpu: CUDA, honouring CUDA_VISIBLE_DEVICES (default cpu)")
    parser.add_argument("--type_tasks", choices=WORKLOAD_NAMES, default="good_scaling", help="workload (default good_scaling)")
    parser.add_argument("--restore", help="model zip to continue training from, relative to the current directory")
    parser.add_argument("--seed", type=int, help="seed of a reproducible run")
    parser.add_argument(
        "--preset", choices=tuple(PRESETS),
        help="fast: --n_envs 8 --vec_env dummy --batch_size 512 --learning_rate lin_0.001 (one_hot, float: --ent_coef 0.01,0.001,0; "
        "online: --learning_rate 0.0001 --pretrain static); explicit flags override it",
    )
    parser.add_argument("--n_envs", type=int, help=f"parallel environments; each runs {ROLLOUT_TRANSITIONS} // n_envs steps per rollout (default 1)")
    parser.add_argument("--vec_env", choices=("subproc", "dummy"), help="with --n_envs > 1: one subprocess per environment (default), or all in this process (faster on few cores)")
    parser.add_argument("--batch_size", type=int, help="PPO minibatch size (default 64, the library's)")
    parser.add_argument("--n_epochs", type=int, help="passes over each rollout (default 10, the library's)")
    parser.add_argument("--learning_rate", help="Adam learning rate, or lin_<rate> to fall linearly from <rate> to 0 over this run's --num_steps (default 0.0003, the library's)")
    parser.add_argument("--net_arch", help="hidden layer widths of the policy and of the value network, e.g. 64,64 (default 256,256)")
    parser.add_argument("--ent_coef", help="entropy coefficient, or comma-separated coefficients for equal phases of the run (default 0.01; entropy, direct_reconfig, online: 0.01,0.00075,0.0005,0)")
    parser.add_argument("--pretrain", choices=TEACHERS, help="a new model first clones this baseline's actions and values (default: none)")
    parser.add_argument("--pretrain_episodes", type=int, default=1000, help="teacher episodes for --pretrain (default 1000)")
    parser.add_argument("--pretrain_epochs", type=int, default=30, help="passes over the teacher's steps for --pretrain (default 30)")
    parser.add_argument("--save_freq", type=int, default=10_000_000, help="checkpoint every this many timesteps (default 10000000)")
    parser.add_argument("--tensorboard_log", help="directory for TensorBoard logs")
    parser.add_argument("--progress_bar", action="store_true", help="show a progress bar with the time left")
    parser.add_argument("--queue_len", type=int, help=f"online only: tasks per episode (default {DEFAULT_QUEUE_LEN})")
    parser.add_argument("--eval_freq", type=int, help="evaluate every this many timesteps, 0 = never (default: every 1%% of a run of 100000 steps or more)")
    parser.add_argument("--eval_episodes", type=int, default=20, help="seeded episodes per evaluation (default 20)")
    args = parser.parse_args(argv)
    preset = {**PRESETS.get(args.preset, {}), **VERSION_PRESETS.get(args.preset, {}).get(version, {})}
    if args.restore:
        preset.pop("pretrain", None)
    for flag, value in {**DEFAULT_SETTINGS, **preset}.items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)

    for flag in ("num_steps", "N", "M", "n_envs", "n_epochs", "save_freq", "eval_episodes", "pretrain_episodes", "pretrain_epochs"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
    if args.eval_freq is None:
        args.eval_freq = args.num_steps // 100 if args.num_steps >= 100_000 else 0
    elif args.eval_freq < 0:
        parser.error(f"--eval_freq must be 0 (off) or positive, got {args.eval_freq}")
    text = str(args.learning_rate)
    args.lr_decay = text.startswith("lin_")
    try:
        args.learning_rate = float(text.removeprefix("lin_"))
    except ValueError:
        parser.error(f"--learning_rate must be a number or lin_<number>, e.g. lin_0.001, got {text!r}")
    if not args.learning_rate > 0:
        parser.error(f"--learning_rate must be positive, got {text}")
    if args.ent_coef is None:
        args.ent_coef = list(ENT_COEF_PHASES.get(version, (ENT_COEF,)))
    else:
        message = f"--ent_coef must be one non-negative number or several separated by commas, e.g. 0.01,0.001,0, got {args.ent_coef!r}"
        try:
            args.ent_coef = [float(value) for value in args.ent_coef.split(",")]
        except ValueError:
            parser.error(message)
        if not all(value >= 0 for value in args.ent_coef):
            parser.error(message)
    widths = str(args.net_arch).split(",")
    if not all(width.isdigit() and int(width) > 0 for width in widths):
        parser.error(f"--net_arch must be positive layer widths separated by commas, e.g. 64,64, got {args.net_arch!r}")
    args.net_arch = [int(width) for width in widths]
    if args.pretrain and args.restore:
        parser.error("--pretrain warms up a new model; it cannot be combined with --restore")
    if args.batch_size < 2:
        parser.error(f"--batch_size must be at least 2, got {args.batch_size}")
    if rollout_size(args.n_envs) % args.batch_size == 1:
        parser.error(f"--batch_size {args.batch_size} leaves a minibatch of one transition from a rollout of {rollout_size(args.n_envs)}")
    if version == "online":
        args.queue_len = DEFAULT_QUEUE_LEN if args.queue_len is None else args.queue_len
        if args.queue_len < 1:
            parser.error(f"--queue_len must be a positive integer, got {args.queue_len}")
    elif args.queue_len is not None:
        parser.error("--queue_len is for the online version only")
    if args.device == "gpu" and not torch.cuda.is_available():
        parser.error("--device gpu: CUDA is not available (no GPU visible, a CPU-only torch, or CUDA_VISIBLE_DEVICES hides it)")
    if args.progress_bar and not all(importlib.util.find_spec(name) for name in ("tqdm", "rich")):
        parser.error("--progress_bar needs the tqdm and rich packages: pip install tqdm rich")
    if args.tensorboard_log and not importlib.util.find_spec("tensorboard"):
        parser.error("--tensorboard_log needs the tensorboard package: pip install tensorboard")
    if args.restore:
        try:
            check_fits(args.restore, version, args.N, args.M)
        except ValueError as exc:
            parser.error(str(exc))
    return args


def torch_threads(n_envs: int, vec_env: str) -> int:
    """Torch threads on the CPU: up to 4 cores when the environments run in this process, one when
    they run in subprocesses (which need the cores; more threads then spin and slow everything)."""
    if n_envs > 1 and vec_env == "subproc":
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def rollout_size(n_envs: int) -> int:
    """Transitions in one rollout: each environment runs 2048 // n_envs steps (at least one)."""
    return n_envs * max(1, ROLLOUT_TRANSITIONS // n_envs)


# --- models on disk ---------------------------------------------------------------------------


def model_path(version: str, n_slots: int, levels: int, steps: int, type_tasks: str) -> Path:
    """`<version>/trained_models/bs3_N={N}_M={M}_s={steps}_{type_tasks}.zip`, beside its train.py."""
    return REPO_ROOT / version / "trained_models" / f"bs3_N={n_slots}_M={levels}_s={steps}_{type_tasks}.zip"


def numbered(path: Path, k: int) -> Path:
    """`path` itself for k = 1, else `<stem>-<k>.zip` beside it."""
    return path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")


def link_free(tmp: str, path: Path) -> Path:
    """Give the finished file `tmp` the first free name of `path`, `<stem>-2.zip`, `<stem>-3.zip`, ...
    A hard link fails on a name already taken, so two runs saving the same name at once (two
    trainings in one folder) each keep their own file. A filesystem without hard links gets the
    first name that does not exist yet."""
    k = 1
    while True:
        try:
            os.link(tmp, numbered(path, k))
        except FileExistsError:
            k += 1
            continue
        except OSError:
            while numbered(path, k).exists():
                k += 1
            os.replace(tmp, numbered(path, k))
            return numbered(path, k)
        os.unlink(tmp)
        return numbered(path, k)


def save_model(model: MaskablePPO, path: Path, replace: bool = False) -> Path:
    """Save `model` under `path` or its next free name (`replace`: under `path` itself, for a
    file this run owns), and return that name.

    The zip is written to a hidden temporary file in the same directory, flushed to disk and then
    given its name, so a kill during the save leaves no broken zip and never touches an existing model.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".zip")
    os.close(handle)
    try:
        model.save(tmp)
        with open(tmp, "r+b") as written:
            os.fsync(written.fileno())
        if replace:
            os.replace(tmp, path)
            return path
        return link_free(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_model_data(path: str | Path) -> dict[str, Any]:
    """The non-tensor part of a saved model (spaces, hyperparameters), without loading its weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            data = json_to_data(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a Stable-Baselines3 model zip ({exc})") from None
    if not isinstance(data.get("observation_space"), spaces.Space) or not isinstance(data.get("action_space"), spaces.Discrete):
        raise ValueError(f"{path} is not a Stable-Baselines3 model zip of a discrete-action agent")
    return data


def trained_dims(data: dict[str, Any], path: str | Path) -> tuple[int, int | None]:
    """N and M of a saved model: as recorded by this harness, else N from its action space and M
    from a one-hot observation space or an `_M=<levels>_` in the file name (None if neither)."""
    recorded = data.get("env_config") or {}
    if "N" in recorded and "M" in recorded:
        return int(recorded["N"]), int(recorded["M"])
    n_slots = (int(data["action_space"].n) - FIRST_RUN_ACTION) // NUM_SLICES
    if isinstance(data["observation_space"], spaces.MultiDiscrete):
        return n_slots, int(data["observation_space"].nvec[-1]) - 1
    named = re.search(r"_M=(\d+)_", Path(path).name)
    return n_slots, int(named.group(1)) if named else None


def describe(space: spaces.Space) -> str:
    """A one-line description of a space (a MultiDiscrete by its length)."""
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({space.shape[0]} entries)"
    return str(space)


def check_fits(path: str | Path, version: str, n_slots: int, levels: int) -> None:
    """A ValueError naming both sides unless the model in `path` has the spaces, N and M of `version`."""
    if not Path(path).is_file():
        raise ValueError(f"model file not found: {path}")
    data = read_model_data(path)
    trained_n, trained_m = trained_dims(data, path)
    env = make_env(version, {"N": n_slots, "M": levels})
    model_spaces = (data["observation_space"], data["action_space"])
    if model_spaces != (env.observation_space, env.action_space) or (trained_n, trained_m or levels) != (n_slots, levels):
        raise ValueError(
            f"{path} does not fit {version} with N={n_slots} M={levels}: the model was trained with N={trained_n} "
            f"M={trained_m or '?'} ({describe(model_spaces[0])} -> {describe(model_spaces[1])}), "
            f"this needs {describe(env.observation_space)} -> {describe(env.action_space)}"
        )


def load_checked_model(path: str | Path, version: str) -> tuple[MaskablePPO, dict[str, int]]:
    """A saved model for `version` on the CPU, and the N and M it was trained for; ValueError if it does not fit."""
    n_slots, levels = trained_dims(read_model_data(path), path)
    if levels is None:
        raise ValueError(f"{path}: its M is not recorded in the model nor in its name (_M=<levels>_)")
    check_fits(path, version, n_slots, levels)
    return MaskablePPO.load(path, device="cpu"), {"N": n_slots, "M": levels}


# --- environments -----------------------------------------------------------------------------


def make_vec_env(version: str, env_config: dict[str, int], type_tasks: str, n_envs: int, vec_env: str) -> VecEnv:
    """`n_envs` environments of `version`, in this process or one subprocess each, with episode
    returns and lengths recorded for the log."""
    factories = [partial(make_env, version, env_config, type_tasks)] * n_envs
    if n_envs == 1 or vec_env == "dummy":
        return VecMonitor(DummyVecEnv(factories))
    return VecMonitor(SubprocVecEnv(factories, start_method=START_METHOD))


# --- callbacks --------------------------------------------------------------------------------


class RunCallback(BaseCallback):
    """A callback that counts the timesteps of this run (a restored model starts above zero)."""

    def _on_training_start(self) -> None:
        self.start = self.model.num_timesteps

    @property
    def steps_done(self) -> int:
        return self.model.num_timesteps - self.start

    def _on_step(self) -> bool:
        return True


@dataclass(frozen=True)
class LinearToZero:
    """A learning-rate schedule (SB3's `lr_schedule`): `initial` falling linearly to 0 over the
    `num_steps` of this run, which began at timestep `start` (a restored model starts above 0)."""

    initial: float
    start: int
    num_steps: int

    def __call__(self, progress_remaining: float) -> float:
        # SB3's progress runs over the model's whole count: start + num_steps timesteps.
        done = (1 - progress_remaining) * (self.start + self.num_steps) - self.start
        return self.initial * max(0.0, 1 - done / self.num_steps)


def entropy_coefficient(phases: Sequence[float], steps_done: int, num_steps: int) -> float:
    """The coefficient of the equal phase of a `num_steps` run that `steps_done` falls in."""
    return phases[min(len(phases) - 1, steps_done * len(phases) // num_steps)]


class EntropySchedule(RunCallback):
    """Sets the entropy coefficient of each phase of the run, prints each change and logs `train/ent_coef`."""

    def __init__(self, phases: Sequence[float], num_steps: int) -> None:
        super().__init__()
        self.phases = phases
        self.num_steps = num_steps
        self.current: float | None = None

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self._apply()

    def _on_step(self) -> bool:
        self._apply()
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record("train/ent_coef", self.current)

    def _apply(self) -> None:
        coef = entropy_coefficient(self.phases, self.steps_done, self.num_steps)
        if coef != self.current:
            self.current = self.model.ent_coef = coef
            print(f"entropy coefficient {coef} from timestep {self.steps_done} of this run", flush=True)


class MakespanRatioLog(BaseCallback):
    """Logs `rollout/makespan_ratio`: real makespan / lower bound, averaged over the last finished episodes."""

    def __init__(self) -> None:
        super().__init__()
        self.ratios: deque[float] = deque(maxlen=STATS_WINDOW)

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"]):
            if done and "makespan_ratio" in info:
                self.ratios.append(info["makespan_ratio"])
        return True

    def _on_rollout_end(self) -> None:
        if self.ratios:
            self.logger.record("rollout/makespan_ratio", float(np.mean(self.ratios)))


class Checkpoints(RunCallback):
    """Saves the model every `save_freq` timesteps of the run, named by the timesteps reached, up to
    the `num_steps` that the final save covers."""

    def __init__(self, save_freq: int, num_steps: int, name: Callable[[int], Path]) -> None:
        super().__init__()
        self.save_freq = save_freq
        self.num_steps = num_steps
        self.name = name

    def _on_step(self) -> bool:
        done, previous = self.steps_done, self.steps_done - self.training_env.num_envs
        if done < self.num_steps and done // self.save_freq > previous // self.save_freq:
            print(f"checkpoint saved: {save_model(self.model, self.name(done))}", flush=True)
        return True


class StopOnSignal(BaseCallback):
    """Stops `learn` at its next step once `handle` has seen SIGINT or SIGTERM."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def _on_step(self) -> bool:
        return self.signum is None


class EvalCallback(RunCallback):
    """Runs a `PeriodicEvaluation` whenever the run crosses one of its boundaries."""

    def __init__(self, evaluation: PeriodicEvaluation) -> None:
        super().__init__()
        self.evaluation = evaluation

    def _on_training_start(self) -> None:
        super()._on_training_start()
        self.evaluation.start()

    def _on_step(self) -> bool:
        done = self.steps_done
        if self.evaluation.due(done, done - self.training_env.num_envs):
            self.logger.record("eval/makespan_ratio", self.evaluation.evaluate(self.model, self.model.num_timesteps))
        return True


def run_stem(version: str, n_slots: int, levels: int, steps: int, type_tasks: str) -> Path:
    """The name this run's evaluation files share: the planned model's, with a suffix if a
    previous run left a model, an `_eval.csv` or a `_best.zip` under it."""
    base, k = model_path(version, n_slots, levels, steps, type_tasks), 1
    stem = base.with_suffix("")
    while any(stem.with_name(stem.name + end).exists() for end in (".zip", "_eval.csv", "_best.zip")):
        k += 1
        stem = base.with_name(f"{base.stem}-{k}")
    return stem


# --- main -------------------------------------------------------------------------------------


def main(version: str, argv: Sequence[str] | None = None) -> int:
    """The `train.py` command of a version folder; returns the exit status."""
    check_version(version)
    args = parse_args(version, argv)
    if args.device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(torch_threads(args.n_envs, args.vec_env))
    torch.distributions.Distribution.set_default_validate_args(False)  # argument checks cost ~10% of the fps

    # Handlers first: forked environment workers inherit them, so a Ctrl+C to the whole
    # process group does not kill them while the main process saves.
    stop = StopOnSignal()
    previous = {signum: signal.signal(signum, stop.handle) for signum in EXIT_STATUS}

    env_config = {"N": args.N, "M": args.M} | ({"queue_len": args.queue_len} if version == "online" else {})
    env = make_vec_env(version, env_config, args.type_tasks, args.n_envs, args.vec_env)
    device = "cuda" if args.device == "gpu" else "cpu"
    settings = dict(n_steps=rollout_size(args.n_envs) // args.n_envs, batch_size=args.batch_size, n_epochs=args.n_epochs, learning_rate=args.learning_rate, tensorboard_log=args.tensorboard_log, verbose=1, seed=args.seed, device=device)
    if args.restore:
        model = MaskablePPO.load(args.restore, env=env, **settings)
    else:
        net_arch = dict(pi=args.net_arch, vf=args.net_arch)
        model = MaskablePPO("MlpPolicy", env, gamma=1.0, ent_coef=args.ent_coef[0], policy_kwargs=dict(net_arch=net_arch, optimizer_kwargs=OPTIMIZER_KWARGS), **settings)
        if args.pretrain:
            data = demonstrations(version, env_config, args.type_tasks, args.pretrain, args.pretrain_episodes)
            agreement = clone(model, data, args.pretrain_epochs, seed=args.seed)
            print(
                f"pretrained on {args.pretrain}: {len(data)} steps of {args.pretrain_episodes} episodes (its mean makespan / lower bound "
                f"{data.teacher_ratio:.4f}), {args.pretrain_epochs} epochs, the policy now agrees on {agreement:.1%} of them",
                flush=True,
            )
    model.env_config = env_config  # saved with the model: restores and evaluate.py read N and M from it

    name = partial(model_path, version, args.N, args.M, type_tasks=args.type_tasks)
    callbacks: list[BaseCallback] = [stop, MakespanRatioLog(), Checkpoints(args.save_freq, args.num_steps, name)]
    model.ent_coef = args.ent_coef[0]
    if len(args.ent_coef) > 1:
        callbacks.append(EntropySchedule(args.ent_coef, args.num_steps))
    if args.eval_freq:
        stem = run_stem(version, args.N, args.M, args.num_steps, args.type_tasks)
        best = stem.with_name(stem.name + "_best.zip")
        evaluation = PeriodicEvaluation(version, env_config, args.type_tasks, args.eval_freq, args.eval_episodes, stem.with_name(stem.name + "_eval.csv"), partial(save_model, path=best, replace=True))
        callbacks.append(EvalCallback(evaluation))
    start = model.num_timesteps
    if args.lr_decay:
        model.lr_schedule = LinearToZero(args.learning_rate, start, args.num_steps)
    print(
        f"hyperparameters: n_envs={args.n_envs} ({args.vec_env if args.n_envs > 1 else 'in process'}), n_steps={model.n_steps}, "
        f"batch_size={model.batch_size}, n_epochs={model.n_epochs}, learning_rate={'lin_' if args.lr_decay else ''}{model.learning_rate}, gamma={model.gamma}, "
        f"gae_lambda={model.gae_lambda}, clip_range={model.clip_range(1)}, ent_coef={model.ent_coef}, net_arch={model.policy_kwargs.get('net_arch')}, "
        f"torch threads={torch.get_num_threads()}",
        flush=True,
    )
    print(
        f"training {version}: N={args.N} M={args.M} {args.type_tasks}, {args.num_steps} timesteps from {start} "
        f"({'restored from ' + args.restore if args.restore else 'new model'}), {args.n_envs} env(s) x {model.n_steps} steps per rollout, {device}",
        flush=True,
    )
    try:
        model.learn(
            args.num_steps,
            callback=CallbackList(callbacks),
            reset_num_timesteps=False,
            tb_log_name=f"{version}_N={args.N}_M={args.M}_{args.type_tasks}",
            progress_bar=args.progress_bar,
        )
    finally:
        env.close()

    reached = model.num_timesteps - start
    if stop.signum is not None:
        print(f"stopped by {signal.Signals(stop.signum).name} after {reached} timesteps of this run", flush=True)
    path = save_model(model, name(steps=args.num_steps if stop.signum is None else reached))
    print(f"model saved: {path}", flush=True)
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    return EXIT_STATUS.get(stop.signum, 0)
