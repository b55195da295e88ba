"""entropy: the float environment; this version differs only in training (a decaying entropy bonus, in hyperparams.yaml)."""

from migsched.env import MigSchedEnv


class SchedEnv(MigSchedEnv):
    """Schedule a batch of N tasks on an A100 with MIG: the same rules as `float`.

    What changes is in `hyperparams.yaml`: the entropy coefficient starts at 0.01 and decays in steps.

    ## Action space
    `Discrete(1 + 16 + 7N)`: 0 waits; `q` in 1..16 reconfigures to partition `q` (only when every
    slice it changes is idle); `17 + 7i + j` runs a task of type slot `i` on instance `j`.

    ## Observation space
    `Box(0, 1, (1 + 6N + 7,), float32)`: partition / 15, per slot five levels / M and count / N,
    seven remaining times / M.

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

    observation_encoding = "float"
    reconfiguration = "idle"
    episode = "offline"
