"""Pictures of schedules and training: Gantt charts and learning curves (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from migsched.replay import Schedule

BAR_COLOURS = {"reconfigure": "#555555", "busy": "#dddddd"}


def gantt(schedule: Schedule, path: str | Path, title: str = "", task_names: Sequence[str] | None = None) -> Path:
    """Draw a replayed schedule: one row per slice, real seconds across, one labelled bar per task
    (a colour per task), dark grey bars for reconfigurations, hatched ones for the initial busy
    instances. Returns the PNG's path."""
    fig, ax = plt.subplots(figsize=(11, 4.2))
    colours = plt.get_cmap("tab20")
    for interval in schedule.intervals:
        low, high = min(interval.slices), max(interval.slices)
        is_run = interval.kind == "run"
        colour = colours(interval.task % 20) if is_run else BAR_COLOURS[interval.kind]
        hatch = "//" if interval.kind == "busy" else None
        ax.broken_barh(
            [(interval.start, interval.end - interval.start)], (low - 0.4, high - low + 0.8), facecolors=colour, edgecolors="black", linewidth=0.5, hatch=hatch
        )
        if is_run:
            name = task_names[interval.task] if task_names else f"T{interval.task}"
            ax.text((interval.start + interval.end) / 2, (low + high) / 2, f"{name}\n{interval.size}g", ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks(range(7), [f"slice {s}" for s in range(7)])
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, schedule.makespan * 1.02 or 1.0)
    ax.axvline(schedule.makespan, color="red", linestyle="--", linewidth=1)
    ax.set_title(title or f"makespan {schedule.makespan:.2f} s")
    ax.text(1.0, -0.16, "dark grey: reconfiguration, hatched: busy at the start", transform=ax.transAxes, ha="right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, Path(path))
    return Path(path)


def save_figure(fig: plt.Figure, path: Path) -> None:
    """Save and close `fig` atomically, in the format its suffix names: a full disk or a kill
    leaves `path` as it was."""
    from migsched.models import write_atomically

    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=110, format=path.suffix.removeprefix(".").lower()))
    finally:
        plt.close(fig)


def learning_curve(eval_csv: str | Path, path: str | Path, x: str = "timesteps") -> Path:
    """Plot the mean makespan ratio of an evaluation CSV against `x`, baselines as horizontal lines.

    The CSV has a column `x`, a column `agent` (mean ratio of the agent) and one column per
    baseline (constant along the run)."""
    with open(eval_csv, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{eval_csv} holds no evaluation yet")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    xs = [float(row[x]) for row in rows]
    ax.plot(xs, [float(row["agent"]) for row in rows], marker="o", label="agent")
    for column in rows[0]:
        if column not in (x, "agent", "timesteps", "minutes") and rows[0][column]:
            ax.axhline(float(rows[0][column]), linestyle="--", linewidth=1, label=column, color=f"C{len(ax.lines)}")
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("mean makespan / lower bound")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """`plot.py EVAL_CSV [--out PNG]`: the learning curve of a training run's evaluations."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="plot.py", description="Draw the learning curve of a training run from its _eval.csv.")
    parser.add_argument("eval_csv", help="trained_models/<model name>_eval.csv written by train.py --eval_freq")
    parser.add_argument("--out", help="PNG to write (default: the CSV's name with .png)")
    parser.add_argument("--x", choices=("timesteps", "minutes"), default="timesteps")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.eval_csv).with_suffix(".png"))
    try:
        print(f"wrote {learning_curve(args.eval_csv, out, x=args.x)}")
    except (OSError, ValueError, KeyError) as exc:
        print(f"plot.py: error: {exc}", file=sys.stderr)
        return 2
    return 0
