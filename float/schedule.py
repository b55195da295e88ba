"""Schedule a task file with a trained float agent: `python schedule.py --model trained_models/X.zip --tasks FILE`."""

from migsched.scheduling import main

if __name__ == "__main__":
    raise SystemExit(main("float"))
