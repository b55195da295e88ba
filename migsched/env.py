"""The Gymnasium environment shared by the five agent versions.

`MigSchedEnv` wires `SchedState` (the MDP) to Gymnasium: spaces, reset options, the episode's
measurement in `info`, rendering. A version's `SchedEnv` subclasses it and sets three class
attributes: how it observes, how it reconfigures, and whether its episode is a batch or a stream.

The reward is chosen by the `env_config` key "reward" (saved with a model, so it travels with it):
- "levels" (default): minus the levels of time each step lets pass (MIG_MODEL.md section 5); an
  episode's return is minus its makespan in levels.
- "real": minus the growth, divided by the level length (`state.step_seconds`), of the real-time
  makespan of the decisions so far, replayed with MIG_MODEL.md section 8's rules; an episode's
  return is minus (real makespan - initial busy tail) in levels, the tail being the latest
  initial free time. It ranks schedules as the measured `info["makespan"]` does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

import migsched.a100 as a100
from migsched.observations import FloatObservation, IntegerObservation
from migsched.replay import Schedule, lower_bound, replay
from migsched.state import SchedState
from migsched.workloads import check_workload, generate, validate_tasks

DEFAULT_QUEUE_LEN = 50
REWARDS = ("levels", "real")


class MaskedDiscrete(spaces.Discrete):
    """A `Discrete` action space whose `sample()` draws among the environment's valid actions.

    It pickles (and so is saved with a model) as a plain `Discrete`.
    """

    def __init__(self, n: int, mask_fn: Callable[[], np.ndarray]) -> None:
        super().__init__(n)
        self._mask_fn = mask_fn

    def sample(self, mask: np.ndarray | None = None, probability: np.ndarray | None = None) -> np.int64:
        """A uniform valid action of the environment's current state (or as `Discrete.sample` with a
        mask); ValueError when there is none, before the first reset or after an episode's end."""
        if mask is None and probability is None:
            mask = self._mask_fn().astype(np.int8)
            if not mask.any():
                raise ValueError("no valid action to sample: no episode is running (it has ended, or none was started); call reset()")
        return super().sample(mask=mask, probability=probability)

    def __reduce__(self) -> tuple:
        return (spaces.Discrete, (int(self.n),))

    def __deepcopy__(self, memo: dict) -> MaskedDiscrete:
        return MaskedDiscrete(int(self.n), copy.deepcopy(self._mask_fn, memo))


class MigSchedEnv(gym.Env):
    """Base of every version's `SchedEnv`; see a version's docstring for its spaces and rules.

    `env_config` takes N, M, reward ("levels" or "real", see the module docstring) and, online,
    queue_len. `reward_kind` is the chosen reward.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "human"]}
    #: "float" (Box in [0, 1]), "float_reconfig_flag" (plus the last-action flag) or "one_hot" (MultiDiscrete).
    observation_encoding: ClassVar[str] = "float"
    #: "idle": changed slices must be idle; "direct": they may be busy and the clock jumps.
    reconfiguration: ClassVar[str] = "idle"
    #: "offline": one batch of N tasks; "online": a queue refilling the N-task ready window.
    episode: ClassVar[str] = "offline"

    def __init__(self, env_config: dict[str, Any] | None = None, type_tasks: str = "good_scaling", render_mode: str | None = None) -> None:
        config = dict(env_config or {})
        self.N = _positive_int(config.pop("N", 14), "N")
        self.M = _positive_int(config.pop("M", 14), "M")
        self.queue_len = _positive_int(config.pop("queue_len", DEFAULT_QUEUE_LEN), "queue_len") if self.online else None
        self.reward_kind = config.pop("reward", "levels")
        if self.reward_kind not in REWARDS:
            raise ValueError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward_kind!r}")
        if config:
            raise ValueError(f"unknown env_config keys {sorted(config)}; expected N, M, reward" + (", queue_len" if self.online else ""))
        check_workload(type_tasks)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, not {render_mode!r}")
        self.type_tasks = type_tasks
        self.render_mode = render_mode
        self.state = SchedState(self.N, self.M, direct_reconfig=self.reconfiguration == "direct", real_time=self.reward_kind == "real")
        self.encoder = _make_encoder(self.observation_encoding, self.N, self.M)
        self.observation_space = self.encoder.space
        self.action_space = MaskedDiscrete(self.state.num_actions, self.action_masks)
        self.lower_bound = 0.0

    @property
    def online(self) -> bool:
        return self.episode == "online"

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode. Every option is checked before anything changes, so a refused reset
        leaves the environment, its random generator included, as it was."""
        tasks, partition, busy = check_reset_options(options, self.online, self.N)
        super().reset(seed=seed)
        if tasks is None:
            tasks = generate(self.type_tasks, self.queue_len if self.online else self.N, self.np_random)
        if self.online:
            partition = partition or 1
            busy = [0] * len(a100.PARTITIONS[partition])
        else:
            partition = partition or int(self.np_random.integers(1, a100.NUM_PARTITIONS + 1))
            if busy is None:
                busy = self.np_random.integers(0, self.M + 1, len(a100.PARTITIONS[partition])).tolist()
        self.state.load(tasks, partition, busy)
        self.lower_bound = lower_bound(tasks, self.initial_free)
        return self.encoder.encode(self.state), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Apply a valid action (an integer index; a masked or non-integer one raises ValueError)."""
        st = self.state
        if st.real_free is None:
            reward = st.step(action)
        else:
            before = st.real_makespan
            st.step(action)
            reward = (before - st.real_makespan) / st.step_seconds
        terminated = self.state.done
        info = self._final_info() if terminated else {}
        return self.encoder.encode(self.state), reward, terminated, False, info

    def action_masks(self) -> np.ndarray:
        """Boolean mask of the valid actions (the sb3-contrib convention)."""
        return self.state.action_masks().copy()

    @property
    def initial_free(self) -> list[float]:
        """Per slice, the real second at which the initial state frees it."""
        return [level * self.state.step_seconds for level in self.state.initial_rem]

    @property
    def decision_log(self):
        """The episode's decisions so far (wait / reconfigure to q / run task k on instance j)."""
        return self.state.log

    def schedule(self) -> Schedule:
        """The episode so far replayed on real time."""
        st = self.state
        return replay(st.tasks, st.log, st.initial_partition, self.initial_free)

    def _final_info(self) -> dict[str, float]:
        st = self.state
        makespan = replay(st.tasks, st.log, st.initial_partition, self.initial_free, record=False).makespan
        return {
            "makespan": makespan,
            "lower_bound": self.lower_bound,
            "makespan_ratio": makespan / self.lower_bound,
            "makespan_levels": self.state.time,
        }

    def render(self) -> str | None:
        st = self.state
        lines = [f"partition {st.partition}: instances {a100.describe(st.partition)}"]
        lines.append("remaining levels per slice: " + " ".join(f"{r:.2f}" for r in st.rem))
        lines.append(f"ready tasks: {st.ready_total}, queued: {len(st.tasks) - st.next_task}")
        for i, (key, queue) in enumerate(zip(st.keys, st.queues)):
            levels = " ".join(f"{size}g:{lv if lv else 'inf'}" for size, lv in zip(a100.SIZES, key))
            lines.append(f"  slot {i}: {len(queue)} x [{levels}]")
        text = "\n".join(lines)
        if self.render_mode == "human":
            print(text)
            return None
        return text


def check_reset_options(options: Any, online: bool, n_slots: int) -> tuple[np.ndarray | None, int | None, list[int] | None]:
    """`reset`'s options checked (MIG_MODEL.md section 6): the given tasks, partition and busy
    levels, each None where not given; a bad option raises ValueError."""
    if options is not None and not isinstance(options, Mapping):
        raise ValueError(f"reset options must be a dict, got {type(options).__name__}")
    options = dict(options or {})
    allowed = {"tasks", "partition"} if online else {"tasks", "partition", "busy"}
    if set(options) - allowed:
        raise ValueError(f"unknown reset options {sorted(set(options) - allowed)}; this version takes {sorted(allowed)}")
    if "busy" in options and "partition" not in options:
        raise ValueError("the busy option needs the partition option too (one level per instance of it)")
    tasks = validate_tasks(options["tasks"], max_tasks=None if online else n_slots) if "tasks" in options else None
    partition = _check_partition(options.get("partition"))
    busy = _check_busy(options["busy"], len(a100.PARTITIONS[partition])) if "busy" in options else None
    return tasks, partition, busy


def _make_encoder(name: str, n_slots: int, levels: int) -> FloatObservation | IntegerObservation:
    if name == "one_hot":
        return IntegerObservation(n_slots, levels)
    if name in ("float", "float_reconfig_flag"):
        return FloatObservation(n_slots, levels, reconfig_flag=name == "float_reconfig_flag")
    raise ValueError(f"unknown observation encoding {name!r}")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_partition(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= a100.NUM_PARTITIONS:
        raise ValueError(f"partition must be an integer in 1..{a100.NUM_PARTITIONS}, got {value!r}")
    return int(value)


def _check_busy(value: Any, n_instances: int) -> list[int]:
    try:
        busy = list(value)
    except TypeError:
        raise ValueError(f"busy must be a list of {n_instances} integer levels, got {value!r}") from None
    if len(busy) != n_instances or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 0 for b in busy):
        raise ValueError(f"busy must be a list of {n_instances} integer levels >= 0 (one per instance), got {value!r}")
    return [int(b) for b in busy]
