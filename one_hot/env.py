"""one_hot: discretized durations as integers that the network sees one-hot encoded."""

from migsched.env import MigSchedEnv


class SchedEnv(MigSchedEnv):
    """Schedule a batch of N tasks on an A100 with MIG, durations shown one-hot.

    ## Action space
    `Discrete(1 + 16 + 7N)`: 0 waits; `q` in 1..16 reconfigures to partition `q` (only when every
    slice it changes is idle); `17 + 7i + j` runs a task of type slot `i` on instance `j`.

    ## Observation space
    `MultiDiscrete`: the partition 0..15; per type slot the five levels 0..M (0 = does not fit)
    and the count 0..N; the seven remaining times rounded up and capped at M. Stable-Baselines3
    one-hot encodes each entry for the network.

    ## Reward
    Minus the levels of time each wait lets pass; the return is minus the makespan in levels.
    With `env_config["reward"] = "real"` instead: minus the growth of the real-time makespan of
    the decisions so far, in levels; the return is minus (real makespan - initial busy tail) in levels.

    ## Starting state
    N tasks of `type_tasks`, a uniform partition whose instances are busy 0..M levels.

    ## Episode end
    Every task has run and every slice is idle; `info` holds makespan, lower_bound,
    makespan_ratio and makespan_levels.
    """

    observation_encoding = "one_hot"
    reconfiguration = "idle"
    episode = "offline"
