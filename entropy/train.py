"""entropy: train a float agent whose entropy coefficient decays in four phases (0.01, 0.00075, 0.0005, 0).

    python train.py --num_steps 100000 --N 14 --M 14 --device cpu --type_tasks wide_times [--restore trained_models/X.zip]

Writes trained_models/bs3_N={N}_M={M}_s={num_steps}_{type_tasks}.zip beside this file; `--help` lists every flag.
"""

from pathlib import Path

from migsched.training import main

if __name__ == "__main__":
    raise SystemExit(main("entropy", folder=Path(__file__).resolve().parent))
