"""`greedy`: list scheduling that reconfigures when another partition promises an earlier finish."""

from __future__ import annotations

import math

import numpy as np

import migsched.a100 as a100
from migsched.env import MigSchedEnv
from migsched.policies.base import Policy
from migsched.policies.list_scheduling import next_action, plan, same_partition
from migsched.state import FIRST_RUN_ACTION

IMPROVEMENT = 0.01  # a reconfiguration must promise a makespan at least 1% earlier


class GreedyPolicy(Policy):
    """A dynamic heuristic that may reconfigure. At every decision:

    1. Estimate the current partition: list-schedule the ready tasks (the task whose best
       achievable finish is latest goes first, on the instance that finishes it earliest), in
       real seconds from the instances' remaining busy times.
    2. Estimate the same way every partition it may reconfigure to now by changing idle slices
       only (the idle capacity), new instances counting their destroy and create costs. If the
       best one promises a makespan at least 1% earlier (or the current partition cannot run some
       ready task), reconfigure to it. Never two reconfigurations in a row while a task can run.
    3. Otherwise start the first planned task whose instance is idle now; if none, wait.
    """

    name = "greedy"

    def act(self, env: MigSchedEnv) -> int:
        state, mask = env.state, env.action_masks()
        current = plan(state, state.partition)
        runs_valid = mask[FIRST_RUN_ACTION:].any()
        if state.ready_total and (not state.prev_reconfig or not runs_valid):
            target, estimate = None, current.makespan * (1 - IMPROVEMENT)
            idle_only = mask[1:FIRST_RUN_ACTION] & a100.RECONFIGURE_OK[state.partition, state.busy_bits]
            for q in np.flatnonzero(idle_only) + 1:
                if same_partition(q, state.partition):
                    continue
                candidate = plan(state, int(q)).makespan
                if candidate < estimate or (math.isinf(estimate) and not math.isinf(candidate) and target is None):
                    target, estimate = int(q), candidate
            if target is not None:
                return target
        action = next_action(state, current)
        if mask[action]:
            return action
        return int(np.flatnonzero(mask)[0])
