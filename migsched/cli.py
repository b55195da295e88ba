"""Command-line helpers shared by train.py, evaluate.py, schedule.py and sweep.py.

Bad input is one line `PROG: error: MESSAGE` on stderr and exit status 2, found before any
expensive work: `OneLineParser` prints its errors so, the argparse types below refuse bad values
as the flags are read, and `check_output_file` refuses an output path that could not be written
once the work is done.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from migsched.settings import BY_NAME, SEED_MAX, Setting
from migsched.settings import UPPER_BOUNDS as SETTING_BOUNDS

T = TypeVar("T")

#: Seconds per CP-SAT solve unless a command is told otherwise: evaluate.py, sweep.py and the benchmarks share it.
CPSAT_SECONDS = 10.0
#: Seeded episodes of evaluate.py, the one bounded flag that is no training setting.
EPISODES = Setting("episodes", "seeded episodes", "output", int, low=1, high=1_000_000)
#: The largest value each integer flag accepts, in every command that has it: far above any
#: sensible run, low enough that a typo (an extra zero, a width in the millions) is refused
#: instead of running for ever or filling the memory. Declared with each setting (migsched.settings).
UPPER_BOUNDS: dict[str, int] = {**SETTING_BOUNDS, EPISODES.name: int(EPISODES.high or 0)}


def check_bounds(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: tuple[str, ...]) -> None:
    """Exit through `parser.error` unless each of `flags` (None: not given) is a value its setting accepts."""
    for flag in flags:
        setting = EPISODES if flag == EPISODES.name else BY_NAME[flag]
        problem = setting.problem(getattr(args, flag))
        if problem is not None:
            parser.error(problem)


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (exit status 2), without the usage.
    `flags` maps each long option, without its dashes, to its argparse action."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.flags: dict[str, argparse.Action] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """argparse's, and the help of a flag that takes a value says its default when it does not already."""
        action = super().add_argument(*args, **kwargs)
        if action.option_strings and action.nargs != 0 and not action.required and action.help and "default" not in action.help:
            shown = "none" if action.default is None else str(action.default).replace("%", "%%")
            action.help = f"{action.help} (default {shown})"
        self.flags.update({option.removeprefix("--"): action for option in action.option_strings if option.startswith("--")})
        return action

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def seed_int(text: str) -> int:
    """An argparse type: a seed, an integer in 0..SEED_MAX."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed in 0..{SEED_MAX}, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed must be in 0..{SEED_MAX}, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0 (not nan, not inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a finite number above 0, got {text!r}")
    return value


def model_file(text: str) -> str:
    """An argparse type: a model file, or `pretrained:<version>/<workload>` for a shipped agent's."""
    from migsched.pretrained import resolve

    try:
        return str(resolve(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def output_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why a file could not be written at `path` (its folder missing or read-only, the path a
    folder or a read-only file), or None if it could. Creates and truncates nothing."""
    target = Path(path)
    if target.is_dir():
        return "is a directory"
    folder = target.parent
    if not folder.exists():
        return f"its folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if target.exists():
        if not os.access(target, os.W_OK):
            return "the file is not writable"
    elif not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable"
    return None


def check_output_file(parser: argparse.ArgumentParser, flag: str, path: str | os.PathLike[str] | None) -> None:
    """Exit through `parser.error` (`FLAG PATH: why`) if an output file could not be written at `path`; None passes."""
    if path is None:
        return
    problem = output_file_problem(path)
    if problem:
        parser.error(f"{flag} {path}: {problem}")


def image_format_problem(path: str | os.PathLike[str]) -> str | None:
    """Why matplotlib could not save a figure at `path` in the format its suffix names, or None."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(path).suffix.lower().removeprefix(".")
    if suffix not in formats:
        return f"{'no image suffix' if not suffix else f'unknown image format .{suffix}'}; end the name in one of .{', .'.join(sorted(formats))}"
    return None


def check_image_file(parser: argparse.ArgumentParser, flag: str, path: str | os.PathLike[str] | None) -> None:
    """`check_output_file` for a figure, which also needs a suffix matplotlib can save (.png, .pdf, .svg, ...)."""
    check_output_file(parser, flag, path)
    problem = image_format_problem(path) if path is not None else None
    if problem:
        parser.error(f"{flag} {path}: {problem}")


def add_search_flags(parser: argparse.ArgumentParser, online: bool) -> None:
    """`--samples`, `--time_limit` and `--temperature`: the agent's search of a batch (`migsched.search`).
    Not offered online: an online episode has no batch to search (its tasks arrive as they are revealed)."""
    from migsched.search import DEFAULT_TEMPERATURE

    if online:
        return
    parser.add_argument("--samples", type=int, default=0, help="search: also try K stochastic rollouts of the agent per batch and keep the best (default 0)")
    parser.add_argument(
        "--time_limit", type=positive_float, help="search: keep sampling the agent's rollouts for this many seconds per batch and keep the best (default: none)"
    )
    parser.add_argument(
        "--temperature",
        type=positive_float,
        default=DEFAULT_TEMPERATURE,
        help=f"search: the rollouts sample from softmax(logits / T) (default {DEFAULT_TEMPERATURE:g}, measured in docs/search.md)",
    )


def check_search_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Exit through `parser.error` for a search that cannot be: a negative `--samples`, or without
    `--model`. Fills in no search for a version that offers none. Returns whether a search was asked for."""
    from migsched.search import DEFAULT_TEMPERATURE

    if not hasattr(args, "samples"):
        args.samples, args.time_limit, args.temperature = 0, None, DEFAULT_TEMPERATURE
    if args.samples < 0:
        parser.error(f"--samples must be >= 0, got {args.samples}")
    searching = bool(args.samples) or args.time_limit is not None
    if searching and not args.model:
        parser.error("--samples and --time_limit search with the agent: give --model")
    return searching


def progress(iterable: Iterable[T], total: int, desc: str, unit: str) -> Iterable[T]:
    """`iterable` with a progress bar on stderr when stderr is a terminal (or MIGSCHED_PROGRESS=1
    asks for one): the count, the rate and the time left. Otherwise `iterable` itself."""
    if os.environ.get("MIGSCHED_PROGRESS") != "1" and not sys.stderr.isatty():
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
