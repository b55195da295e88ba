"""Draw the learning curve of a direct_reconfig training run: `python plot.py trained_models/<model name>_eval.csv`."""

from migsched.plots import main

if __name__ == "__main__":
    raise SystemExit(main())
