"""Pictures of schedules and training: Gantt charts and learning curves (matplotlib, Agg backend)."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from migsched.cli import OneLineParser, check_image_file
from migsched.replay import Schedule

BAR_COLOURS = {"reconfigure": "#3b3b3b", "busy": "#ffffff"}
#: Task colours: tab20 without its two greys, so no task looks like a reconfiguration.
TASK_COLOURS = [plt.get_cmap("tab20")(k) for k in range(20) if k not in (14, 15)]
#: Points of width a label needs per character at the Gantt chart's font size.
POINTS_PER_CHARACTER = 4.4
GANTT_WIDTH_POINTS = 11 * 72 * 0.85


def gantt(schedule: Schedule, path: str | Path, title: str = "", task_names: Sequence[str] | None = None) -> Path:
    """Draw a replayed schedule: one row per slice, real seconds across, one bar per task (a
    colour per task, labelled where the label fits), dark bars for reconfigurations, hatched ones
    for instances still busy at the start, a dashed line at the makespan; a legend names each."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig, ax = plt.subplots(figsize=(11, 4.4))
    span = schedule.makespan * 1.02 or 1.0
    for interval in schedule.intervals:
        low, high = min(interval.slices), max(interval.slices)
        is_run = interval.kind == "run"
        colour = TASK_COLOURS[interval.task % len(TASK_COLOURS)] if is_run else BAR_COLOURS[interval.kind]
        hatch = "//" if interval.kind == "busy" else None
        width = interval.end - interval.start
        ax.broken_barh([(interval.start, width)], (low - 0.4, high - low + 0.8), facecolors=colour, edgecolors="black", linewidth=0.5, hatch=hatch)
        if is_run:
            name = task_names[interval.task] if task_names else f"T{interval.task}"
            label = f"{name}\n{interval.size}g" if high > low else f"{name} {interval.size}g"
            room = width / span * GANTT_WIDTH_POINTS
            if room >= POINTS_PER_CHARACTER * max(len(part) for part in label.split("\n")):
                ax.text(interval.start + width / 2, (low + high) / 2, label, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks(range(7), [f"slice {s}" for s in range(7)])
    ax.set_ylabel("GPU compute slice")
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, span)
    ax.axvline(schedule.makespan, color="red", linestyle="--", linewidth=1)
    ax.set_title(title or f"makespan {schedule.makespan:.2f} s")
    kinds = {interval.kind for interval in schedule.intervals}
    legend = [
        Patch(facecolor=TASK_COLOURS[0], edgecolor="black", label="task run (label: name, instance size; left out where it does not fit)"),
        *([Patch(facecolor=BAR_COLOURS["reconfigure"], edgecolor="black", label="reconfiguration (destroy + create)")] if "reconfigure" in kinds else []),
        *([Patch(facecolor=BAR_COLOURS["busy"], edgecolor="black", hatch="//", label="busy at the start (previous batch)")] if "busy" in kinds else []),
        Line2D([], [], color="red", linestyle="--", label=f"makespan {schedule.makespan:.2f} s"),
    ]
    ax.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=7, frameon=False)
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


class CurveError(ValueError):
    """An evaluation CSV that cannot be drawn; the message is one line saying where and why."""


@dataclass
class Curve:
    """The points of a learning curve read from an evaluation CSV: x and the agent's mean ratio
    per evaluation, each baseline's mean ratio, and the lines skipped for a NaN or inf value."""

    xs: list[float]
    agent: list[float]
    baselines: dict[str, float]
    skipped: list[int]


def number(text: str, column: str, path: str | Path, line: int) -> float:
    """A CSV field as a float; CurveError naming the line and column if it is not a number."""
    try:
        return float(text)
    except ValueError:
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise CurveError(f"{path}, line {line}: {column} is {shown!r}, not a number") from None


def read_curve(eval_csv: str | Path, x: str = "timesteps") -> Curve:
    """The learning curve in train.py's evaluation CSV: a header with `x` and `agent` (the mean
    ratio of the agent), one column per baseline (constant along the run), a row per evaluation.
    Rows whose `x` or `agent` is NaN or inf are left out and listed in `skipped`, a NaN or inf
    baseline is not drawn; CurveError for a
    file that is not such a CSV (a row of the wrong length, a field that is not a number, ...)."""
    try:
        with open(eval_csv, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            lines = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise CurveError(f"{eval_csv}, line {reader.line_num}: not a readable CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise CurveError(f"{eval_csv}: not a text file (byte {exc.start} is not UTF-8); expected train.py's _eval.csv") from None
    if not lines:
        raise CurveError(f"{eval_csv} is empty; expected train.py's _eval.csv (columns timesteps, minutes, agent and the baselines)")
    (_, header), rows = lines[0], lines[1:]
    missing = [column for column in dict.fromkeys((x, "agent")) if column not in header]
    if missing:
        raise CurveError(f"{eval_csv}: no column {', '.join(missing)} in its header (expected timesteps, minutes, agent and the baselines)")
    if not rows:
        raise CurveError(f"{eval_csv} holds no evaluation yet")
    curve = Curve([], [], {}, [])
    for line, row in rows:
        if len(row) != len(header):
            raise CurveError(f"{eval_csv}, line {line}: {len(row)} fields where the header has {len(header)}")
        values = dict(zip(header, row))
        point = (number(values[x], x, eval_csv, line), number(values["agent"], "agent", eval_csv, line))
        if all(math.isfinite(value) for value in point):
            curve.xs.append(point[0])
            curve.agent.append(point[1])
            if len(curve.xs) == 1:
                baselines = [c for c in header if c not in (x, "agent", "timesteps", "minutes") and values[c]]
                curve.baselines = {c: number(values[c], c, eval_csv, line) for c in baselines}
        else:
            curve.skipped.append(line)
    if not curve.xs:
        raise CurveError(f"{eval_csv}: every row's {x} or agent is NaN or inf; nothing to draw")
    curve.baselines = {name: value for name, value in curve.baselines.items() if math.isfinite(value)}
    return curve


def curve_title(eval_csv: str | Path) -> str:
    """The learning curve's title: version, workload and model, from the run record beside the
    CSV (`<model>_eval.csv` beside `<model>.json`), else the model's name alone."""
    stem = Path(eval_csv).name.removesuffix(".csv").removesuffix("_eval")
    try:
        record = json.loads(Path(eval_csv).with_name(stem + ".json").read_text())
        return f"{record['version']} on {record['type_tasks']}: {stem}"
    except (OSError, ValueError, KeyError, TypeError):
        return stem


def learning_curve(curve: Curve, path: str | Path, x: str = "timesteps", title: str = "") -> Path:
    """Plot the agent's mean makespan ratio against `x`, the baselines as horizontal lines."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(curve.xs, curve.agent, marker="o", label="agent (deterministic, on the evaluation episodes)")
    for name, value in curve.baselines.items():
        ax.axhline(value, linestyle="--", linewidth=1, label=f"{name} baseline", color=f"C{len(ax.lines)}")
    ax.set_xlabel("training timesteps" if x == "timesteps" else "training time (minutes)")
    ax.set_ylabel("mean makespan / lower bound (lower is better)")
    ax.set_title(title or "learning curve", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, Path(path))
    return Path(path)


def main(argv: Sequence[str] | None = None) -> int:
    """`plot.py EVAL_CSV [--out PNG]`: the learning curve of a training run's evaluations. Bad
    input is one `plot.py: error: ...` line and exit status 2; rows with a NaN or inf value are
    left out with one `plot.py: warning: ...` line."""
    parser = OneLineParser(
        prog="plot.py",
        description=(
            "Draw the learning curve of a training run from its _eval.csv. Rows whose x or agent value is NaN or inf "
            "are left out (a warning names their lines); a file that is not such a CSV is an error."
        ),
    )
    parser.add_argument("eval_csv", help="trained_models/<model name>_eval.csv written by train.py --eval_freq")
    parser.add_argument("--out", help="image to write, .png, .pdf, .svg, ... (default: the CSV's name with .png)")
    parser.add_argument("--x", choices=("timesteps", "minutes"), default="timesteps", help="the x axis: training timesteps or minutes")
    args = parser.parse_args(argv)
    out = args.out or str(Path(args.eval_csv).with_suffix(".png"))
    check_image_file(parser, "--out", out)
    try:
        curve = read_curve(args.eval_csv, x=args.x)
    except OSError as exc:
        parser.error(f"cannot read {args.eval_csv} ({exc.strerror or exc})")
    except CurveError as exc:
        parser.error(str(exc))
    if curve.skipped:
        shown = ", ".join(map(str, curve.skipped[:10])) + (", ..." if len(curve.skipped) > 10 else "")
        print(f"plot.py: warning: left out {len(curve.skipped)} row(s) whose {args.x} or agent is NaN or inf (lines {shown})", file=sys.stderr)
    try:
        print(f"wrote {learning_curve(curve, out, x=args.x, title=curve_title(args.eval_csv))}")
    except (OSError, ValueError, OverflowError) as exc:
        parser.error(f"cannot draw {out} ({(str(exc).strip().splitlines() or [type(exc).__name__])[0]})")
    return 0
