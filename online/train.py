"""online: train an agent on a task stream refilling the ready window, with the decaying entropy coefficient.

    python train.py --num_steps 100000 --N 14 --M 14 --device cpu --type_tasks wide_times [--restore trained_models/X.zip]

Writes trained_models/bs3_N={N}_M={M}_s={num_steps}_{type_tasks}.zip beside this file; `--help` lists every flag.
"""

from pathlib import Path

from migsched.training import main

if __name__ == "__main__":
    raise SystemExit(main("online", folder=Path(__file__).resolve().parent))
