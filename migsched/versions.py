"""The five agent versions: each folder's `SchedEnv`, its hyperparameters and its traits, and
their registration with Gymnasium.

A version folder (`one_hot/`, `float/`, ...) sits beside this package in the repository; its
`env.py` (the environment) and `hyperparams.yaml` (the training settings and presets) are
loaded from there, so `pip install -e .` is the supported install. `get_version(name)` gives the
`Version`: what other modules need to know about a version is an attribute of it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from functools import cache, cached_property, partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from migsched.workloads import WORKLOAD_NAMES

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


@dataclass(frozen=True)
class Version:
    """One agent version: its folder, environment class, hyperparameters and traits."""

    name: str

    @property
    def folder(self) -> Path:
        """The version's folder in this repository (its env.py, hyperparams.yaml and scripts)."""
        return REPO_ROOT / self.name

    @property
    def env_class(self) -> type:
        return load_env_class(self.name)

    @property
    def online(self) -> bool:
        """A stream of tasks through the ready window, rather than one batch of N."""
        return self.env_class.episode == "online"

    @property
    def offline(self) -> bool:
        """One batch of N tasks per episode: CP-SAT has a reference schedule and the agent may search it."""
        return not self.online

    @cached_property
    def hyperparams(self) -> dict[str, Any]:
        """`hyperparams.yaml`: `defaults` (where this version differs from migsched.settings'
        defaults) and `presets` (what each changes; a preset's `by_workload` changes more for one
        `--type_tasks`)."""
        from migsched.settings import BY_NAME, DEFAULTS  # not at import: `python -m migsched.settings` runs it

        path = self.folder / "hyperparams.yaml"
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("defaults", {}), dict) or not isinstance(data.get("presets", {}), dict):
            raise ValueError(f"{path}: expected a mapping with 'defaults' and 'presets'")
        if unknown := set(data.get("defaults", {})) - set(BY_NAME):
            raise ValueError(f"{path}: defaults of {sorted(unknown)}, which are no settings (migsched/settings.py)")
        for name, preset in data.get("presets", {}).items():
            if not isinstance(preset, dict):
                raise ValueError(f"{path}: preset {name} must map settings to values")
            by_workload = preset.get("by_workload", {})
            if not isinstance(by_workload, dict) or set(by_workload) - set(WORKLOAD_NAMES) or not all(isinstance(v, dict) for v in by_workload.values()):
                raise ValueError(f"{path}: preset {name}'s by_workload must map workloads ({', '.join(WORKLOAD_NAMES)}) to settings")
            changes = [set(preset) - {"by_workload"}, *(set(more) for more in by_workload.values())]
            unknown = set().union(*changes) - ((set(DEFAULTS) | set(data.get("defaults", {}))) - {"type_tasks"})
            if unknown:
                raise ValueError(f"{path}: preset {name} sets {sorted(unknown)}, which have no default or choose the workload")
        return data

    @property
    def defaults(self) -> dict[str, Any]:
        """Every setting's default for this version: the shared ones, then its own."""
        from migsched.settings import DEFAULTS

        return {**DEFAULTS, **self.hyperparams.get("defaults", {})}

    @property
    def presets(self) -> dict[str, dict[str, Any]]:
        """Each preset's changes to the defaults, whatever the workload."""
        return {name: {k: v for k, v in preset.items() if k != "by_workload"} for name, preset in self.hyperparams.get("presets", {}).items()}

    def workload_changes(self, preset: str) -> dict[str, dict[str, Any]]:
        """What `preset` changes further for each workload named in its `by_workload`."""
        return dict(self.hyperparams["presets"][preset].get("by_workload", {}))

    def settings(self, preset: str | None = None, type_tasks: str | None = None) -> dict[str, Any]:
        """The defaults with `preset`'s changes applied, and its changes for the workload
        (`type_tasks`, else the default one)."""
        if preset is None:
            return self.defaults
        workload = type_tasks or self.defaults["type_tasks"]
        return {**self.defaults, **self.presets[preset], **self.workload_changes(preset).get(workload, {})}


@cache
def get_version(name: str) -> Version:
    """The `Version` called `name` (ValueError for an unknown one)."""
    return Version(check_version(name))
