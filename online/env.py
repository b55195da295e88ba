"""online: direct_reconfig on a stream; the ready window is refilled from a task queue."""

from migsched.env import MigSchedEnv


class SchedEnv(MigSchedEnv):
    """Schedule a stream of tasks on an A100 with MIG through an N-task ready window.

    `env_config` takes `queue_len` (default 50): the tasks of an episode. The first N are ready;
    each time a task starts, the next queued task joins the ready slots.

    ## Action space
    `Discrete(1 + 16 + 7N)`, as in direct_reconfig: 0 waits; `q` in 1..16 reconfigures (changed
    slices may be busy; not twice in a row unless no run action is valid); `17 + 7i + j` runs a
    task of type slot `i` on instance `j`.

    ## Observation space
    `Box(0, 1, (1 + 6N + 8,), float32)`: as direct_reconfig, plus a last entry that is 1 right
    after a reconfiguration.

    ## Reward
    Minus the levels of time each wait or reconfiguration lets pass; the return is minus the
    makespan in levels.
    With `env_config["reward"] = "real"` instead: minus the growth of the real-time makespan of
    the decisions so far, in levels; the return is minus (real makespan - initial busy tail) in levels.

    ## Starting state
    `queue_len` tasks of `type_tasks` (discretized over the whole queue), partition 1, idle.
    `reset(options={"tasks": [...], "partition": q})` pins the queue and the (idle) partition.

    ## Episode end
    Every queued task has run and every slice is idle; `info` holds makespan, lower_bound,
    makespan_ratio and makespan_levels.
    """

    observation_encoding = "float_reconfig_flag"
    reconfiguration = "direct"
    episode = "online"
