"""Draw the learning curve of a float training run: `python plot.py trained_models/<model name>_eval.csv`."""

from migsched.plots import main

if __name__ == "__main__":
    raise SystemExit(main())
