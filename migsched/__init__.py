"""Shared core of the MIG scheduling agents: A100 model, workloads, MDP, replay and training harness."""

from migsched.versions import VERSIONS, gym_id, load_env_class, make_env, register_all

register_all()

__all__ = ["VERSIONS", "gym_id", "load_env_class", "make_env"]
