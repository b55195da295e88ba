"""The five agent versions: finding each version folder's `SchedEnv` and registering it with Gymnasium.

A version folder (`one_hot/`, `float/`, ...) sits beside this package in the repository; its
`env.py` is loaded from there, so `pip install -e .` is the supported install.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym

VERSIONS = ("one_hot", "float", "entropy", "direct_reconfig", "online")
REPO_ROOT = Path(__file__).resolve().parent.parent


def check_version(version: str) -> str:
    """`version`, or a ValueError listing the five."""
    if version not in VERSIONS:
        raise ValueError(f"unknown version {version!r}; choose one of: {', '.join(VERSIONS)}")
    return version


def load_env_class(version: str) -> type:
    """The `SchedEnv` class defined in `<version>/env.py`."""
    module_name = f"migsched_version_{check_version(version)}"
    if module_name not in sys.modules:
        path = REPO_ROOT / version / "env.py"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or not path.exists():
            raise FileNotFoundError(f"{path} not found: install the repository with `pip install -e .`")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return sys.modules[module_name].SchedEnv


def make_env(version: str, env_config: dict[str, Any] | None = None, type_tasks: str = "good_scaling", **kwargs: Any) -> gym.Env:
    """A new `SchedEnv` of `version` (picklable as a factory, for subprocess vector envs)."""
    return load_env_class(version)(env_config, type_tasks, **kwargs)


def gym_id(version: str) -> str:
    """The Gymnasium id of a version, e.g. `migsched/float-v0`."""
    return f"migsched/{check_version(version)}-v0"


def register_all() -> None:
    """Register the five versions so `gymnasium.make("migsched/float-v0", env_config=...)` works."""
    for version in VERSIONS:
        if gym_id(version) not in gym.registry:
            gym.register(id=gym_id(version), entry_point=partial(make_env, version), disable_env_checker=False)
