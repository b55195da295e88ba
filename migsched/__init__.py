"""Shared core of the MIG scheduling agents: A100 model, workloads, MDP, replay and training harness.

import migsched
result = migsched.schedule("float/trained_models/my_agent.pt", "tests/data/rodinia_a30.txt")
print(result.makespan, result.to_dict()["tasks"][0])
"""

from __future__ import annotations

from typing import Any

from migsched.versions import VERSIONS, gym_id, load_env_class, make_env, register_all

register_all()


def schedule(model: Any, tasks: Any, **options: Any) -> Any:
    """Schedule a task list (a task file's path, or five times in seconds per task) with a trained
    agent (a model file of any version, or a loaded model) from an idle GPU; see
    `migsched.scheduling.schedule` for the options (partition, search). Returns a `ScheduleResult`:
    `.makespan`, `.lower_bound`, `.lines()`, `.to_dict()` (JSON-ready), `.write(path)`."""
    from migsched.scheduling import schedule as schedule_tasks

    return schedule_tasks(model, tasks, **options)


__all__ = ["VERSIONS", "gym_id", "load_env_class", "make_env", "schedule"]
