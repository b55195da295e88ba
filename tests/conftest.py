"""Shared helpers for the test suite: golden episodes, random masked rollouts."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from migsched import VERSIONS, make_env

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent


def benchmark_module(name: str) -> ModuleType:
    """benchmarks/<name>.py imported as a module, for tests that call its functions in-process."""
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def version_copy(version: str, parent: Path) -> Path:
    """A copy of a version folder's scripts under `parent`: its train.py writes its models there,
    so tests never touch the repository's own trained_models/ nor each other's."""
    folder = parent / version
    folder.mkdir(parents=True, exist_ok=True)
    for script in (ROOT / version).glob("*.py"):
        shutil.copy(script, folder)
    return folder


def script_env() -> dict[str, str]:
    """The environment of a script a test runs: one torch thread (tests run scripts side by side
    on few cores, where more threads only spin against each other) and unbuffered output."""
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def load_golden() -> list[dict[str, Any]]:
    """The golden episodes of shared/examples, with "inf" turned into math.inf."""
    episodes = json.loads((DATA / "golden_episodes.json").read_text())
    for episode in episodes:
        episode["tasks"] = [[math.inf if t == "inf" else float(t) for t in task] for task in episode["tasks"]]
    return episodes


def rollout(env, rng: np.random.Generator, **reset_kwargs: Any) -> dict[str, Any]:
    """Play one episode with uniformly random valid actions, checking the per-step invariants."""
    obs, _ = env.reset(**reset_kwargs)
    assert env.observation_space.contains(obs)
    total, steps, actions = 0.0, 0, []
    while True:
        mask = env.action_masks()
        assert mask.any(), "empty mask before the end of the episode"
        action = int(rng.choice(np.flatnonzero(mask)))
        obs, reward, terminated, truncated, info = env.step(action)
        assert env.observation_space.contains(obs)
        assert not truncated
        assert reward <= 0.0
        check_instances_equal(env)
        actions.append(action)
        total += reward
        steps += 1
        if terminated:
            return {"return": total, "info": info, "steps": steps, "actions": actions}
        assert steps < 10_000


def check_instances_equal(env) -> None:
    """Every instance's slices hold the same remaining time, and none is negative."""
    from migsched import a100

    state = env.unwrapped.state
    assert all(r >= 0.0 for r in state.rem)
    for inst in a100.INSTANCES[state.partition]:
        assert len({state.rem[s] for s in inst.slices}) == 1


@pytest.fixture(params=VERSIONS)
def version(request) -> str:
    return request.param


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--only_version`: what `pytest` in a version folder passes (its pytest.ini)."""
    parser.addoption("--only_version", choices=VERSIONS, help="deselect the test cases parametrized with another version")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With `--only_version`, deselect the test cases of the other versions."""
    only = config.getoption("--only_version")
    if only is None:
        return
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        other = params is not None and params.params.get("version", only) != only
        (drop if other else keep).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def small_env(version: str, n: int = 4, m: int = 5, type_tasks: str = "mix_scaling_soft", **config: Any):
    """A version's environment with a small N and M (online: a short queue)."""
    env_config = {"N": n, "M": m, **config}
    if version == "online":
        env_config.setdefault("queue_len", 2 * n + 1)
    return make_env(version, env_config, type_tasks)
