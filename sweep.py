"""Train and evaluate many agents with Ray Tune, here or on a Ray cluster; `--help` lists every flag.

    python sweep.py --version float,direct_reconfig --type_tasks all --seeds 3 --num_steps 2000000 --preset fast --out sweeps/NAME

Writes sweeps/NAME/results.csv (one row per trial) and sweeps/NAME/summary.md; see README, Sweeps.
"""

from migsched.sweep import main

if __name__ == "__main__":
    raise SystemExit(main())
