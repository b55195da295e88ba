"""Every setting of a training run, declared once: name, meaning, type, bounds, and the stage it belongs to.

train.py's parser and `--help`, its input checks, the bounds that evaluate.py, schedule.py and
sweep.py share, the `hyperparameters` of a run's record and the flag table of
docs/commands.md all come from `SETTINGS`. The defaults here are every version's; a version's
`hyperparams.yaml` holds only what differs (`defaults`) and its recipes (`presets`).

    python -m migsched.training    # rewrites the flag table of docs/commands.md
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from migsched.env import REWARDS
from migsched.workloads import WORKLOAD_NAMES

#: Teachers of the clone stage (migsched.pretrain reads them from here).
TEACHERS = ("static", "greedy", "far")
MAX_LAYERS, MAX_WIDTH = 16, 4096
SEED_MAX = 2**32 - 1
#: Groups of settings, in the order of the docs' table: what they set.
GROUPS = {
    "run": "the problem and the run",
    "ppo": "the ppo stage",
    "clone": "the clone stage",
    "self_imitation": "the self_imitation stage",
    "output": "checkpoints, evaluation, output",
}
TABLE_BEGIN = "<!-- settings table: written by python -m migsched.training -->"
TABLE_END = "<!-- end of settings table -->"


def learning_rate_text(text: str) -> str:
    """A positive finite learning rate, or lin_<rate> (falls linearly to 0)."""
    try:
        value = float(text.removeprefix("lin_"))
    except ValueError:
        raise ValueError(f"must be a number or lin_<number>, e.g. lin_0.001, got {text!r}") from None
    if not 0 < value < math.inf:
        raise ValueError(f"must be positive and finite, got {text}")
    return text


def coefficients(text: str) -> list[float]:
    """One finite non-negative number, or several separated by commas."""
    try:
        values = [float(value) for value in text.split(",")]
    except ValueError:
        values = [-1.0]
    if not all(0 <= value < math.inf for value in values):
        raise ValueError(f"must be one finite non-negative number or several separated by commas, e.g. 0.01,0.001,0, got {text!r}")
    return values


def widths(text: str) -> list[int]:
    """Hidden layer widths separated by commas."""
    parts = text.split(",")
    if not all(re.fullmatch("[0-9]+", part) and 0 < int(part) <= MAX_WIDTH for part in parts) or len(parts) > MAX_LAYERS:
        raise ValueError(f"must be at most {MAX_LAYERS} layer widths of 1..{MAX_WIDTH} separated by commas, e.g. 64,64, got {text!r}")
    return [int(part) for part in parts]


@dataclass(frozen=True)
class Setting:
    """One setting: its flag's name, what it means, how the flag is read (`type`, `choices`;
    `convert` then turns the text into the run's value or raises ValueError saying what it must be),
    the values it accepts (`low`..`high`, `low` itself refused where `open_low`; `zero` names what
    0 means where 0 is allowed below `low`; `form` says it where no bounds do), the stage it belongs to (`group`), and its `default` (the original tool's, sb3-contrib's
    where it kept them), which a version's hyperparams.yaml may change."""

    name: str
    help: str
    group: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    convert: Callable[[str], Any] | None = None
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    zero: str | None = None
    form: str = ""
    default: Any = None

    def problem(self, value: Any) -> str | None:
        """Why `value` is refused (one line, naming the flag), or None."""
        if value is None or self.low is None:
            return None
        flag = f"--{self.name}"
        if self.zero is not None and value == 0:
            return None
        if self.type is int:
            if self.low <= value <= (self.high or math.inf):
                return None
            if self.low == 0:
                return f"{flag} must be in {self.low:g}..{self.high:.0f}, got {value}"
            if self.zero is not None:
                return f"{flag} must be 0 ({self.zero}) or a positive integer of at most {self.high:.0f}, got {value}"
            return f"{flag} must be a positive integer" + ("" if value < self.low else f" of at most {self.high:.0f}") + f", got {value}"
        fits = (
            (self.low < value if self.open_low else self.low <= value) and value <= (self.high if self.high is not None else math.inf) and math.isfinite(value)
        )
        if fits:
            return None
        if self.high is not None:
            return f"{flag} must be in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}], got {value}"
        return f"{flag} must be positive and finite, got {value}"

    def accepts(self) -> str:
        """The values accepted, for the docs' table."""
        if self.choices:
            return ", ".join(self.choices)
        if self.low is None:
            return self.form
        zero = f"0 ({self.zero}) or " if self.zero else ""
        high = f"{self.high:,.0f}" if self.type is int and self.high is not None else (f"{self.high:g}" if self.high is not None else "∞")
        if self.type is int:
            return f"{zero}{self.low:g}..{high}"
        return f"{zero}{'(' if self.open_low else '['}{self.low:g}, {high}{']' if self.high is not None else ')'}"


def _rate(name: str, help: str, group: str, default: float) -> Setting:
    return Setting(name, help, group, float, low=0, open_low=True, default=default)


#: Every setting of a run, grouped; the YAML ones take their defaults from the version's hyperparams.yaml.
SETTINGS: tuple[Setting, ...] = (
    Setting("num_steps", "training timesteps of the ppo stage, at least one rollout; a restored model keeps counting", "run", int, low=1, high=10**12, default=200_000_000),
    Setting("N", "ready task slots of the environment", "run", int, low=1, high=256, default=14),
    Setting("M", "discretization levels: a task's time in levels is ceil(M x time / the longest time)", "run", int, low=1, high=1000, default=14),
    Setting("type_tasks", "workload", "run", choices=WORKLOAD_NAMES, default="good_scaling"),
    Setting("queue_len", "online only: tasks per episode", "run", int, low=1, high=1_000_000),
    Setting("reward", "levels: minus the levels of time each step lets pass (the original's); real: minus the growth of the real-time makespan, in levels", "run", choices=REWARDS, default="levels"),
    Setting("stages", "the run's stages in order, from clone, ppo and self_imitation, each with an optional :share of the minutes left when it starts, e.g. clone,self_imitation or clone,ppo:0.5,self_imitation; default: clone if --pretrain, ppo, then self_imitation if --imitation_rounds", "run", form="stage[:share],..."),
    Setting("minutes", "wall-clock budget of the whole run, shared by its stages as --stages says; each also ends with its units (default: units alone)", "run", float, low=0, open_low=True),
    Setting("seed", "makes a run reproducible", "run", int, low=0, high=SEED_MAX),
    Setting("n_envs", "parallel environments; each runs rollout_steps // n_envs steps per rollout", "ppo", int, low=1, high=256, default=1),
    Setting("rollout_steps", "transitions per PPO rollout, shared by the environments", "ppo", int, low=1, high=10**7, default=2048),
    Setting("vec_env", "with --n_envs > 1: one subprocess per environment, all in this process (dummy: faster on few cores), or all in one array-backed BatchEnv (batched)", "ppo", choices=("subproc", "dummy", "batched"), default="subproc"),
    Setting("batch_size", "PPO minibatch size", "ppo", int, form="2..transitions of a rollout", default=64),
    Setting("n_epochs", "passes over each rollout", "ppo", int, low=1, high=100, default=10),
    Setting("learning_rate", "Adam learning rate, or lin_<rate> (the RL Zoo's notation) to fall linearly from <rate> to 0 over this run's --num_steps", "ppo", convert=learning_rate_text, form="> 0, or lin_<rate>", default="0.0003"),
    Setting("gamma", "discount factor; 1 leaves the return undiscounted, minus the makespan", "ppo", float, low=0, high=1, open_low=True, default=1.0),
    Setting("net_arch", "hidden layer widths of the policy and of the value network, e.g. 64,64", "ppo", convert=widths, form=f"up to {MAX_LAYERS} widths of 1..{MAX_WIDTH}", default="256,256"),
    Setting("ent_coef", "entropy coefficient, or comma-separated coefficients for equal phases of the run", "ppo", convert=coefficients, form="numbers >= 0, comma-separated", default="0.01"),
    Setting("pretrain", "a new model first clones this baseline's actions and values; none: no clone, whatever the preset says", "clone", choices=(*TEACHERS, "none")),
    Setting("pretrain_episodes", "teacher episodes for --pretrain", "clone", int, low=1, high=1_000_000, default=1000),
    Setting("pretrain_epochs", "passes over the teacher's steps for --pretrain", "clone", int, low=1, high=1000, default=30),
    Setting("imitation_rounds", "rounds of the self_imitation stage: each clones the agent's best of its deterministic and --imitation_samples stochastic rollouts on --imitation_episodes new episodes", "self_imitation", int, low=1, high=1000, zero="none", default=0),
    Setting("imitation_episodes", "new episodes per self-imitation round (seeds from 3,000,000, apart from evaluation's and the clone's)", "self_imitation", int, low=1, high=1_000_000, default=1000),
    Setting("imitation_samples", "stochastic rollouts per episode in self-imitation, besides the deterministic one", "self_imitation", int, low=1, high=100_000, default=64),
    Setting("imitation_epochs", "passes over each self-imitation round's best schedules", "self_imitation", int, low=1, high=1000, default=5),
    _rate("imitation_learning_rate", "Adam learning rate of self-imitation", "self_imitation", default=0.0003),
    Setting("save_freq", "checkpoint of the ppo stage every this many timesteps", "output", int, low=1, high=10**12, default=10_000_000),
    Setting("save_rounds", "checkpoint of the self_imitation stage every this many rounds", "output", int, low=1, high=1_000_000, zero="never", default=5),
    Setting("save_minutes", "also checkpoint after the rollout or round that ends this many minutes after the last (default: never)", "output", float, low=0, open_low=True),
    Setting("eval_freq", "evaluate every this many timesteps (default: every 1% of a run of 100000 steps or more)", "output", int, low=1, high=10**12, zero="never"),
    Setting("eval_episodes", "seeded episodes per evaluation", "output", int, low=1, high=10_000, default=20),
)  # fmt: skip
BY_NAME = {setting.name: setting for setting in SETTINGS}
#: Flags whose absence means something of its own (the version's queue, an unseeded run, never,
#: 1% of the run): every other setting has a default, the same for every version unless its
#: hyperparams.yaml says otherwise.
NO_DEFAULT = ("queue_len", "seed", "save_minutes", "eval_freq")
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS if s.name not in NO_DEFAULT}
#: Settings of the run itself, recorded at the top of a run's record rather than among its hyperparameters.
RUN_LEVEL = ("num_steps", "N", "M", "type_tasks", "queue_len", "reward", "stages", "minutes", "seed")
#: The largest value of each integer setting, shared by every command that has the flag.
UPPER_BOUNDS: dict[str, int] = {s.name: int(s.high) for s in SETTINGS if s.type is int and s.high is not None}


def problems(values: Iterable[tuple[str, Any]]) -> list[str]:
    """The refusals of (name, value) pairs, one line each."""
    return [line for name, value in values if (line := BY_NAME[name].problem(value)) is not None]


def recorded(values: dict[str, Any], stages: Iterable[str]) -> dict[str, Any]:
    """The hyperparameters of a run's record: every setting that is not run-level, those of a
    stage the run does not have as None."""
    kept = set(stages)
    return {
        s.name: (values.get(s.name) if s.group not in ("clone", "self_imitation") or s.group in kept else None) for s in SETTINGS if s.name not in RUN_LEVEL
    }


def markdown_table(parser: Any, defaults: dict[str, Any]) -> str:
    """The flag table of docs/commands.md: per group, each setting's flag, default (`defaults`:
    a hyperparams.yaml's), accepted values and meaning; then train.py's other flags as `parser` declares them."""
    lines = [TABLE_BEGIN, "", "| flag | default (float) | accepts | what it sets |", "|---|---|---|---|"]
    for group, title in GROUPS.items():
        lines.append(f"| **{title}** | | | |")
        for s in (s for s in SETTINGS if s.group == group):
            default = defaults.get(s.name, s.default)
            shown = "none" if default is None else f"`{default}`"
            lines.append(f"| `--{s.name}` | {shown} | {s.accepts()} | {s.help.replace('|', '/')} |")
    lines.append("| **other flags** | | | |")
    for action in parser._actions:
        name = next((o for o in action.option_strings if o.startswith("--")), None)
        if name is None or name == "--help" or name[2:] in BY_NAME:
            continue
        shown = "off" if action.nargs == 0 else ("none" if action.default is None else f"`{action.default}`")
        text = re.sub(r" \(default [^)]*\)$", "", action.help or "").replace("%%", "%").replace("|", "/")
        lines.append(f"| `{name}` | {shown} | {', '.join(action.choices) if action.choices else ''} | {text} |")
    return "\n".join([*lines, "", TABLE_END])
