"""Every golden episode of the model replays exactly in every version it applies to."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_golden

from migsched import make_env

CASES = [(k, version) for k, episode in enumerate(load_golden()) for version in episode["versions"]]


@pytest.mark.parametrize(("index", "version"), CASES, ids=[f"ep{k}-{v}" for k, v in CASES])
def test_golden_episode_replays(index: int, version: str) -> None:
    episode = load_golden()[index]
    env = make_env(version, {"N": episode["N"], "M": episode["M"]})
    options = {"tasks": episode["tasks"]}
    if episode.get("partition") is not None:
        options.update(partition=episode["partition"], busy=episode["busy"])
    env.reset(options=options)
    last = len(episode["steps"]) - 1
    for n, record in enumerate(episode["steps"]):
        assert np.flatnonzero(env.action_masks()).tolist() == record["valid"], f"step {n}"
        _, reward, terminated, _, info = env.step(record["action"])
        assert reward == pytest.approx(record["reward"], abs=1e-8), f"step {n}"
        assert terminated == (n == last)
    assert info["makespan"] == pytest.approx(episode["makespan"], abs=1e-6)
    assert info["lower_bound"] == pytest.approx(episode["lower_bound"], abs=1e-6)
    assert info["makespan_levels"] == pytest.approx(episode["makespan_levels"], abs=1e-6)
    assert info["makespan_ratio"] == pytest.approx(episode["makespan"] / episode["lower_bound"], rel=1e-6)


def test_golden_covers_every_version_and_tricky_rule() -> None:
    episodes = load_golden()
    assert {v for e in episodes for v in e["versions"]} == {"one_hot", "float", "entropy", "direct_reconfig", "online"}
    assert {c for e in episodes for c in e["covers"]} >= {"inf", "relabel", "busy_reconfig", "refill"}
