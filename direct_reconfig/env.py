"""direct_reconfig: the entropy version, with reconfiguration allowed in any state."""

from migsched.env import MigSchedEnv


class SchedEnv(MigSchedEnv):
    """Schedule a batch of N tasks on an A100 with MIG, reconfiguring whenever it helps.

    ## Action space
    `Discrete(1 + 16 + 7N)`: 0 waits; `q` in 1..16 reconfigures to partition `q` even while the
    slices it changes are busy (their tasks finish first), but not twice in a row unless no run
    action is valid; `17 + 7i + j` runs a task of type slot `i` on instance `j`.

    ## Observation space
    `Box(0, 1, (1 + 6N + 7,), float32)`: partition / 15, per slot five levels / M and count / N,
    seven remaining times / M.

    ## Reward
    Minus the levels of time each step lets pass: a wait's, and a reconfiguration's, which
    moves the clock to the moment its last new instance is ready. The return is minus the
    makespan in levels.
    With `env_config["reward"] = "real"` instead: minus the growth of the real-time makespan of
    the decisions so far, in levels; the return is minus (real makespan - initial busy tail) in levels.

    ## Starting state
    N tasks of `type_tasks`, a uniform partition whose instances are busy 0..M levels.

    ## Episode end
    Every task has run and every slice is idle; `info` holds makespan, lower_bound,
    makespan_ratio and makespan_levels.
    """

    observation_encoding = "float"
    reconfiguration = "direct"
    episode = "offline"
