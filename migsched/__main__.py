"""`migsched` (or `python -m migsched`): the version folders' commands from anywhere.

    migsched train VERSION [train.py's flags]        models go to VERSION/trained_models/
    migsched evaluate [VERSION] [evaluate.py's flags]
    migsched schedule [VERSION] [schedule.py's flags]
    migsched sweep [sweep.py's flags]
    migsched plot EVAL_CSV [plot.py's flags]

The flags are exactly those of the per-folder scripts (`migsched train float --help` lists
train.py's). With `--model`, evaluate and schedule may leave out VERSION: the model file says
which version trained it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from migsched.versions import VERSIONS

USAGE = __doc__.split("\n\n")[1]


def infer_version(argv: list[str]) -> str:
    """The version a model file given with `--model` was trained by; ValueError if none is."""
    from migsched.models import ModelError, read_facts
    from migsched.pretrained import resolve

    model = next((argv[k + 1] for k, flag in enumerate(argv[:-1]) if flag == "--model"), None)
    model = model or next((flag.split("=", 1)[1] for flag in argv if flag.startswith("--model=")), None)
    if model is None:
        raise ValueError(f"name the version first ({', '.join(VERSIONS)}), or give --model")
    try:
        model = str(resolve(model))
        version = read_facts(model).version
    except ModelError as exc:
        raise ValueError(str(exc)) from None
    if version is None:
        raise ValueError(f"{model} does not say which version trained it: name the version first")
    return version


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch `migsched COMMAND ...` to the command's main; returns its exit status."""
    from migsched import evaluation, plots, scheduling, sweep, training

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(f"usage:\n{USAGE}")
        return 0 if args else 2
    command, rest = args[0], args[1:]
    by_version: dict[str, Callable[[str, list[str]], int]] = {
        "train": lambda version, flags: training.main(version, flags),
        "evaluate": evaluation.main,
        "schedule": scheduling.main,
    }
    if command in by_version:
        if rest and rest[0] in VERSIONS:
            version, rest = rest[0], rest[1:]
        elif command == "train":
            print(f"migsched train: error: name the version first: migsched train {{{','.join(VERSIONS)}}} [flags]", file=sys.stderr)
            return 2
        else:
            try:
                version = infer_version(rest)
            except ValueError as exc:
                print(f"migsched {command}: error: {exc}", file=sys.stderr)
                return 2
        return by_version[command](version, rest)
    if command == "sweep":
        return sweep.main(rest)
    if command == "plot":
        return plots.main(rest)
    print(f"migsched: error: unknown command {command!r}; choose train, evaluate, schedule, sweep or plot", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
