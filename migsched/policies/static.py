"""`static`: the best single partition, list-scheduled."""

from __future__ import annotations

import copy
import math

import migsched.a100 as a100
from migsched.env import MigSchedEnv
from migsched.policies.base import Policy
from migsched.policies.list_scheduling import next_action, plan, same_partition


class StaticPolicy(Policy):
    """For each of the 16 partitions: reconfigure to it once (waiting until that is valid), then
    list-schedule the tasks longest first, each on the instance that finishes it earliest. Every
    candidate is played on a copy of the environment; the one with the smallest real makespan is
    played for real. Online, the same rule serves the queue as tasks join the ready window.
    Partitions on which some task fits no instance are skipped.
    """

    name = "static"

    def reset(self, env: MigSchedEnv, seed: int | None = None) -> None:
        best_makespan, best_actions = math.inf, []
        for partition in a100.PARTITIONS:
            played = play_on_partition(copy.deepcopy(env), partition)
            if played is not None and played[1] < best_makespan:
                best_actions, best_makespan = played
        self._next = iter(best_actions)

    def act(self, env: MigSchedEnv) -> int:
        return next(self._next)


def play_on_partition(env: MigSchedEnv, partition: int) -> tuple[list[int], float] | None:
    """Play the static rule on `partition` to the episode's end: its actions and real makespan,
    or None if some task cannot run there."""
    actions = []
    while True:
        action = static_action(env, partition)
        if action is None:
            return None
        actions.append(action)
        _, _, terminated, _, info = env.step(action)
        if terminated:
            return actions, info["makespan"]


def static_action(env: MigSchedEnv, partition: int) -> int | None:
    """The static rule's next action toward `partition`, or None if a ready task fits none of its instances."""
    state, mask = env.state, env.action_masks()
    if not same_partition(state.partition, partition):
        if mask[partition]:
            return partition
        return 0 if mask[0] else None
    schedule = plan(state, state.partition)
    if math.isinf(schedule.makespan):
        return None
    return next_action(state, schedule)
