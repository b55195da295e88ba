"""The training harness behind each version's `train.py`: MaskablePPO (sb3-contrib) on its `SchedEnv`.

    cd float && python train.py --num_steps 100000 --N 14 --M 14 --type_tasks wide_times

Top to bottom, as `main` runs it: check the flags (a bad one is a one-line error, exit 2, before
anything is built); build the vectorised environments; build a new model or restore one whose
spaces fit; run the recipe's stages in order (`migsched.stages`: the clone of a baseline, PPO,
self-imitation), each within its units and its share of `--minutes`; save the model atomically
under a name that says what trained it and is still free.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sb3_contrib import MaskablePPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HumanOutputFormat, Logger

from migsched.a100 import NUM_SLICES
from migsched.cli import OneLineParser, check_output_file
from migsched.evaluation import PeriodicEvaluation
from migsched.models import (
    OPTIMIZER_KWARGS,
    TRUST_FLAG,
    TRUST_HELP,
    WEIGHTS_SUFFIX,
    ModelError,
    check_fits,
    claim,
    clean_stale_runs,
    first_line,
    load_checked_model,
    model_path,
    read_facts,
    record_path,
    save_model,
    weights_path,
    write_model,
    write_record,
)
from migsched.settings import SETTINGS, TABLE_BEGIN, TABLE_END, markdown_table, problems, recorded
from migsched.stages import (
    PPO,
    Clock,
    Clone,
    EvalCallback,
    SelfImitation,
    Stage,
    StageContext,
    StageReport,
    StopOnSignal,
    parse_recipe,
    run_label,
    run_stages,
)
from migsched.state import FIRST_RUN_ACTION
from migsched.versions import Version, get_version
from migsched.workers import FreeCoreThreads, make_vec_env, runnable_elsewhere, threads_for_free_cores, torch_threads

#: The share of this machine's memory a rollout buffer may take before train.py refuses the run.
ROLLOUT_MEMORY_SHARE = 0.5
EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}


# --- command line -----------------------------------------------------------------------------


def build_parser(version: str) -> OneLineParser:
    """train.py's flags for `version`. The settings of its hyperparams.yaml have no argparse
    default: `parse_args` fills in the file's values for the flags not given."""
    info = get_version(version)
    defaults, presets = info.defaults, info.presets
    parser = OneLineParser(
        prog="train.py", description=f"Train a MaskablePPO agent of the {version} version; defaults and presets from {info.folder.name}/hyperparams.yaml."
    )
    for setting in SETTINGS:
        shown = f" (default {defaults.get(setting.name, 'none')})" if setting.name in defaults or setting.name == "queue_len" else ""
        parser.add_argument(f"--{setting.name}", type=setting.type, choices=setting.choices, help=(setting.help + shown).replace("%", "%%"))
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="gpu: CUDA, honouring CUDA_VISIBLE_DEVICES (default cpu)")
    parser.add_argument(
        "--restore", help=f"model to continue training from (a zip, or the weights-only {WEIGHTS_SUFFIX} beside it), relative to the current directory"
    )
    parser.add_argument(TRUST_FLAG, action="store_true", help=f"with --restore: {TRUST_HELP}")

    def shown(changes: dict[str, Any]) -> str:
        return " ".join(f"--{k} {v}" for k, v in changes.items())

    described = "; ".join(
        f"{name}: {shown(changes)}" + "".join(f", on {workload} also {shown(more)}" for workload, more in info.workload_changes(name).items())
        for name, changes in presets.items()
    )
    parser.add_argument("--preset", choices=tuple(presets), help=f"{described}; explicit flags override it")
    parser.add_argument("--tensorboard_log", help="directory for TensorBoard logs")
    parser.add_argument("--progress_bar", action="store_true", help="show a progress bar with the time left")
    parser.add_argument(
        "--record", help="also write the run's JSON record (the one beside its model) to this file when the run ends, for scripts such as sweep.py"
    )
    return parser


def as_flags(settings: dict[str, Any]) -> list[str]:
    """Settings as command-line flags (a None value: no flag)."""
    return [text for flag, value in settings.items() if value is not None for text in (f"--{flag}", str(value))]


def parse_args(version: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The flags of `train.py`, checked, with hyperparams.yaml's defaults and preset (with its
    changes for the chosen workload) filled in for those not given; any invalid one exits with status 2."""
    parser = build_parser(version)
    argv = list(sys.argv[1:] if argv is None else argv)
    given, _ = parser.parse_known_args(argv)
    inherited = inherited_settings(parser, version, given)
    settings = get_version(version).settings(given.preset, given.type_tasks or inherited.get("type_tasks"))
    if given.restore is not None:
        settings.pop("pretrain")  # a restored model is not pretrained, whatever the preset says
    args = parser.parse_args([*as_flags(settings), *as_flags(inherited), *argv])
    for problem in problems((setting.name, getattr(args, setting.name)) for setting in SETTINGS):
        parser.error(problem)
    for setting in (setting for setting in SETTINGS if setting.convert is not None):
        try:
            setattr(args, setting.name, setting.convert(str(getattr(args, setting.name))))
        except ValueError as exc:
            parser.error(f"--{setting.name} {exc}")
    if args.pretrain == "none":
        args.pretrain = None
    args.recipe = resolve_recipe(parser, args, given)
    args.units_given = {
        kind
        for kind, flag in (("clone", "pretrain_episodes"), ("ppo", "num_steps"), ("self_imitation", "imitation_rounds"))
        if getattr(given, flag) is not None
    }
    args.stages = ",".join(kind + (f":{share:g}" if share is not None else "") for kind, share in args.recipe)
    trains_ppo = any(kind == "ppo" for kind, _ in args.recipe)
    if "ppo" in args.units_given and not trains_ppo:
        parser.error(
            f"--num_steps budgets PPO, which this run's stages ({args.stages}) leave out: add --stages with ppo (e.g. --stages clone,ppo) or drop --num_steps"
        )
    rollout = rollout_size(args.n_envs, args.rollout_steps)
    if trains_ppo and args.num_steps < rollout:
        parser.error(
            f"--num_steps {args.num_steps} is less than one rollout: give at least {rollout} (the transitions of one rollout with --n_envs {args.n_envs})"
        )
    if args.eval_freq is None:
        args.eval_freq = args.num_steps // 100 if args.num_steps >= 100_000 else 0
    args.lr_decay = args.learning_rate.startswith("lin_")
    args.learning_rate = float(args.learning_rate.removeprefix("lin_"))
    buffer_bytes = rollout_bytes(args.N, rollout)
    if buffer_bytes > ROLLOUT_MEMORY_SHARE * physical_memory():
        parser.error(
            f"a rollout of {rollout} transitions at N={args.N} M={args.M} needs {buffer_bytes / 2**30:.1f} GiB of memory, more than half of this "
            f"machine's {physical_memory() / 2**30:.1f} GiB: lower --rollout_steps, --N or --M"
        )
    if args.trust_model and args.restore is None:
        parser.error(f"{TRUST_FLAG} says how to read the model of --restore; give --restore")
    if args.pretrain and args.restore is not None:
        parser.error("--pretrain warms up a new model; it cannot be combined with --restore")
    if not 2 <= args.batch_size <= rollout:
        parser.error(f"--batch_size must be in 2..{rollout} (the transitions of one rollout), got {args.batch_size}")
    if rollout % args.batch_size == 1:
        parser.error(f"--batch_size {args.batch_size} leaves a minibatch of one transition from a rollout of {rollout}")
    if args.queue_len is not None and not get_version(version).online:
        parser.error("--queue_len is for the online version only")
    if args.device == "gpu" and not torch.cuda.is_available():
        parser.error("--device gpu: CUDA is not available (no GPU visible, a CPU-only torch, or CUDA_VISIBLE_DEVICES hides it)")
    if args.progress_bar and not all(importlib.util.find_spec(name) for name in ("tqdm", "rich")):
        parser.error("--progress_bar needs the tqdm and rich packages: pip install tqdm rich")
    if args.tensorboard_log is not None:
        if not importlib.util.find_spec("tensorboard"):
            parser.error("--tensorboard_log needs the tensorboard package: pip install tensorboard")
        problem = unwritable_folder(Path(args.tensorboard_log))
        if problem:
            parser.error(f"--tensorboard_log {args.tensorboard_log}: {problem}")
    if args.record is not None:
        check_output_file(parser, "--record", args.record)
    if args.restore is not None:
        try:
            data = check_fits(args.restore, version, args.N, args.M, trusted=args.trust_model)
        except ValueError as exc:
            parser.error(f"--restore: {exc}")
        trained_with = (data.get("env_config") or {}).get("reward", "levels")
        if given.reward is not None and given.reward != trained_with:
            parser.error(f"--restore: the model was trained with --reward {trained_with}; a restore keeps it (drop --reward {given.reward})")
        args.reward = trained_with
    return args


def resolve_recipe(parser: OneLineParser, args: argparse.Namespace, given: argparse.Namespace) -> list[tuple[str, float | None]]:
    """The run's stages: `--stages` (or the preset's), else clone if `--pretrain`, PPO, then
    self-imitation if `--imitation_rounds`. A stage without a budget (clone without a teacher,
    self-imitation of 0 rounds) is left out of a preset's recipe; `--stages` naming one is an error."""
    if args.stages is None:
        return [("clone", None)] * bool(args.pretrain) + [("ppo", None)] + [("self_imitation", None)] * bool(args.imitation_rounds)
    try:
        recipe = parse_recipe(args.stages)
    except ValueError as exc:
        parser.error(f"--stages {args.stages}: {exc}")
    missing = {"clone": "give --pretrain <teacher>", "self_imitation": "give --imitation_rounds"}
    budgets = {"clone": bool(args.pretrain), "ppo": True, "self_imitation": bool(args.imitation_rounds)}
    empty = [kind for kind, _ in recipe if not budgets[kind]]
    if empty and given.stages is not None:
        parser.error(f"--stages {args.stages}: stage {empty[0]} has nothing to do ({missing[empty[0]]})")
    recipe = [(kind, share) for kind, share in recipe if kind not in empty]
    if not recipe:
        parser.error(f"--stages {args.stages}: no stage has anything to do")
    return recipe


def inherited_settings(parser: OneLineParser, version: str, given: argparse.Namespace) -> dict[str, Any]:
    """With `--restore`: the model's N, M and workload for those flags not given. A `--type_tasks`
    other than the model's is taken, with a note; a model that is not one of `version` is an error."""
    if given.restore is None:
        return {}
    try:
        facts = read_facts(given.restore, version)
    except ModelError as exc:
        parser.error(f"--restore: {exc}")
    if given.type_tasks is not None and facts.type_tasks not in (None, given.type_tasks):
        print(f"train.py: note: the model was trained on {facts.type_tasks}; this run trains it on {given.type_tasks}, as --type_tasks asks", file=sys.stderr)
    found = {"N": facts.N, "M": facts.M, "type_tasks": facts.type_tasks}
    return {flag: value for flag, value in found.items() if value is not None and getattr(given, flag) is None}


def physical_memory() -> int:
    """This machine's memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def rollout_bytes(n_slots: int, transitions: int) -> int:
    """At least what MaskablePPO's rollout buffer of `transitions` takes: per transition the
    observation (MIG_MODEL.md section 7: 1 + 6N + 7 entries, +1 online), the action mask and a few
    scalars, each as float32."""
    observation = 1 + 6 * n_slots + NUM_SLICES + 1
    return transitions * (observation + FIRST_RUN_ACTION + NUM_SLICES * n_slots + 8) * 4


def unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be written in `folder` (created if missing), or None if they can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return f"cannot write there ({exc.strerror or first_line(exc)})"
    return None


def rollout_size(n_envs: int, rollout_steps: int) -> int:
    """Transitions in one rollout: each environment runs rollout_steps // n_envs steps (at least one)."""
    return n_envs * max(1, rollout_steps // n_envs)


# --- the run's record ---------------------------------------------------------------------------


def library_versions() -> dict[str, str]:
    """The versions of Python and of the libraries a model depends on."""
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("migsched", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


class RunRecord:
    """The JSON record written beside every model of a run: what was asked (version, resolved
    hyperparameters, stages, command line, env_config, seed, libraries) and what was reached (each
    stage's report, timesteps, wall-clock seconds, PPO's fps, the last rollout makespan ratio, the
    best evaluation)."""

    def __init__(self, version: str, args: argparse.Namespace, env_config: dict[str, Any], argv: Sequence[str], folder: Path) -> None:
        self.began = time.perf_counter()
        self.training_began: float | None = None
        self.ppo_ended: float | None = None
        self.start_timesteps = 0
        self.ratios: deque[float] | None = None
        self.best: dict[str, Any] | None = None
        self.reports: list[StageReport] = []
        learning_rate = f"lin_{args.learning_rate}" if args.lr_decay else args.learning_rate
        self.asked: dict[str, Any] = {
            "version": version,
            "type_tasks": args.type_tasks,
            "env_config": env_config,
            "seed": args.seed,
            "num_steps": args.num_steps,
            "stages": args.stages,
            "minutes": args.minutes,
            "restored_from": str(Path(args.restore).resolve()) if args.restore is not None else None,
            "hyperparameters": {
                "preset": args.preset,
                **recorded({**vars(args), "learning_rate": learning_rate}, dict(args.recipe)),
                "n_steps": rollout_size(args.n_envs, args.rollout_steps) // args.n_envs,
                "device": args.device,
            },
            "command": {"argv": ["train.py", *argv], "cwd": os.getcwd(), "script": str(folder / "train.py")},
            "libraries": library_versions(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "process": {"pid": os.getpid(), "host": platform.node()},
        }

    def training_started(self, model: Any, ratios: deque[float]) -> None:
        """Note the model's count and the clock as `learn` starts, and where the rollout ratios are kept."""
        self.start_timesteps = model.num_timesteps
        self.training_began = time.perf_counter()
        self.ratios = ratios

    def snapshot(self, model: Any, status: str) -> dict[str, Any]:
        """The record now: `status` (running, checkpoint, best, finished, stopped by ..., ...)."""
        record = {**self.asked, "status": status, "wall_clock_s": round(time.perf_counter() - self.began, 3)}
        record["stage_reports"] = [report.as_record() for report in self.reports]
        if model is not None:
            steps = model.num_timesteps - self.start_timesteps
            seconds = (self.ppo_ended or time.perf_counter()) - self.training_began if self.training_began else 0.0
            record |= {
                "timesteps": model.num_timesteps,
                "steps_this_run": steps,
                "fps": round(steps / seconds, 1) if seconds > 0 else None,
                "hyperparameters": {**self.asked["hyperparameters"], "gamma": model.gamma, "gae_lambda": model.gae_lambda, "clip_range": model.clip_range(1)},
                "rollout_makespan_ratio": float(np.mean(self.ratios)) if self.ratios else None,
                "best_evaluation": self.best,
            }
        return record


# --- saving -------------------------------------------------------------------------------------


def save_or_rescue(model: Any, path: Path, record: dict[str, Any], claimed: bool) -> tuple[Path | None, str | None]:
    """Save the final model under `path` (or its next free name); if that fails, under the same
    name in a rescue folder of the system's temporary directory. Returns where it went (None if
    nowhere) and what went wrong (None if nothing)."""
    try:
        return save_model(model, path, record, claimed=claimed), None
    except OSError as exc:
        problem = f"could not save the model in {path.parent} ({exc.strerror or first_line(exc)})"
    rescue = Path(tempfile.gettempdir()) / "migsched-rescue" / path.name
    try:
        return save_model(model, rescue, record), f"{problem}; saved it to {rescue.parent} instead"
    except OSError as exc:
        return None, f"{problem}, nor in {rescue.parent} ({exc.strerror or first_line(exc)}): the model is lost"


# --- main -------------------------------------------------------------------------------------


def build_model(version: Version, args: argparse.Namespace, env: Any, device: str) -> Any:
    """The run's MaskablePPO on `env`: restored from `--restore` (ModelError if it cannot be), or new."""
    settings = dict(
        n_steps=rollout_size(args.n_envs, args.rollout_steps) // args.n_envs,
        batch_size=args.batch_size,
        n_epochs=args.n_epochs,
        learning_rate=args.learning_rate,
        tensorboard_log=args.tensorboard_log,
        verbose=1,
        seed=args.seed,
        device=device,
    )
    if args.restore is not None:
        if Path(args.restore).suffix == WEIGHTS_SUFFIX:
            settings |= dict(gamma=args.gamma, ent_coef=args.ent_coef[0])
        model, _ = load_checked_model(args.restore, version.name, trusted=args.trust_model, env=env, **settings)
    else:
        net_arch = dict(pi=args.net_arch, vf=args.net_arch)
        model = MaskablePPO(
            "MlpPolicy", env, gamma=args.gamma, ent_coef=args.ent_coef[0], policy_kwargs=dict(net_arch=net_arch, optimizer_kwargs=OPTIMIZER_KWARGS), **settings
        )
    model.migsched_version = version.name  # saved with the model: every command checks it
    model.type_tasks = args.type_tasks  # and restore, evaluate and schedule take it as their workload
    return model


def main(version: str, argv: Sequence[str] | None = None, folder: Path | None = None) -> int:
    """The `train.py` command of a version folder; returns the exit status. Models go to
    `<folder>/trained_models/`: train.py passes its own folder (default: the version's folder in
    this repository). Everything that can be checked, the model built or restored included, is
    before the run claims its name; a failure after the claim is written in its record."""
    info = get_version(version)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(version, argv)
    folder = Path(folder or info.folder).resolve()
    env_config = {"N": args.N, "M": args.M, "reward": args.reward} | ({"queue_len": args.queue_len} if args.queue_len is not None else {})
    record = RunRecord(version, args, env_config, argv, folder)
    name = partial(model_path, folder, args.N, args.M, type_tasks=args.type_tasks)
    models = name(steps=0).parent
    try:
        models.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=models):
            pass
    except OSError as exc:
        print(f"train.py: error: cannot write models in {models}: {exc.strerror or first_line(exc)}", file=sys.stderr)
        return 2
    for note in clean_stale_runs(models):
        print(note, flush=True)
    adapt_threads = args.device == "cpu" and "OMP_NUM_THREADS" not in os.environ
    if adapt_threads:
        torch.set_num_threads(threads_for_free_cores(torch_threads(args.n_envs, args.vec_env), runnable_elsewhere()))
    torch.distributions.Distribution.set_default_validate_args(False)  # argument checks cost ~10% of the fps

    stop = StopOnSignal()
    previous = {signum: signal.signal(signum, stop.handle) for signum in EXIT_STATUS}
    env = make_vec_env(version, env_config, args.type_tasks, args.n_envs, args.vec_env)
    device = "cuda" if args.device == "gpu" else "cpu"
    try:
        model = build_model(info, args, env, device)
        # under --minutes a stage's units are in the name only where the command line gave them
        asked = [units if args.minutes is None or kind in args.units_given else None for (kind, _), units in zip(args.recipe, recipe_units(args), strict=True)]
        label = run_label([kind for kind, _ in args.recipe], asked, args.minutes)
        run_path = claim(name(label=label), record.snapshot(None, "running"))
    except (ModelError, MemoryError, OSError) as exc:
        env.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if isinstance(exc, ModelError):
            problem = f"--restore: {exc}"
        elif isinstance(exc, MemoryError):
            problem = "not enough memory for the model and its rollout buffer: lower --rollout_steps, --N or --M"
        else:
            problem = f"cannot write models in {models}: {exc.strerror or first_line(exc)}"
        print(f"train.py: error: {problem}", file=sys.stderr)
        return 2
    try:
        return run(info, args, record, env, model, run_path, name, stop, adapt_threads)
    except Exception as exc:
        status = f"failed: {type(exc).__name__}: {first_line(exc)}"
        try:
            write_record(record_path(run_path), record.snapshot(model, status))
        except OSError:
            pass  # the error below still says what happened
        print(f"train.py: error: the run {status} (recorded in {record_path(run_path)})", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def recipe_units(args: argparse.Namespace) -> list[int]:
    """The budget of each stage of the run's recipe in its own units (episodes, timesteps, rounds)."""
    units = {"clone": args.pretrain_episodes, "ppo": args.num_steps, "self_imitation": args.imitation_rounds}
    return [units[kind] for kind, _ in args.recipe]


def build_stages(version: Version, args: argparse.Namespace, record: RunRecord, run_path: Path, adapt_threads: bool) -> list[Stage]:
    """The stages of the run's recipe with their settings; PPO's with the evaluations and thread adaptation asked."""
    stages: list[Stage] = []
    for kind, share in args.recipe:
        if kind == "clone":
            stages.append(Clone(args.pretrain, args.pretrain_episodes, args.pretrain_epochs, args.learning_rate, share=share))
        elif kind == "self_imitation":
            stages.append(
                SelfImitation(
                    args.imitation_rounds, args.imitation_episodes, args.imitation_samples, args.imitation_epochs, args.imitation_learning_rate,
                    args.save_rounds, args.save_minutes, share=share,
                )
            )  # fmt: skip
        else:
            callbacks: list[BaseCallback] = [FreeCoreThreads(torch_threads(args.n_envs, args.vec_env))] if adapt_threads else []
            if args.eval_freq:
                callbacks.append(EvalCallback(periodic_evaluation(version, args, record, run_path)))
            ppo = PPO(
                args.num_steps,
                args.ent_coef,
                args.learning_rate,
                args.lr_decay,
                args.save_freq,
                args.save_minutes,
                args.vec_env,
                args.progress_bar,
                callbacks,
                share=share,
            )
            stages.append(ppo)
    return stages


def periodic_evaluation(version: Version, args: argparse.Namespace, record: RunRecord, run_path: Path) -> PeriodicEvaluation:
    """PPO's evaluations every `--eval_freq` timesteps, into `<run>_eval.csv`; the best model so far is kept as `<run>_best.zip`."""
    stem = run_path.with_suffix("")
    best = stem.with_name(stem.name + "_best.zip")
    csv_path = stem.with_name(stem.name + "_eval.csv")

    def save_best(model: MaskablePPO) -> Path:
        record.best = {"timesteps": model.num_timesteps, "makespan_ratio": evaluation.best, "model": str(best)}
        write_model(model, best)
        write_record(record_path(best), record.snapshot(model, "best") | {"model": str(best)})
        return best

    record.asked["eval_csv"] = str(csv_path)
    evaluation = PeriodicEvaluation(version.name, record.asked["env_config"], args.type_tasks, args.eval_freq, args.eval_episodes, csv_path, save_best)
    return evaluation


def run(
    version: Version,
    args: argparse.Namespace,
    record: RunRecord,
    env: Any,
    model: Any,
    run_path: Path,
    name: Callable[..., Path],
    stop: StopOnSignal,
    adapt_threads: bool,
) -> int:
    """The run after its name is claimed: its stages in order, then the final save."""
    env_config = record.asked["env_config"]
    model.env_config = env_config  # saved with the model: restores and evaluate.py read N, M and the reward from it
    if args.tensorboard_log is None:  # SB3's own stdout logger would also create an empty <temp>/SB3-<date> folder
        model.set_logger(Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)]))
    stages = build_stages(version, args, record, run_path, adapt_threads)
    kinds = [stage.kind for stage in stages]

    def reached_name(current: Stage | None = None, done: int = 0) -> Path:
        """The name of a model that has reached what the finished stages did, and `done` units of `current`."""
        units = [report.done for report in record.reports] + ([done] if current is not None else [])
        return name(label=run_label(kinds, units + [0] * (len(kinds) - len(units)), None))

    def save_checkpoint(stage: Stage, done: int) -> Path:
        return save_model(model, reached_name(stage, done), record.snapshot(model, "checkpoint"))

    def ppo_ended() -> None:
        record.ppo_ended = time.perf_counter()  # the fps is PPO's

    clock = Clock(stop, args.minutes, began=record.began)
    ctx = StageContext(
        model, env, version, env_config, args.type_tasks, args.seed, clock, save_checkpoint,
        restored_from=args.restore, device="cuda" if args.device == "gpu" else "cpu", ppo_started=record.training_started, ppo_ended=ppo_ended,
    )  # fmt: skip
    start = model.num_timesteps
    try:
        run_stages(stages, ctx, record.reports)
    finally:
        if "ppo" not in (report.stage for report in record.reports):
            env.close()
    failure = next((report.failure for report in record.reports if report.failure), None)
    reached = model.num_timesteps - start
    if stop.requested():
        status = f"stopped by {signal.Signals(stop.signum).name}"
    elif failure:
        status = f"stopped: {failure}"
    else:
        status = "finished"
    if status != "finished":
        print(f"{status} after {reached} timesteps of this run", flush=True)
    finished = status == "finished"
    final = record.snapshot(model, status)
    path, problem = save_or_rescue(model, run_path if finished else reached_name(), final, claimed=finished)
    if path is not None:
        print(f"model saved: {path}", flush=True)
    final_record = final | {"model": str(path) if path else None} | ({"weights": str(weights_path(path))} if path and weights_path(path).exists() else {})
    if not finished:
        try:
            write_record(record_path(run_path), final_record)
        except OSError:
            pass  # the model's own record, or the error below, says where it is
    if args.record is not None:
        try:
            write_record(Path(args.record), final_record)
        except OSError as exc:
            problem = "; ".join(filter(None, (problem, f"--record {args.record} not written ({exc.strerror or first_line(exc)})")))
    if failure or problem:
        print(f"train.py: error: {'; '.join(filter(None, (failure, problem)))}" + (f"; model saved: {path}" if path and failure else ""), file=sys.stderr)
        return 1
    return EXIT_STATUS.get(stop.signum, 0)


def write_flag_table(path: Path | None = None) -> None:
    """Rewrite the flag table of docs/commands.md (between TABLE_BEGIN and TABLE_END) from the
    settings' declarations and train.py's parser."""
    from migsched.versions import REPO_ROOT

    path = path or REPO_ROOT / "docs" / "commands.md"
    text = path.read_text()
    begin, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END)
    path.write_text(text[:begin] + markdown_table(build_parser("float"), get_version("float").defaults) + text[end:])


if __name__ == "__main__":
    write_flag_table()
