"""Evaluate a trained float agent against the baselines: `python evaluate.py --model trained_models/X.zip`."""

from migsched.evaluation import main

if __name__ == "__main__":
    raise SystemExit(main("float"))
