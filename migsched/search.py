"""Search with a trained agent: the best of many rollouts of its policy from one start state.

`search(model, env, samples=K, time_limit=seconds)` plays the agent's deterministic episode,
then stochastic rollouts of its policy in the lanes of a `BatchEnv` stepped together (one
batched forward pass of the policy network per step), and keeps the schedule with the smallest real
makespan. It is anytime: with a time limit it keeps sampling until the limit and returns the
best so far. Offline versions only: online, a rollout over the whole queue would see tasks
before they arrive.

`search_episodes` searches many episodes at once (self-imitation's teacher), and
`deterministic_episodes` plays the agent's deterministic episodes of many seeds together
(evaluation): both step the episodes in the lanes of one `BatchEnv`.
"""

from __future__ import annotations

import functools
import gc
import math
import pickle
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from gymnasium import spaces

import migsched.a100 as a100
from migsched.env import MigSchedEnv
from migsched.policies.agent import AgentPolicy, deterministic_steps
from migsched.policies.base import EpisodeResult, max_episode_steps
from migsched.versions import VERSIONS, load_env_class

if TYPE_CHECKING:
    from migsched.batch import BatchEnv

DEFAULT_BATCH = (
    256  # measured on 14-task episodes, one thread, lanes of a BatchEnv: 256 gives 1-10% more rollouts/s than 128 at 0.1 s and 7% more at 1 s (docs/search.md)
)
EPISODE_LANES = 1024
"""Lanes of one `BatchEnv` in `search_episodes`: the episodes whose rollouts are played together."""
DEFAULT_TEMPERATURE = 3.0
"""Sampling temperature of the stochastic rollouts: trained with a decaying entropy bonus, the
policies are too sure of themselves, and hotter sampling finds shorter schedules (docs/search.md)."""


@dataclass(frozen=True)
class SearchResult:
    """What a search found.

    `best` is the schedule with the smallest real makespan among the deterministic rollout and
    the stochastic ones (the deterministic one on ties); `deterministic` is the agent's own
    episode. `makespans` holds the real makespan of every stochastic rollout that finished, in
    rollout order; `dropped` counts those stopped at the step cap (a cycling policy), which
    produced no schedule. `rollouts` = len(makespans) + dropped. `seconds` is the search's
    wall-clock time, the deterministic rollout and the final replay into `env` included.
    `batches` counts the batches begun; `actions` are the best episode's actions, which replay it
    from the start state.
    """

    best: EpisodeResult
    deterministic: EpisodeResult
    makespans: tuple[float, ...]
    dropped: int
    batches: int
    seconds: float
    actions: tuple[int, ...]

    @property
    def rollouts(self) -> int:
        """Stochastic rollouts played to their end or to the step cap."""
        return len(self.makespans) + self.dropped


def search(
    model: Any,
    env: MigSchedEnv,
    *,
    samples: int | None = None,
    time_limit: float | None = None,
    seed: int = 0,
    reset_seed: int | None = None,
    options: dict[str, Any] | None = None,
    batch: int = DEFAULT_BATCH,
    temperature: float = DEFAULT_TEMPERATURE,
    hindsight: bool = False,
) -> SearchResult:
    """The best schedule of the agent's deterministic rollout and its stochastic rollouts.

    The episode is `env.reset(seed=reset_seed, options=options)`. The deterministic rollout is
    `policies.agent.AgentPolicy`'s episode (argmax of the masked policy; after 20 steps per task +
    100 it samples, torch seeded with `reset_seed`, as evaluation does). Then stochastic rollouts
    from the same start state, `batch` lanes of one `BatchEnv` at a time: per step one forward
    pass of the policy network over the unfinished lanes, each lane's action drawn from
    softmax(masked logits / `temperature`) with a uniform of a numpy generator seeded from
    (`seed`, batch number). A lane still running after 20 steps per task + 100 is dropped.

    `samples=K` stops after exactly K stochastic rollouts (the last batch smaller);
    `time_limit` (seconds) stops when the limit is reached, cutting the running batch short and
    discarding its unfinished lanes; with both, whichever comes first. The deterministic rollout
    always completes first, so a limit shorter than it is exceeded by it. Near the limit a batch
    shrinks to the rollouts that can still finish. With `samples` alone, the same arguments give
    the same rollouts in the same order, hence the same schedule; with a time limit, how many
    rollouts fit, and so the batches, depend on the machine's speed.

    Garbage collection is paused during the search: a full collection in a large process takes
    tenths of a second, which would overrun short limits. The first search in a process first
    loads the batched environment's compiled code (about 0.2 s), before its clock starts.

    `hindsight=True` allows an online episode: its rollouts see the whole queue, which only a
    trainer may (self-imitation's teacher, `pretrain.imitation_demonstrations`), never a scheduler.

    The result is never worse than the deterministic rollout. Afterwards `env` holds the best
    episode played to its end (as after `run_episode`): `env.schedule()`, `env.decision_log`
    and `env.state.partition` describe the best schedule.
    """
    if env.online and not hindsight:
        raise ValueError("search is for the offline versions: online, a rollout over the whole queue would see tasks before they arrive")
    if samples is None and time_limit is None:
        raise ValueError("give samples, time_limit or both")
    if samples is not None and samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds, got {time_limit}")
    if batch < 1 or not temperature > 0:
        raise ValueError(f"batch must be >= 1 and temperature > 0, got {batch} and {temperature}")
    _warm_up()
    began = time.perf_counter()
    deadline = began + time_limit if time_limit is not None else math.inf
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _search(model, env, samples, time_limit, seed, reset_seed, options, batch, temperature, began, deadline)
    finally:
        if collecting:
            gc.enable()


def _search(
    model: Any,
    env: MigSchedEnv,
    samples: int | None,
    time_limit: float | None,
    seed: int,
    reset_seed: int | None,
    options: dict[str, Any] | None,
    batch: int,
    temperature: float,
    began: float,
    deadline: float,
) -> SearchResult:
    """`search` after its arguments are checked, with garbage collection paused."""
    env.reset(seed=reset_seed, options=options)
    base = env.unwrapped
    start = start_options(base)
    cap = deterministic_steps(len(base.state.tasks))
    net = _PolicyNet(model)
    lanes = _lanes(_version(base), tuple(_env_config(base).items()), base.type_tasks, int(max(1, min(batch, samples if samples is not None else batch))))

    det_began = time.perf_counter()
    det_actions, det_result = _deterministic_rollout(pickle.loads(pickle.dumps(base)), model, net, reset_seed, cap)
    rollout_seconds = time.perf_counter() - det_began  # estimated cost of one rollout, refined by each batch
    best_makespan, best_actions = det_result.makespan, det_actions
    makespans: list[float] = []
    dropped = batches = 0
    total = samples if samples is not None else math.inf
    while len(makespans) + dropped < total and time.perf_counter() < deadline:
        size = int(min(batch, total - len(makespans) - dropped))
        if time_limit is not None:  # near the limit, a smaller batch that can still finish
            size = max(1, min(size, int((deadline - time.perf_counter()) / rollout_seconds)))
        batch_began = time.perf_counter()
        outcome = _run_batch(lanes, start, net, np.random.default_rng([seed, batches]), size, cap, float(temperature), deadline)
        rollout_seconds = (time.perf_counter() - batch_began) / size
        batches += 1
        for finished_makespan, actions in outcome.finished:
            makespans.append(finished_makespan)
            if finished_makespan < best_makespan:
                best_makespan, best_actions = finished_makespan, actions
        dropped += outcome.dropped
        if outcome.interrupted:
            break

    best = _replay_into(env, best_actions)
    if best.makespan != best_makespan:
        raise RuntimeError(f"replaying the best rollout gave makespan {best.makespan}, not {best_makespan}")
    return SearchResult(best, det_result, tuple(makespans), dropped, batches, time.perf_counter() - began, tuple(best_actions))


def start_options(env: MigSchedEnv) -> dict[str, Any]:
    """The reset options that load `env`'s current episode from its start: its tasks, initial
    partition and (offline) the busy level each instance of that partition started with."""
    st = env.state
    options: dict[str, Any] = {"tasks": st.tasks, "partition": st.initial_partition}
    if not env.online:
        options["busy"] = [int(st.initial_rem[instance.start]) for instance in a100.INSTANCES[st.initial_partition]]
    return options


def _version(env: MigSchedEnv) -> str:
    """The version whose `SchedEnv` `env` is."""
    for version in VERSIONS:
        if type(env) is load_env_class(version):
            return version
    raise ValueError(f"search needs an environment of one of the versions ({', '.join(VERSIONS)}), got {type(env).__name__}")


def _env_config(env: MigSchedEnv) -> dict[str, Any]:
    """The `env_config` that builds an environment like `env`."""
    config: dict[str, Any] = {"N": env.N, "M": env.M, "reward": env.reward_kind}
    if env.online:
        config["queue_len"] = env.queue_len
    return config


@functools.lru_cache(maxsize=4)
def _lanes(version: str, config: tuple[tuple[str, Any], ...], type_tasks: str, size: int) -> BatchEnv:
    """A `BatchEnv` of `size` lanes, kept for the next search of the same kind: building and
    seeding a new one costs 0.6 ms more (64 lanes), 3% of a self-imitation episode's search.
    Reusing it changes no result: every batch reloads its lanes with the start state."""
    from migsched.batch import BatchEnv

    return BatchEnv(version, dict(config), type_tasks, size, seed=0)


@functools.cache
def _warm_up() -> None:
    """Run once every compiled loop the search uses (the same for every version), so that numba's
    loading of their compiled code (tenths of a second, once per process) never falls in a search."""
    from migsched.batch import BatchEnv
    from migsched.sampling import sample_lanes

    lanes = BatchEnv("float", {"N": 2, "M": 2}, "wide_times", 1, seed=0)
    lanes.reset()
    masks = lanes.action_masks()
    actions = np.zeros(1, np.int64)
    sample_lanes(np.zeros(masks.shape, np.float32), masks, np.zeros(1, np.int64), 1.0, np.zeros(1), actions)
    lanes.step(actions)


class _PolicyNet:
    """The policy network's action logits for a stack of observations, computed by the policy's own
    actor layers in inference mode without SB3's generic per-call preprocessing: the same tensors
    through the same layers, so the same floats as `policy.get_distribution` (tests/test_search.py).

    MlpPolicy's flatten features extractor is assumed (the one migsched builds); a MultiDiscrete
    observation is one-hot encoded as SB3 encodes it, one block of `nvec[i]` columns per entry."""

    def __init__(self, model: Any) -> None:
        import torch
        from stable_baselines3.common.torch_layers import FlattenExtractor

        self.torch = torch
        policy = model.policy
        if not isinstance(policy.pi_features_extractor, FlattenExtractor):
            raise ValueError(f"search needs MlpPolicy's flatten features extractor, got {type(policy.pi_features_extractor).__name__}")
        policy.set_training_mode(False)
        self.device = policy.device  # a model training on a GPU is evaluated and imitated there
        # the actor's layers in order, their `forward` called directly: the module-call machinery (hooks) costs more than a small layer
        self.layers = [layer.forward for layer in (*policy.mlp_extractor.policy_net, policy.action_net)]
        space = policy.observation_space
        self.one_hot: tuple[np.ndarray, int] | None = None
        if isinstance(space, spaces.MultiDiscrete):
            nvec = space.nvec.astype(np.int64)
            self.one_hot = np.concatenate([[0], np.cumsum(nvec)[:-1]]), int(nvec.sum())

    def forward(self, obs: np.ndarray) -> np.ndarray:
        """The unmasked float32 logits of a stack of observations, one row each."""
        if self.one_hot is None:
            features = np.asarray(obs, np.float32)
        else:
            offsets, width = self.one_hot
            features = np.zeros((obs.shape[0], width), np.float32)
            features[np.arange(obs.shape[0])[:, None], obs + offsets] = 1.0
        with self.torch.inference_mode():
            x = self.torch.from_numpy(features).to(self.device)
            for layer in self.layers:
                x = layer(x)
            return x.cpu().numpy()

    def logits(self, obs: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The logits as float64, masked actions at -inf."""
        logits = self.forward(obs).astype(np.float64)
        logits[~masks] = -np.inf
        return logits


@dataclass
class _BatchOutcome:
    """The rollouts of one batch that finished (makespan, actions, in lane order), those dropped at
    the step cap, and whether the deadline cut the batch short (its unfinished lanes discarded)."""

    finished: list[tuple[float, list[int]]]
    dropped: int
    interrupted: bool


def _run_batch(
    lanes: BatchEnv, start: dict[str, Any], net: _PolicyNet, rng: np.random.Generator, size: int, cap: int, temperature: float, deadline: float
) -> _BatchOutcome:
    """Play `size` stochastic rollouts from the start state, in the first `size` lanes of the
    `BatchEnv` `lanes` (all of them loaded with `start`), stepped together. A lane whose rollout
    ends is recorded and from then on given its first valid action (its result is ignored)."""
    return _run_groups(lanes, start, net, [rng], [size], cap, temperature, deadline)[0]


def _run_groups(
    lanes: BatchEnv,
    starts: dict[str, Any] | Sequence[dict[str, Any]],
    net: _PolicyNet,
    rngs: Sequence[np.random.Generator],
    sizes: Sequence[int],
    cap: int,
    temperature: float,
    deadline: float,
) -> list[_BatchOutcome]:
    """Stochastic rollouts of several groups in one `BatchEnv`: group g holds the next `sizes[g]`
    lanes, loaded with its start state (`starts`: one dict per lane, or one for all), and draws its
    lanes' uniforms from `rngs[g]`, for its running lanes in lane order, as `_run_batch` draws them
    for one group alone. One forward pass per step over every running lane; one outcome per group."""
    from migsched.sampling import sample_lanes

    obs = lanes.reset(options=starts)
    masks = lanes.action_masks()
    played = np.zeros((lanes.num_envs, cap), np.int64)
    group_of = np.repeat(np.arange(len(sizes)), sizes)
    active = np.zeros(lanes.num_envs, bool)
    active[: group_of.size] = True
    actions = np.zeros(lanes.num_envs, np.int64)
    makespans: dict[int, tuple[float, int]] = {}  # per finished lane, its makespan and number of steps

    def outcomes(interrupted: bool) -> list[_BatchOutcome]:
        found: list[_BatchOutcome] = [_BatchOutcome([], 0 if interrupted else int(size), interrupted) for size in sizes]
        for lane in sorted(makespans):
            outcome = found[group_of[lane]]
            outcome.finished.append((makespans[lane][0], played[lane, : makespans[lane][1]].tolist()))
            if not interrupted:
                outcome.dropped -= 1
        return found

    recent: deque[float] = deque(maxlen=8)  # the last steps' durations: a step that would end past the deadline is not begun
    for step in range(cap):
        step_began = time.perf_counter()
        if step_began + min(recent, default=0.0) >= deadline:  # the fastest, so steps slowed by a busy machine do not stop the search early
            return outcomes(True)
        running = np.flatnonzero(active)
        if len(rngs) == 1:
            uniforms = rngs[0].random(running.size)
        else:
            counts = np.bincount(group_of[running], minlength=len(rngs))
            uniforms = np.concatenate([rng.random(count) for rng, count in zip(rngs, counts.tolist())])
        sample_lanes(net.forward(obs[running]), masks, running, temperature, uniforms, actions)
        played[running, step] = actions[running]
        obs, _, dones, infos = lanes.step(actions)
        masks = lanes.action_masks()
        for lane in np.flatnonzero(dones & active).tolist():
            makespans[lane] = infos[lane]["makespan"], step + 1
            active[lane] = False
        recent.append(time.perf_counter() - step_began)
        if not active.any():
            break
    return outcomes(False)


def _argmax_lanes(lanes: BatchEnv, starts: Sequence[dict[str, Any]], net: _PolicyNet, cap: int) -> list[tuple[list[int], float] | None]:
    """The deterministic episode of each start state (lane k loaded with `starts[k]`), played
    together: every step the argmax of each running lane's masked logits, as
    `_deterministic_rollout` plays it. Per start its actions and makespan, or None where the
    episode still runs after `cap` steps (there `AgentPolicy` goes on sampling: the caller plays
    it on the scalar environment)."""
    obs = lanes.reset(options=list(starts))
    masks = lanes.action_masks()
    played = np.zeros((lanes.num_envs, cap), np.int64)
    active = np.ones(lanes.num_envs, bool)
    found: list[tuple[list[int], float] | None] = [None] * lanes.num_envs
    for step in range(cap):
        running = np.flatnonzero(active)
        actions = masks.argmax(axis=1)  # lanes that finished: their first valid action
        logits = net.forward(obs[running])
        logits[~masks[running]] = -np.inf
        actions[running] = logits.argmax(axis=1)
        played[running, step] = actions[running]
        obs, _, dones, infos = lanes.step(actions)
        masks = lanes.action_masks()
        for lane in np.flatnonzero(dones & active).tolist():
            found[lane] = played[lane, : step + 1].tolist(), infos[lane]["makespan"]
            active[lane] = False
        if not active.any():
            break
    return found


@dataclass(frozen=True)
class EpisodeSearch:
    """What `search_episodes` found on one episode: the makespan and lower bound of the agent's
    deterministic rollout and of the best schedule, and the best schedule's actions from the start."""

    deterministic_makespan: float
    best_makespan: float
    lower_bound: float
    actions: tuple[int, ...]


def search_episodes(
    model: Any,
    env: MigSchedEnv,
    reset_seeds: Sequence[int],
    samples: int,
    seeds: Sequence[int],
    temperature: float = DEFAULT_TEMPERATURE,
    lanes: int = EPISODE_LANES,
    hindsight: bool = False,
) -> list[EpisodeSearch]:
    """`search(model, env, samples=samples, seed=seeds[k], reset_seed=reset_seeds[k],
    batch=samples, temperature=temperature)` on every episode k, in groups of as many episodes as
    `lanes` hold at `samples` lanes each (`lanes` episodes when `samples` is 0): a group's
    deterministic rollouts in one `BatchEnv`, then its stochastic rollouts in another, every
    episode's uniforms drawn from its own generator as its own search draws them. The same
    rollouts as the searches one by one, up to the rounding of a larger forward pass. `env` is
    reset (and stepped, for a rollout at the cap) along the way: reset it before using it."""
    if env.online and not hindsight:
        raise ValueError("search is for the offline versions: online, a rollout over the whole queue would see tasks before they arrive")
    if samples < 0 or lanes < 1 or len(seeds) != len(reset_seeds):
        raise ValueError(
            f"samples must be >= 0, lanes >= 1 and one seed per episode, got {samples}, {lanes} and {len(seeds)} seeds for {len(reset_seeds)} episodes"
        )
    _warm_up()
    base = env.unwrapped
    net = _PolicyNet(model)
    found: list[EpisodeSearch] = []
    per_batch = max(1, lanes // max(1, samples))
    collecting = gc.isenabled()
    gc.disable()
    try:
        for first in range(0, len(reset_seeds), per_batch):
            batch_seeds = list(reset_seeds[first : first + per_batch])
            starts, lower_bounds = [], []
            for reset_seed in batch_seeds:
                env.reset(seed=reset_seed)
                starts.append(start_options(base))
                lower_bounds.append(base.lower_bound)
            cap = deterministic_steps(len(base.state.tasks))
            kind = (_version(base), tuple(_env_config(base).items()), base.type_tasks)
            deterministic = _argmax_lanes(_lanes(*kind, len(starts)), starts, net, cap)
            for k, played in enumerate(deterministic):
                if played is None:  # cycling at the cap: AgentPolicy's sampling, on the scalar env
                    env.reset(seed=batch_seeds[k])
                    actions, result = _deterministic_rollout(base, model, net, batch_seeds[k], cap)
                    deterministic[k] = actions, result.makespan
            best = list(deterministic)
            if samples:
                options = [start for start in starts for _ in range(samples)]
                rngs = [np.random.default_rng([seed, 0]) for seed in seeds[first : first + per_batch]]
                outcomes = _run_groups(_lanes(*kind, len(options)), options, net, rngs, [samples] * len(starts), cap, float(temperature), math.inf)
                for k, outcome in enumerate(outcomes):
                    for makespan, actions in outcome.finished:
                        if makespan < best[k][1]:
                            best[k] = actions, makespan
            for k, (actions, makespan) in enumerate(best):
                found.append(EpisodeSearch(deterministic[k][1], makespan, lower_bounds[k], tuple(actions)))
    finally:
        if collecting:
            gc.enable()
    return found


def deterministic_episodes(model: Any, env: MigSchedEnv, reset_seeds: Sequence[int], lanes: int = EPISODE_LANES) -> list[EpisodeResult]:
    """The agent's episode of each seed as `run_episode(env, AgentPolicy(model), seed=s)` plays
    it, the deterministic rollouts of up to `lanes` episodes played together in a `BatchEnv`; each
    is then replayed on `env` for its schedule and decision log (online too: these rollouts see
    only what the agent sees). `env` ends at the last episode's end."""
    results = []
    for reset_seed, found in zip(reset_seeds, search_episodes(model, env, reset_seeds, 0, reset_seeds, lanes=lanes, hindsight=True)):
        env.reset(seed=reset_seed)
        result = _replay_into(env, list(found.actions))
        if result.makespan != found.best_makespan:
            raise RuntimeError(f"replaying episode {reset_seed} gave makespan {result.makespan}, not {found.best_makespan}")
        results.append(result)
    return results


def _deterministic_rollout(lane: MigSchedEnv, model: Any, net: _PolicyNet, reset_seed: int | None, cap: int) -> tuple[list[int], EpisodeResult]:
    """`AgentPolicy`'s episode from `lane`'s start state: argmax for `cap` steps, then AgentPolicy's seeded sampling."""
    policy = AgentPolicy(model)
    policy.reset(lane, reset_seed)
    obs = lane.encoder.encode(lane.state)
    actions: list[int] = []
    limit = max_episode_steps(len(lane.state.tasks))
    for step in range(limit):
        if step < cap:
            action = int(np.argmax(net.logits(obs[None], lane.action_masks()[None])[0]))
        else:
            policy.steps = max(policy.steps, cap)  # the steps played above count as AgentPolicy's deterministic ones
            action = policy.act(lane)
        obs, _, terminated, _, info = lane.step(action)
        actions.append(action)
        if terminated:
            return actions, EpisodeResult(info["makespan"], info["lower_bound"], info["makespan_levels"], tuple(lane.decision_log), lane.schedule())
    raise RuntimeError(f"the agent did not finish an episode within {limit} steps")


def _replay_into(env: MigSchedEnv, actions: list[int]) -> EpisodeResult:
    """Play `actions` in `env`, which is at the episode's start, to the end; the episode's result."""
    for action in actions:
        _, _, terminated, _, info = env.step(action)
    if not terminated:
        raise RuntimeError("the replayed actions did not finish the episode")
    return EpisodeResult(info["makespan"], info["lower_bound"], info["makespan_levels"], tuple(env.decision_log), env.schedule())
