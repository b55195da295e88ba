"""`BatchEnv` is the scalar model, lane by lane: every golden episode and random masked rollouts
give the same masks, observations, rewards, terminations and final info as `SchedEnv`, exactly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from conftest import load_golden
from hypothesis import given, settings
from hypothesis import strategies as st
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor

from migsched import VERSIONS, a100, make_env
from migsched.batch import BatchEnv
from migsched.env import REWARDS
from migsched.workloads import WORKLOAD_NAMES, generate

FINAL_KEYS = ("makespan", "lower_bound", "makespan_ratio", "makespan_levels")


def scalar_twins(batch: BatchEnv, seed: int, options: list[dict[str, Any] | None]) -> tuple[list, np.ndarray]:
    """One scalar env per lane playing the lane's episodes, and the batch reset with `options` and `seed`.

    With `scalar_rng`, twin i is reset with lane i's options and seed + i and draws its own episodes
    afterwards; otherwise each twin loads its lane's episodes through `episode_options`."""
    config = {"N": batch.N, "M": batch.M, "reward": batch.reward_kind}
    if batch.online:
        config["queue_len"] = batch.queue_len
    envs = [make_env(batch.version, config, batch.type_tasks) for _ in range(batch.num_envs)]
    batch.seed(seed)
    obs = batch.reset(options=options)
    for i, env in enumerate(envs):
        if batch.scalar_rng:
            env_obs = env.reset(seed=seed + i, options=options[i])[0]
        else:
            env_obs = env.reset(options=batch.episode_options(i))[0]
        assert obs[i].dtype == env_obs.dtype and np.array_equal(obs[i], env_obs), f"lane {i} first observation"
    return envs, obs


def step_together(batch: BatchEnv, envs: list, actions: np.ndarray) -> tuple[list[bool], np.ndarray, list[dict[str, Any]]]:
    """One step of the batch and of each lane's scalar twin; everything must agree exactly. Returns which lanes ended,
    the batch's rewards and infos."""
    obs, rewards, dones, infos = batch.step(actions)
    ended = []
    for i, env in enumerate(envs):
        env_obs, reward, terminated, truncated, info = env.step(int(actions[i]))
        assert not truncated
        assert rewards[i] == reward, f"lane {i} reward"
        assert bool(dones[i]) == terminated, f"lane {i} termination"
        if terminated:
            assert {k: infos[i][k] for k in FINAL_KEYS} == {k: info[k] for k in FINAL_KEYS}, f"lane {i} final info"
            assert np.array_equal(infos[i]["terminal_observation"], env_obs), f"lane {i} terminal observation"
            env_obs = env.reset(options=None if batch.scalar_rng else batch.episode_options(i))[0]
        else:
            assert infos[i] == {}
        assert np.array_equal(obs[i], env_obs), f"lane {i} observation"
        ended.append(terminated)
    return ended, rewards, infos


def check_masks(batch: BatchEnv, envs: list) -> np.ndarray:
    masks = batch.action_masks()
    assert masks.shape == (batch.num_envs, batch.num_actions) and masks.dtype == bool
    for i, env in enumerate(envs):
        assert np.array_equal(masks[i], env.action_masks()), f"lane {i} mask"
    return masks


def random_actions(masks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uniformly random valid action per lane."""
    return np.argmax(rng.random(masks.shape) + masks, axis=1)


def random_options(version: str, n: int, m: int, rng: np.random.Generator) -> dict[str, Any]:
    """Reset options of a random episode: tasks with some infinite times, a partition and busy levels."""
    online = version == "online"
    count = int(rng.integers(1, 3 * n + 2)) if online else int(rng.integers(1, n + 1))
    tasks = generate(str(rng.choice(WORKLOAD_NAMES)), count, rng)
    for task in tasks:
        if rng.random() < 0.4:
            drop = rng.random(5) < 0.5
            drop[rng.integers(5)] = False
            task[drop] = math.inf
    options: dict[str, Any] = {"tasks": tasks.tolist()}
    if rng.random() < 0.8:
        partition = int(rng.integers(1, a100.NUM_PARTITIONS + 1))
        options["partition"] = partition
        if not online and rng.random() < 0.7:
            options["busy"] = rng.integers(0, m + 3, len(a100.PARTITIONS[partition])).tolist()
    return options


def run_random(version: str, reward: str, n: int, m: int, lanes: int, steps: int, seed: int, scalar_rng: bool) -> None:
    """Random masked rollouts in every lane, half of them loaded with random options, against scalar twins."""
    rng = np.random.default_rng(seed)
    config = {"N": n, "M": m, "reward": reward}
    if version == "online":
        config["queue_len"] = int(rng.integers(1, 3 * n + 2))
    batch = BatchEnv(version, config, str(rng.choice(WORKLOAD_NAMES)), lanes, scalar_rng=scalar_rng)
    options = [random_options(version, n, m, rng) if i % 2 else None for i in range(lanes)]
    envs, _ = scalar_twins(batch, seed, options)
    for _ in range(steps):
        step_together(batch, envs, random_actions(check_masks(batch, envs), rng))


@pytest.mark.parametrize("reward", REWARDS)
def test_golden_episodes_in_lanes(version: str, reward: str) -> None:
    """Every golden episode of a version, several at once in one batch, random episodes in the lanes beside them."""
    episodes = [e for e in load_golden() if version in e["versions"]]
    groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for episode in episodes:
        groups.setdefault((episode["N"], episode["M"]), []).append(episode)
    rng = np.random.default_rng(0)
    for (n, m), group in groups.items():
        batch = BatchEnv(version, {"N": n, "M": m, "reward": reward}, "mix_scaling_soft", 2 * len(group) + 1)
        options: list[dict[str, Any] | None] = [None] * batch.num_envs
        for k, episode in enumerate(group):
            options[2 * k + 1] = {"tasks": episode["tasks"]}
            if episode.get("partition") is not None:
                options[2 * k + 1].update(partition=episode["partition"], busy=episode["busy"])
        envs, _ = scalar_twins(batch, 100, options)
        longest = max(len(e["steps"]) for e in group)
        for t in range(longest):
            masks = check_masks(batch, envs)
            actions = random_actions(masks, rng)
            for k, episode in enumerate(group):
                if t < len(episode["steps"]):
                    assert np.flatnonzero(masks[2 * k + 1]).tolist() == episode["steps"][t]["valid"]
                    actions[2 * k + 1] = episode["steps"][t]["action"]
            ended, rewards, infos = step_together(batch, envs, actions)
            for k, episode in enumerate(group):
                lane, last = 2 * k + 1, len(episode["steps"]) - 1
                if t <= last:
                    assert ended[lane] == (t == last)
                    if reward == "levels":
                        assert rewards[lane] == pytest.approx(episode["steps"][t]["reward"], abs=1e-8)
                if t == last:
                    for key in ("makespan", "lower_bound", "makespan_levels"):
                        assert infos[lane][key] == pytest.approx(episode[key], abs=1e-6)


@pytest.mark.parametrize("scalar_rng", [False, True], ids=["lane_rng", "scalar_rng"])
@pytest.mark.parametrize("reward", REWARDS)
def test_random_rollouts_match_scalar(version: str, reward: str, scalar_rng: bool) -> None:
    run_random(version, reward, n=6, m=9, lanes=6, steps=200, seed=VERSIONS.index(version), scalar_rng=scalar_rng)


@settings(max_examples=12, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    reward=st.sampled_from(REWARDS),
    n=st.integers(1, 14),
    m=st.integers(1, 30),
    seed=st.integers(0, 2**31),
    scalar_rng=st.booleans(),
)
def test_random_rollouts_property(version: str, reward: str, n: int, m: int, seed: int, scalar_rng: bool) -> None:
    run_random(version, reward, n, m, lanes=4, steps=60, seed=seed, scalar_rng=scalar_rng)


def test_default_size_lanes_follow_seeded_scalar_envs() -> None:
    """N=14, M=14 with generated episodes only: lane i plays a scalar env reset with seed + i, episode after episode."""
    batch = BatchEnv("online", {"N": 14, "M": 14, "queue_len": 20}, "wide_times", 3, scalar_rng=True)
    envs, _ = scalar_twins(batch, 5, [None] * 3)
    rng = np.random.default_rng(1)
    ends = 0
    for _ in range(300):
        ends += sum(step_together(batch, envs, random_actions(check_masks(batch, envs), rng))[0])
    assert ends >= 3


def test_lane_generator_draws_the_workload() -> None:
    """Without scalar_rng, lanes draw from their own SplitMix64 generators: the episodes follow the workload
    (every task's times as `generate` makes them, uniform partitions and busy levels) and lanes differ."""
    batch = BatchEnv("float", {"N": 10, "M": 8}, "mix_scaling_soft", 400, seed=0)
    batch.reset()
    episodes = [batch.episode_options(i) for i in range(batch.num_envs)]
    first = np.array([task[0] for e in episodes for task in e["tasks"]])
    assert first.min() >= 90.0 and first.max() < 100.0 and abs(first.mean() - 95.0) < 0.2
    partitions = np.bincount([e["partition"] for e in episodes], minlength=17)[1:]
    assert partitions.min() > 8
    busy = np.concatenate([e["busy"] for e in episodes])
    assert busy.min() == 0 and busy.max() == 8 and abs(busy.mean() - 4.0) < 0.3
    times = np.array([task for e in episodes for task in e["tasks"]])
    reference = generate("mix_scaling_soft", len(times), np.random.default_rng(0))
    for size in range(1, 5):  # the mean speed-up of each size over the 1-slice time, as generate's
        assert abs((times[:, size] / times[:, 0]).mean() - (reference[:, size] / reference[:, 0]).mean()) < 0.02
    assert len({tuple(map(tuple, e["tasks"])) for e in episodes}) == len(episodes)


def test_masked_action_raises_naming_the_lane_and_changes_nothing() -> None:
    batch = BatchEnv("float", {"N": 4, "M": 5}, "mix_scaling_soft", 4, seed=3, scalar_rng=True)
    envs, obs = scalar_twins(batch, 3, [None, None, {"tasks": [[1, 1, 1, 1, 1]], "partition": 1, "busy": [0]}, None])
    masks = batch.action_masks()
    actions = random_actions(masks, np.random.default_rng(0))
    actions[2] = int(np.flatnonzero(~masks[2])[0])
    before = {name: value.copy() for name, value in vars(batch).items() if isinstance(value, np.ndarray)}
    with pytest.raises(ValueError, match="lane 2"):
        batch.step(actions)
    for name, value in before.items():
        assert np.array_equal(vars(batch)[name], value), name
    for bad in (np.full(4, -1), np.full(4, batch.num_actions), np.zeros(4, dtype=float)):
        with pytest.raises(ValueError):
            batch.step(bad)
    rng = np.random.default_rng(2)
    for _ in range(40):
        step_together(batch, envs, random_actions(check_masks(batch, envs), rng))


@pytest.mark.parametrize("scalar_rng", [False, True])
def test_same_seed_same_episodes(scalar_rng: bool) -> None:
    def play(seed: int) -> list[np.ndarray]:
        batch = BatchEnv("direct_reconfig", {"N": 5, "M": 7}, "bad_scaling", 3, seed=seed, scalar_rng=scalar_rng)
        rng = np.random.default_rng(0)
        seen = [batch.reset()]
        for _ in range(60):
            seen.append(batch.step(random_actions(batch.action_masks(), rng))[0])
        return seen

    first, again, other = play(11), play(11), play(12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], other[0])


@pytest.mark.parametrize("scalar_rng", [False, True])
def test_reset_without_seed_continues_each_lane_generator(scalar_rng: bool) -> None:
    batch = BatchEnv("float", {"N": 5, "M": 7}, "wide_times", 3, seed=4, scalar_rng=scalar_rng)
    first = batch.reset()
    second = batch.reset()
    assert not any(np.array_equal(a, b) for a, b in zip(first, second))
    batch.seed(4)
    assert np.array_equal(batch.reset(), first)


@pytest.mark.parametrize("version", VERSIONS)
def test_options_shared_by_lanes_load_each_lane_as_the_scalar_env(version: str) -> None:
    """One dict for every lane, or the same dict in several lanes (the search loads its start state so),
    is checked once and staged at once; every lane still plays exactly its scalar twin's episode."""
    online = version == "online"
    config = {"N": 4, "M": 5, **({"queue_len": 7} if online else {})}
    batch = BatchEnv(version, config, "mix_scaling_soft", 4, seed=2)
    rng = np.random.default_rng(3)
    shared = {"tasks": generate("wide_times", 7 if online else 4, rng).tolist(), "partition": 5, **({} if online else {"busy": [3, 0, 1]})}
    other = {"tasks": generate("wide_times", 6 if online else 3, rng).tolist(), "partition": 2, **({} if online else {"busy": [0, 4]})}
    for layout in ([shared] * 4, [shared, other, shared, shared]):
        envs = [make_env(version, config, "mix_scaling_soft") for _ in range(4)]
        obs = batch.reset(options=shared if layout[1] is shared else layout)
        for i, env in enumerate(envs):
            assert np.array_equal(obs[i], env.reset(options=layout[i])[0]), f"lane {i} first observation"
        for _ in range(40):
            step_together(batch, envs, random_actions(check_masks(batch, envs), rng))
    with pytest.raises(ValueError, match="lane 0: partition must be"):
        batch.reset(options={"partition": 0})


def test_reset_options_conventions_and_checks() -> None:
    batch = BatchEnv("one_hot", {"N": 3, "M": 4}, "good_scaling", 3, seed=0, scalar_rng=True)
    assert isinstance(batch, VecEnv)
    pinned = {"tasks": [[4.0, 3.0, 2.0, 1.5, math.inf]], "partition": 2, "busy": [1, 2]}
    env = make_env("one_hot", {"N": 3, "M": 4})
    expected = env.reset(options=pinned)[0]
    obs = batch.reset(options=pinned)  # one dict: every lane
    assert obs.dtype == np.int64 and obs.shape == (3, *batch.observation_space.shape)
    assert all(np.array_equal(row, expected) for row in obs)
    batch.set_options([None, pinned, None])  # SB3's convention: used by the next reset only
    obs = batch.reset()
    assert np.array_equal(obs[1], expected) and not np.array_equal(obs[0], expected)
    assert not np.array_equal(batch.reset()[1], expected)
    before = batch.action_masks()
    for options, message in (
        ([None, {"busy": [1]}, None], "lane 1: the busy option needs the partition"),
        ([None, None, {"tasks": [[1, 1, 1, 1, 1]] * 4}], "lane 2: 4 tasks given"),
        ([None, None, {"partition": 17}], "lane 2: partition must be"),
        ([None, None], "one dict per lane"),
    ):
        with pytest.raises(ValueError, match=message):
            batch.reset(options=options)
    assert np.array_equal(batch.action_masks(), before)


def test_online_queue_longer_than_configured() -> None:
    """An online lane loaded with more tasks than queue_len: the arrays grow and the lane still matches."""
    batch = BatchEnv("online", {"N": 2, "M": 4, "queue_len": 3}, "mix_scaling_soft", 2, scalar_rng=True)
    tasks = generate("wide_times", 9, np.random.default_rng(4)).tolist()
    envs, _ = scalar_twins(batch, 8, [{"tasks": tasks}, None])
    rng = np.random.default_rng(5)
    for _ in range(80):
        step_together(batch, envs, random_actions(check_masks(batch, envs), rng))


def test_get_action_masks_matches() -> None:
    batch = BatchEnv("entropy", {"N": 4, "M": 6}, "wide_times", 5, seed=1)
    monitored = VecMonitor(batch)
    monitored.reset()
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(40):
        masks = batch.action_masks()
        assert np.array_equal(get_action_masks(batch), masks) and np.array_equal(get_action_masks(monitored), masks)
        ends += sum("episode" in info for info in monitored.step(random_actions(masks, rng))[3])
    assert ends > 0


class InfoRecorder(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.ratios: list[float] = []

    def _on_step(self) -> bool:
        self.ratios += [info["makespan_ratio"] for info in self.locals["infos"] if "makespan_ratio" in info]
        return True


def test_maskable_ppo_trains_on_batch_env() -> None:
    batch = BatchEnv("float", {"N": 3, "M": 4}, "mix_scaling_soft", 4, seed=0)
    model = MaskablePPO("MlpPolicy", batch, n_steps=32, batch_size=64, n_epochs=1, device="cpu", seed=0)
    recorder = InfoRecorder()
    model.learn(total_timesteps=2 * 32 * 4, callback=recorder)
    assert model.num_timesteps == 256
    assert recorder.ratios and all(ratio >= 1.0 for ratio in recorder.ratios)
