"""A training run as an ordered list of stages, each with its own settings and budget.

A recipe (`--stages`, or a preset's in hyperparams.yaml) names the stages in order:

- `clone`: play a baseline (the teacher, `--pretrain`) and fit the policy and value networks to
  its steps (`pretrain.demonstrations`, `pretrain.clone`); its units are teacher episodes.
- `ppo`: MaskablePPO's `learn` with the version's entropy phases; its units are timesteps.
- `self_imitation`: rounds that clone the agent's own best rollouts
  (`pretrain.imitation_demonstrations`, docs/search.md, "Self-imitation"); its units are rounds.

Each stage runs until its units are done or its share of the run's minutes (`--minutes`) is
spent, whichever comes first, and stops early on SIGINT/SIGTERM. A stage with a share (`ppo:0.5`)
gets that fraction of the minutes left when it starts; one without gets all that is left. Each
returns a `StageReport` of what it reached, which the run's JSON record lists.
"""

from __future__ import annotations

import copy
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from migsched.evaluation import PeriodicEvaluation
from migsched.models import first_line
from migsched.pretrain import IMITATION_SEED, Stopped, clone, demonstrations, imitation_demonstrations
from migsched.versions import Version
from migsched.workers import WorkerDied

#: The kinds of stage a recipe may name, each at most once; `clone` only first (it warms up a new model).
STAGE_KINDS = ("clone", "ppo", "self_imitation")
#: Episodes averaged in `rollout/makespan_ratio`, as SB3 averages `ep_rew_mean`.
STATS_WINDOW = 100


def parse_recipe(text: str) -> list[tuple[str, float | None]]:
    """The stages of a recipe such as `clone,ppo:0.5,self_imitation`: each kind with its share of
    the minutes left when it starts (None: all that is left). ValueError says what is wrong."""
    recipe: list[tuple[str, float | None]] = []
    for item in text.split(","):
        kind, _, share = item.strip().partition(":")
        if kind not in STAGE_KINDS:
            raise ValueError(f"unknown stage {kind!r}; choose from {', '.join(STAGE_KINDS)}")
        if kind in (k for k, _ in recipe):
            raise ValueError(f"stage {kind} is named twice")
        if kind == "clone" and recipe:
            raise ValueError("clone warms up a new model: it can only be the first stage")
        try:
            fraction = float(share) if share else None
        except ValueError:
            fraction = -1.0
        if fraction is not None and not 0 < fraction <= 1:
            raise ValueError(f"stage {kind}'s share of the minutes must be in (0, 1], got {share!r}")
        recipe.append((kind, fraction))
    return recipe


def run_label(kinds: Sequence[str], units: Sequence[int | None], minutes: float | None) -> str:
    """The part of a model's name that says what trained it (docs/commands.md, "Recipes"): `s={steps}`
    for PPO, with a clone before it as its warm-up (the original's name); otherwise the stages
    joined by `+` (`clone+si_r28`, `s=2048+si_r2`), each with the units it asked or reached
    (None: bounded by the minutes alone), then `_{minutes}min` for a run with `--minutes`."""
    tags = []
    for kind, done in zip(kinds, units, strict=True):
        if kind == "clone" and "ppo" not in kinds:
            tags.append("clone")
        elif kind == "ppo":
            tags.append("ppo" if done is None else f"s={done}")
        elif kind == "self_imitation":
            tags.append("si" if done is None else f"si_r{done}")
    return "+".join(tags) + (f"_{minutes:g}min" if minutes is not None else "")


class StopOnSignal(BaseCallback):
    """Stops `learn` at its next step once `handle` has seen SIGINT or SIGTERM."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None

    def handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def requested(self) -> bool:
        """Whether a signal asked the run to stop."""
        return self.signum is not None

    def _on_step(self) -> bool:
        return self.signum is None


@dataclass
class Clock:
    """The run's wall clock, its minutes (None: no time limit) and its stop signal, which every stage checks."""

    stop: StopOnSignal
    minutes: float | None = None
    began: float = field(default_factory=time.perf_counter)

    @property
    def deadline(self) -> float | None:
        return None if self.minutes is None else self.began + 60 * self.minutes


@dataclass
class StageReport:
    """What a stage reached: its units done, its wall-clock seconds, why it ended (units, minutes,
    signal, failure) and its figure (clone agreement, PPO rollout ratio, self-imitation ratios)."""

    stage: str
    settings: dict[str, Any]
    unit: str
    done: int
    seconds: float
    ended: str
    figure: dict[str, Any]
    failure: str | None = None

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StageContext:
    """What the stages of a run share: the model, its environments, what they are, the clock, and
    `save(stage, units done)`, which writes a checkpoint and returns its path."""

    model: Any
    env: Any
    version: Version
    env_config: dict[str, Any]
    type_tasks: str
    seed: int | None
    clock: Clock
    save: Callable[[Stage, int], Path]
    #: The model `--restore` gave (None: a new one) and the torch device, as PPO's first lines say.
    restored_from: str | None = None
    device: str = "cpu"
    #: Called as PPO's `learn` starts (model, its rollout ratios) and ends: the run's record takes its fps from them.
    ppo_started: Callable[[Any, deque[float]], None] = lambda model, ratios: None
    ppo_ended: Callable[[], None] = lambda: None


@dataclass
class Stage:
    """One stage of a run: its settings, its budget in its own units (`unit`) and its share of the minutes."""

    kind: ClassVar[str]
    unit: ClassVar[str]
    #: The fraction of the run's minutes left when it starts; None: all that is left.
    share: float | None = field(default=None, kw_only=True)

    def settings(self) -> dict[str, Any]:
        """The settings a record lists."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.repr}

    def deadline(self, clock: Clock) -> float | None:
        """When the stage must end (perf_counter seconds), starting now; None: no time limit."""
        if clock.deadline is None:
            return None
        now = time.perf_counter()
        return now + max(0.0, clock.deadline - now) * (1.0 if self.share is None else self.share)

    def report(self, began: float, done: int, ended: str, figure: dict[str, Any], failure: str | None = None) -> StageReport:
        return StageReport(self.kind, self.settings(), self.unit, done, round(time.perf_counter() - began, 3), ended, figure, failure)

    def run(self, ctx: StageContext) -> StageReport:
        raise NotImplementedError


def time_is_up(deadline: float | None) -> Callable[[], bool]:
    """Whether `deadline` has passed (never, for None)."""
    return lambda: deadline is not None and time.perf_counter() >= deadline


def signal_name(stop: StopOnSignal) -> str:
    return signal.Signals(stop.signum).name if stop.signum is not None else "a signal"


# --- clone ----------------------------------------------------------------------------------------


@dataclass
class Clone(Stage):
    """Clone a baseline (the teacher): fit the new model's policy to its actions and its value to
    the returns, with the model's optimizer at `learning_rate` (docs/commands.md, "Warm start")."""

    kind: ClassVar[str] = "clone"
    unit: ClassVar[str] = "episodes"
    teacher: str
    episodes: int
    epochs: int
    learning_rate: float

    def run(self, ctx: StageContext) -> StageReport:
        began, stop = time.perf_counter(), ctx.clock.stop
        time_up = time_is_up(self.deadline(ctx.clock))
        for group in ctx.model.policy.optimizer.param_groups:
            group["lr"] = self.learning_rate
        try:
            data = demonstrations(ctx.version.name, ctx.env_config, ctx.type_tasks, self.teacher, self.episodes, should_stop=stop.requested, time_up=time_up)
            agreement = clone(ctx.model, data, self.epochs, seed=ctx.seed, should_stop=stop.requested, time_up=time_up)
        except Stopped:
            print(f"pretraining on {self.teacher} stopped by {signal_name(stop)}", flush=True)
            return self.report(began, 0, "signal", {})
        print(
            f"pretrained on {self.teacher}: {len(data)} steps of {data.episodes} episodes (its mean makespan / lower bound "
            f"{data.teacher_ratio:.4f}), {self.epochs} epochs, the policy now agrees on {agreement:.1%} of them",
            flush=True,
        )
        figure = {"agreement": agreement, "teacher_ratio": data.teacher_ratio}
        return self.report(began, data.episodes, "minutes" if time_up() else "units", figure)


# --- PPO --------------------------------------------------------------------------------------------


class RunCallback(BaseCallback):
    """A callback that counts the timesteps of this run (a restored model starts above zero)."""

    def _on_training_start(self) -> None:
        self.start = self.model.num_timesteps

    @property
    def steps_done(self) -> int:
        return self.model.num_timesteps - self.start

    def _on_step(self) -> bool:
        return True


def no_time() -> float:
    """The share of a stage's minutes spent, for a stage without minutes."""
    return 0.0


@dataclass(frozen=True)
class LinearToZero:
    """A learning-rate schedule (SB3's `lr_schedule`): `initial` falling linearly to 0 over the
    `num_steps` of this run, which began at timestep `start` (a restored model starts above 0), or
    over the stage's minutes (`time_spent()`: their share spent) if those end first."""

    initial: float
    start: int
    num_steps: int
    time_spent: Callable[[], float] = no_time

    def __call__(self, progress_remaining: float) -> float:
        # SB3's progress runs over the model's whole count: start + num_steps timesteps.
        done = (1 - progress_remaining) * (self.start + self.num_steps) - self.start
        return self.initial * max(0.0, 1 - max(done / self.num_steps, self.time_spent()))


def entropy_coefficient(phases: Sequence[float], steps_done: int, num_steps: int, time_spent: float = 0.0) -> float:
    """The coefficient of the equal phase of a `num_steps` run that `steps_done` falls in, or of the
    phase of the stage's minutes that `time_spent` (their share spent) falls in, if that is later."""
    phase = max(steps_done * len(phases) // num_steps, int(time_spent * len(phases)))
    return phases[min(len(phases) - 1, phase)]


class EntropySchedule(RunCallback):
    """Sets the entropy coefficient of each phase of the run, prints each change and logs `train/ent_coef`."""

    def __init__(self, phases: Sequence[float], num_steps: int, time_spent: Callable[[], float] = no_time) -> None:
        super().__init__()
        self.phases = phases
        self.num_steps = num_steps
        self.time_spent = time_spent
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
        coef = entropy_coefficient(self.phases, self.steps_done, self.num_steps, self.time_spent())
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


def save_checkpoint(save: Callable[[], Path], what: str) -> None:
    """Write a checkpoint through `save()` and say where; one that cannot be written (a full disk,
    a folder gone read-only) is reported and training goes on."""
    try:
        print(f"checkpoint saved: {save()}", flush=True)
    except OSError as exc:
        print(f"checkpoint at {what} not saved ({exc.strerror or first_line(exc)}); training goes on", flush=True)


class Checkpoints(RunCallback):
    """Saves the model every `save_freq` timesteps of the run through `save(steps done)`, up to the
    `num_steps` that the final save covers, and at the end of the first rollout after each
    `save_minutes` of wall clock (None: never)."""

    def __init__(self, save_freq: int, num_steps: int, save: Callable[[int], Path], save_minutes: float | None = None) -> None:
        super().__init__()
        self.save_freq = save_freq
        self.num_steps = num_steps
        self.save = save
        self.save_minutes = save_minutes
        self.last = time.perf_counter()

    def _on_step(self) -> bool:
        done, previous = self.steps_done, self.steps_done - self.training_env.num_envs
        if done < self.num_steps and done // self.save_freq > previous // self.save_freq:
            self._save(done)
        return True

    def _on_rollout_end(self) -> None:
        if self.save_minutes is not None and time.perf_counter() - self.last >= 60 * self.save_minutes:
            self._save(self.steps_done)

    def _save(self, done: int) -> None:
        self.last = time.perf_counter()
        save_checkpoint(lambda: self.save(done), f"{done} timesteps")


class TimeBudget(BaseCallback):
    """Ends `learn` once its minutes are spent: the rollout that ends after `deadline` is still
    trained on, and the next one stops at its first step."""

    def __init__(self, deadline: float | None) -> None:
        super().__init__()
        self.time_up = time_is_up(deadline)
        self.ended = False

    def _on_rollout_end(self) -> None:
        self.ended = self.time_up()

    def _on_step(self) -> bool:
        return not self.ended


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


@dataclass
class PPO(Stage):
    """MaskablePPO's `learn` for `num_steps` timesteps, with the entropy coefficient's equal phases
    and, with `lr_decay`, the learning rate falling linearly to 0, both over the stage's steps or
    its minutes, whichever end first. `callbacks` (evaluations, thread adaptation) join its own."""

    kind: ClassVar[str] = "ppo"
    unit: ClassVar[str] = "timesteps"
    num_steps: int
    ent_coef: list[float]
    learning_rate: float
    lr_decay: bool
    save_freq: int
    save_minutes: float | None = None
    vec_env: str = "subproc"
    progress_bar: bool = False
    callbacks: list[BaseCallback] = field(default_factory=list, repr=False)

    def run(self, ctx: StageContext) -> StageReport:
        model, stop = ctx.model, ctx.clock.stop
        began = time.perf_counter()
        deadline = self.deadline(ctx.clock)

        def time_spent() -> float:
            return 0.0 if deadline is None else (time.perf_counter() - began) / max(1e-9, deadline - began)

        ratio_log, budget = MakespanRatioLog(), TimeBudget(deadline)
        checkpoints = Checkpoints(self.save_freq, self.num_steps, lambda steps: ctx.save(self, steps), self.save_minutes)
        callbacks: list[BaseCallback] = [stop, budget, ratio_log, checkpoints, *self.callbacks]
        model.ent_coef = self.ent_coef[0]
        if len(self.ent_coef) > 1:
            callbacks.append(EntropySchedule(self.ent_coef, self.num_steps, time_spent))
        start = model.num_timesteps
        if self.lr_decay:
            model.lr_schedule = LinearToZero(self.learning_rate, start, self.num_steps, time_spent)
        print(
            f"hyperparameters: n_envs={model.n_envs} ({self.vec_env if model.n_envs > 1 else 'in process'}), n_steps={model.n_steps}, batch_size={model.batch_size}, "
            f"n_epochs={model.n_epochs}, learning_rate={'lin_' if self.lr_decay else ''}{model.learning_rate}, gamma={model.gamma}, "
            f"gae_lambda={model.gae_lambda}, clip_range={model.clip_range(1)}, ent_coef={model.ent_coef}, net_arch={model.policy_kwargs.get('net_arch')}, "
            f"torch threads={torch.get_num_threads()}",
            flush=True,
        )
        config = ctx.env_config
        print(
            f"training {ctx.version.name}: N={config['N']} M={config['M']} {ctx.type_tasks}, reward {config['reward']}, {self.num_steps} timesteps from {start} "
            f"({'restored from ' + ctx.restored_from if ctx.restored_from is not None else 'new model'}), {model.n_envs} env(s) x {model.n_steps} steps "
            f"per rollout, {ctx.device}",
            flush=True,
        )
        ctx.ppo_started(model, ratio_log.ratios)
        failure = None
        try:
            if not stop.requested():
                model.learn(
                    self.num_steps,
                    callback=CallbackList(callbacks),
                    reset_num_timesteps=False,
                    tb_log_name=f"{ctx.version.name}_N={config['N']}_M={config['M']}_{ctx.type_tasks}",
                    progress_bar=self.progress_bar,
                )
        except WorkerDied as exc:
            failure = str(exc)
        finally:
            ctx.env.close()
            ctx.ppo_ended()
        ended = "failure" if failure else "signal" if stop.requested() else "minutes" if budget.ended else "units"
        figure = {"rollout_makespan_ratio": float(np.mean(ratio_log.ratios)) if ratio_log.ratios else None}
        return self.report(began, model.num_timesteps - start, ended, figure, failure)


# --- self-imitation ---------------------------------------------------------------------------------


@dataclass
class SelfImitation(Stage):
    """Rounds of self-imitation (docs/search.md, "Self-imitation"): each plays `episodes` new
    episodes, keeps the agent's best of its deterministic and `samples` stochastic rollouts on
    each, and clones those schedules for `epochs` passes at `learning_rate`. A checkpoint every
    `save_rounds` rounds (0: never) and after the first round that ends `save_minutes` after the last
    (None: never). A signal stops it after the current episode or minibatch, the model keeping what
    it learnt; its minutes stop it at the same points, the model being that of the last finished round."""

    kind: ClassVar[str] = "self_imitation"
    unit: ClassVar[str] = "rounds"
    rounds: int
    episodes: int
    samples: int
    epochs: int
    learning_rate: float
    save_rounds: int = 0
    save_minutes: float | None = None

    def run(self, ctx: StageContext) -> StageReport:
        model, stop = ctx.model, ctx.clock.stop
        began, last_save = time.perf_counter(), time.perf_counter()
        time_up = time_is_up(self.deadline(ctx.clock))
        for group in model.policy.optimizer.param_groups:
            group["lr"] = self.learning_rate
        seed = ctx.seed or 0
        print(
            f"self-imitation: {self.rounds} round(s) of {self.episodes} episodes, the best of {self.samples + 1} rollouts "
            f"on each, {self.epochs} epochs at learning rate {self.learning_rate}",
            flush=True,
        )
        figure: dict[str, Any] = {}
        for round_ in range(self.rounds):
            if time_up():
                print(f"self-imitation ran out of time after round {round_}: the model is that of round {round_}", flush=True)
                return self.report(began, round_, "minutes", figure)
            try:
                data = imitation_demonstrations(
                    model, ctx.version.name, ctx.env_config, ctx.type_tasks, self.episodes, self.samples,
                    first_seed=IMITATION_SEED + round_ * self.episodes, seed=seed + round_ * self.episodes,
                    should_stop=lambda: stop.requested() or time_up(),
                )  # fmt: skip
            except Stopped:
                why = f"stopped in round {round_ + 1}" if stop.requested() else f"ran out of time in round {round_ + 1}"
                print(f"self-imitation {why}, while it played its episodes: the model is that of round {round_}", flush=True)
                return self.report(began, round_, "signal" if stop.requested() else "minutes", figure)
            before = (copy.deepcopy(model.policy.state_dict()), copy.deepcopy(model.policy.optimizer.state_dict()))
            try:
                agreement = clone(model, data, self.epochs, seed=seed + round_, should_stop=lambda: stop.requested() or time_up())
            except Stopped:
                if stop.requested():
                    print(f"self-imitation stopped in round {round_ + 1}, while it cloned its best schedules", flush=True)
                    return self.report(began, round_, "signal", figure)
                model.policy.load_state_dict(before[0])
                model.policy.optimizer.load_state_dict(before[1])
                print(
                    f"self-imitation ran out of time in round {round_ + 1}, while it cloned its best schedules: the model is that of round {round_}", flush=True
                )
                return self.report(began, round_, "minutes", figure)
            print(
                f"self-imitation round {round_ + 1} of {self.rounds}: the best of {self.samples + 1} rollouts on {self.episodes} episodes "
                f"(mean makespan / lower bound {data.teacher_ratio:.4f}; the deterministic ones {data.agent_ratio:.4f}), {len(data)} steps, "
                f"the policy now agrees on {agreement:.1%} of them",
                flush=True,
            )
            figure = {"best_ratio": data.teacher_ratio, "deterministic_ratio": data.agent_ratio, "agreement": agreement}
            done = round_ + 1
            by_rounds = self.save_rounds > 0 and done % self.save_rounds == 0
            by_minutes = self.save_minutes is not None and time.perf_counter() - last_save >= 60 * self.save_minutes
            if done < self.rounds and (by_rounds or by_minutes):
                last_save = time.perf_counter()
                save_checkpoint(partial(ctx.save, self, done), f"round {done}")
        return self.report(began, self.rounds, "units", figure)


def run_stages(stages: Sequence[Stage], ctx: StageContext, reports: list[StageReport]) -> None:
    """Run `stages` in order until one is stopped by a signal or fails, adding what each reached to `reports`."""
    for stage in stages:
        reports.append(stage.run(ctx))
        if reports[-1].ended in ("signal", "failure"):
            break
