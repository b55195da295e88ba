"""Schedulers that act through a version's environment: the baselines by name (this registry), the
trained agent (`agent.AgentPolicy`), and the CP-SAT reference (`cpsat`, not a policy)."""

from __future__ import annotations

from migsched.policies.base import Policy, RandomPolicy
from migsched.policies.far import FarPolicy
from migsched.policies.greedy import GreedyPolicy
from migsched.policies.static import StaticPolicy

#: The baselines, by the names the commands take.
BASELINE_CLASSES: dict[str, type[Policy]] = {"random": RandomPolicy, "static": StaticPolicy, "greedy": GreedyPolicy, "far": FarPolicy}
BASELINES = tuple(BASELINE_CLASSES)


def make_baseline(name: str) -> Policy:
    """A new baseline policy by name (ValueError for an unknown one)."""
    if name not in BASELINE_CLASSES:
        raise ValueError(f"unknown baseline {name!r}; choose one of: {', '.join(BASELINES)}")
    return BASELINE_CLASSES[name]()
