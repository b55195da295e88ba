"""The Gymnasium side of every version: API conformance, invariants over random play, bad input."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from conftest import rollout, small_env
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env

import migsched
from migsched import VERSIONS, make_env
from migsched.workloads import WORKLOAD_NAMES


def test_check_env_passes(version: str) -> None:
    check_env(small_env(version), warn=False)


def test_spaces_have_the_documented_shapes(version: str) -> None:
    env = small_env(version, n=5, m=6)
    assert env.action_space.n == 1 + 16 + 7 * 5
    length = 1 + 6 * 5 + 7 + (version == "online")
    if version == "one_hot":
        assert isinstance(env.observation_space, gym.spaces.MultiDiscrete)
        assert env.observation_space.nvec.tolist() == [16] + ([7] * 5 + [6]) * 5 + [7] * 7
    else:
        assert env.observation_space == gym.spaces.Box(0.0, 1.0, (length,), np.float32)


def test_action_space_samples_only_valid_actions(version: str) -> None:
    env = small_env(version)
    env.reset(seed=3)
    for _ in range(50):
        assert env.action_masks()[env.action_space.sample()]


def test_action_space_pickles_as_a_plain_discrete(version: str) -> None:
    env = small_env(version)
    space = pickle.loads(pickle.dumps(env.action_space))
    assert type(space) is gym.spaces.Discrete and space.n == env.action_space.n


@settings(max_examples=60, deadline=None)
@given(
    version=st.sampled_from(VERSIONS),
    type_tasks=st.sampled_from(WORKLOAD_NAMES),
    n=st.sampled_from([1, 2, 3, 7, 14]),
    m=st.sampled_from([1, 2, 5, 14]),
    seed=st.integers(0, 2**31 - 1),
)
def test_random_masked_rollouts_keep_the_invariants(version: str, type_tasks: str, n: int, m: int, seed: int) -> None:
    env = small_env(version, n=n, m=m, type_tasks=type_tasks)
    result = rollout(env, np.random.default_rng(seed), seed=seed)
    info = result["info"]
    assert result["return"] == pytest.approx(-info["makespan_levels"], abs=1e-9)
    assert info["makespan"] >= info["lower_bound"] - 1e-9
    assert info["makespan_ratio"] == pytest.approx(info["makespan"] / info["lower_bound"])
    # the replay never stretches time: each real interval fits in its levels
    assert info["makespan"] <= info["makespan_levels"] * env.state.step_seconds + 1e-6
    schedule = env.schedule()
    runs = [i for i in schedule.intervals if i.kind == "run"]
    expected_tasks = env.queue_len if version == "online" else n
    assert sorted(i.task for i in runs) == list(range(expected_tasks)), "every task runs exactly once"
    for a in schedule.intervals:
        for b in schedule.intervals:
            if a is not b and set(a.slices) & set(b.slices):
                assert a.end <= b.start + 1e-9 or b.end <= a.start + 1e-9, "bars on one slice never overlap"


def test_same_seed_same_episode(version: str) -> None:
    first = rollout(small_env(version), np.random.default_rng(5), seed=11)
    second = rollout(small_env(version), np.random.default_rng(5), seed=11)
    assert first == second
    other = rollout(small_env(version), np.random.default_rng(5), seed=12)
    assert other["info"] != first["info"]


def test_offline_start_state_is_random_partition_and_busy_tail() -> None:
    env = make_env("float", {"N": 3, "M": 4})
    partitions, levels = set(), set()
    for seed in range(300):
        env.reset(seed=seed)
        partitions.add(env.state.initial_partition)
        levels.update(env.state.initial_rem)
    assert partitions == set(range(1, 17))
    assert levels == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_online_starts_idle_on_partition_1_with_n_ready_of_the_queue() -> None:
    env = make_env("online", {"N": 3, "M": 4, "queue_len": 10})
    env.reset(seed=0)
    assert env.state.partition == 1 and env.state.rem == [0.0] * 7
    assert env.state.ready_total == 3 and len(env.state.tasks) == 10


def test_gymnasium_make_builds_every_version(version: str) -> None:
    env = gym.make(migsched.gym_id(version), env_config={"N": 3, "M": 3})
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert env.unwrapped.action_masks().any()
    env.close()


def test_render_shows_partition_remaining_times_and_ready_types() -> None:
    env = make_env("float", {"N": 3, "M": 10})
    env.reset(options={"tasks": [[100.0, float("inf"), 45, 35, 22]] * 2, "partition": 3, "busy": [2, 0, 1]})
    text = env.render()
    assert "partition 3: instances 4 2 1" in text
    assert "2.00 2.00 2.00 2.00 0.00 0.00 1.00" in text
    assert "2 x [1g:10 2g:inf 3g:5 4g:4 7g:3]" in text


def test_decision_log_records_each_step() -> None:
    env = make_env("direct_reconfig", {"N": 2, "M": 10})
    env.reset(options={"tasks": [[100.0] * 5], "partition": 2, "busy": [0, 0]})
    env.step(16)
    env.step(17 + 3)
    env.step(0)
    assert [tuple(d) for d in env.decision_log] == [("reconfigure", 16, -1), ("run", 0, 3), ("wait", 0, -1)]


@pytest.mark.parametrize(
    ("config", "type_tasks", "message"),
    [
        ({"N": 0, "M": 3}, "good_scaling", "N must be an integer >= 1"),
        ({"N": 3, "M": 0}, "good_scaling", "M must be an integer >= 1"),
        ({"N": 2.5, "M": 3}, "good_scaling", "N must be"),
        ({"N": 3, "M": 3, "K": 1}, "good_scaling", "unknown env_config"),
        ({"N": 3, "M": 3}, "heavy", "bad_scaling, mix_scaling_extreme, mix_scaling_soft, wide_times"),
    ],
)
def test_bad_configuration_is_a_clear_error(version: str, config: dict, type_tasks: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_env(version, config, type_tasks)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tasks": [[1, 2, 3]]}, "five"),
        ({"tasks": [[1, 2, 3, 4, 0]]}, "not positive"),
        ({"tasks": [[1] * 5] * 4}, "at most N=3"),
        ({"partition": 17}, "partition must be an integer in 1..16"),
        ({"partition": 2, "busy": [1]}, "busy must be a list of 2"),
        ({"partition": 2, "busy": [1, -1]}, "busy must be"),
        ({"busy": [1]}, "needs the partition"),
        ({"start": 1}, "unknown reset options"),
    ],
)
def test_bad_reset_options_are_clear_errors(options: dict, message: str) -> None:
    env = make_env("float", {"N": 3, "M": 3})
    with pytest.raises(ValueError, match=message):
        env.reset(options=options)


def test_online_takes_a_queue_longer_than_n_and_an_idle_initial_partition() -> None:
    env = make_env("online", {"N": 2, "M": 3})
    env.reset(options={"tasks": [[1.0] * 5] * 5})
    assert len(env.state.tasks) == 5 and env.state.partition == 1
    env.reset(options={"partition": 8})
    assert env.state.partition == 8 and env.state.rem == [0.0] * 7
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"partition": 2, "busy": [1, 1]})
    with pytest.raises(ValueError, match="queue_len must be"):
        make_env("online", {"N": 2, "M": 3, "queue_len": 0})
    with pytest.raises(ValueError, match="unknown env_config"):
        make_env("float", {"N": 2, "M": 3, "queue_len": 5})


def test_unknown_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="one_hot, float, entropy, direct_reconfig, online"):
        make_env("double", {"N": 1, "M": 1})


def test_a_deep_copy_plays_on_independently_and_identically(version: str) -> None:
    import copy

    env = small_env(version, n=6, m=7)
    env.reset(seed=2)
    rng = np.random.default_rng(2)
    for _ in range(3):
        env.step(int(rng.choice(np.flatnonzero(env.action_masks()))))
    twin = copy.deepcopy(env)
    assert isinstance(twin.action_space, type(env.action_space))
    while True:
        mask = env.action_masks()
        assert np.array_equal(mask, twin.action_masks())
        assert twin.action_masks()[twin.action_space.sample()]
        action = int(rng.choice(np.flatnonzero(mask)))
        first, second = env.step(action), twin.step(action)
        assert np.array_equal(first[0], second[0]) and first[1:] == second[1:]
        if first[2]:
            break


@pytest.mark.parametrize("time", [5e-324, 1e300])
def test_reset_refuses_a_time_that_would_break_the_discretization(version: str, time: float) -> None:
    env = small_env(version)
    with pytest.raises(ValueError, match=r"task 1 has a finite time outside \[1e-06, 1e\+15\) seconds"):
        env.reset(options={"tasks": [[2.0] * 5, [time] * 5]})


def episode_fingerprint(env) -> tuple:
    st_ = env.state
    return (st_.tasks.tolist(), st_.initial_partition, st_.initial_rem, st_.partition, st_.rem, st_.keys, list(st_.log), env.lower_bound)


@pytest.mark.parametrize(
    "options",
    [
        {"start": 1},
        {"tasks": [[1.0] * 4]},
        {"tasks": [[5e-324] * 5]},
        {"partition": 40},
        {"partition": 2, "busy": [1, 2, 3]},
        {"busy": [1]},
        {"tasks": [[1.0] * 5], "partition": 3, "busy": [1, -1, 0]},
    ],
)
def test_a_refused_reset_changes_nothing_not_even_the_random_generator(version: str, options: dict) -> None:
    env, twin = small_env(version), small_env(version)
    env.reset(seed=1)
    twin.reset(seed=1)
    env.step(int(np.flatnonzero(env.action_masks())[0]))
    twin.step(int(np.flatnonzero(twin.action_masks())[0]))
    before = episode_fingerprint(env)
    with pytest.raises(ValueError):
        env.reset(seed=5, options=options)
    assert episode_fingerprint(env) == before
    env.reset()
    twin.reset()
    assert episode_fingerprint(env) == episode_fingerprint(twin)


def test_step_takes_integer_actions_only() -> None:
    env = make_env("float", {"N": 2, "M": 10})
    options = {"tasks": [[100.0] * 5], "partition": 16, "busy": [0] * 7}
    env.reset(options=options)
    assert env.action_masks()[17] and env.action_masks()[1] and env.action_masks()[2]
    for action in [2.7, 17.0, True, np.float64(17.0), np.array([17.5]), np.array(True), np.array([17, 18]), "17", None]:
        with pytest.raises(ValueError, match="an action must be an integer index"):
            env.step(action)
        assert env.decision_log == []
    for action in [17, np.int64(17), np.int32(17), np.uint8(17), np.array(17), np.array([17])]:
        env.reset(options=options)
        env.step(action)
        assert [tuple(d) for d in env.decision_log] == [("run", 0, 0)]


def test_stepping_without_an_episode_says_to_reset(version: str) -> None:
    env = small_env(version)
    with pytest.raises(ValueError, match="no episode is running"):
        env.step(0)
    rollout(env, np.random.default_rng(0), seed=0)
    with pytest.raises(ValueError, match="no episode is running"):
        env.step(0)


def test_sampling_the_action_space_without_an_episode_says_to_reset(version: str) -> None:
    env = small_env(version)
    with pytest.raises(ValueError, match="no episode is running"):
        env.action_space.sample()
    rollout(env, np.random.default_rng(0), seed=0)
    with pytest.raises(ValueError, match="no episode is running"):
        env.action_space.sample()
    env.reset(seed=0)
    assert env.action_masks()[env.action_space.sample()]


def test_stable_baselines3_check_env_passes_on_fresh_full_size_envs(version: str) -> None:
    for seed in range(20):
        env = make_env(version, {"N": 14, "M": 14}, "good_scaling")
        env.reset(seed=seed)
        env.action_space.seed(seed)
        check_env(env, warn=False)


def step_determinism_with_a_valid_action(env: gym.Env, seed: int = 123) -> None:
    """Gymnasium's step-determinism check, with the action drawn in the state it is stepped in.
    Gymnasium's own draws it before `reset(seed=123)`, in the previous episode: in a masked
    environment that action may be invalid in the new episode, and MIG_MODEL.md section 4 says a
    masked action raises. Everything else it checks is checked the same way here."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    action = env.action_space.sample()
    first = env.step(action)
    first_obs = first[0].copy()
    env.reset(seed=seed)
    second = env.step(action)
    assert np.array_equal(first_obs, second[0]) and first[1:4] == second[1:4]


def test_gymnasium_check_env_passes_with_valid_actions_on_fresh_full_size_envs(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from gymnasium.utils import env_checker

    monkeypatch.setattr(env_checker, "check_step_determinism", step_determinism_with_a_valid_action)
    for seed in range(20):
        env = make_env(version, {"N": 14, "M": 14}, "good_scaling")
        env.reset(seed=seed)
        env.action_space.seed(seed)
        env_checker.check_env(env, skip_render_check=True)


def test_an_action_drawn_before_a_reset_can_be_masked_after_it() -> None:
    """docs/model.md: Gymnasium's checker draws its action before `reset(seed=123)` and steps it
    after; online, a wait drawn while an instance was busy is masked once the GPU is idle again,
    and a masked action raises (MIG_MODEL.md section 4)."""
    env = make_env("online", {"N": 14, "M": 14}, "wide_times")
    env.reset(seed=0)
    while not env.action_masks()[0]:
        env.step(int(np.flatnonzero(env.action_masks())[-1]))
    drawn = 0  # valid now: an instance is busy
    env.reset(seed=123)
    with pytest.raises(ValueError, match=r"action 0 is masked in this state"):
        env.step(drawn)
