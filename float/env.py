"""float: task durations as real numbers in [0, 1]."""

from migsched.env import MigSchedEnv


class SchedEnv(MigSchedEnv):
    """Schedule a batch of N tasks on an A100 with MIG, durations shown as floats.

    ## Action space
    `Discrete(1 + 16 + 7N)`: 0 waits until the next instance frees; `q` in 1..16 reconfigures
    to partition `q`; `17 + 7i + j` runs one task of type slot `i` on instance `j`. Use
    `action_masks()`: a reconfiguration is valid only when every slice it changes is idle.

    ## Observation space
    `Box(0, 1, (1 + 6N + 7,), float32)`: the partition index / 15; per type slot (sorted by its
    level vector) the five levels / M and the count / N; the seven remaining times / M, clipped.

    ## Reward
    Minus the levels of time each step lets pass (waits); runs and reconfigurations earn 0, the
    reconfiguration's cost shows as busy time. The return is minus the makespan in levels.
    With `env_config["reward"] = "real"` instead: minus the growth of the real-time makespan of
    the decisions so far, in levels; the return is minus (real makespan - initial busy tail) in levels.

    ## Starting state
    A batch of N tasks of `type_tasks`; a uniform partition 1..16 whose instances stay busy for
    a uniform 0..M levels (the previous batch's tail). `reset(options=...)` can pin `tasks`,
    `partition` and `busy`.

    ## Episode end
    Terminates when every task has run and every slice is idle; `info` then holds the real
    `makespan`, `lower_bound`, `makespan_ratio` and `makespan_levels`. Never truncates.
    """

    observation_encoding = "float"
    reconfiguration = "idle"
    episode = "offline"
