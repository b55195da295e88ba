"""plot.py: a broken evaluation CSV is one `plot.py: error: ...` line and exit status 2, never a
traceback; rows with a NaN or inf value are left out with one warning line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migsched.plots import main, read_curve

ROOT = Path(__file__).resolve().parent.parent
HEADER = "timesteps,minutes,agent,static,greedy,far\n"


def csv_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "run_eval.csv"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "2048,0.1,1.5,1.2,1.1,1.3\n4096,0.2\n", ", line 3: 2 fields where the header has 6"),
        (HEADER + "2048,0.1,1.5,1.2,1.1,1.3,9\n", ", line 2: 7 fields where the header has 6"),
        ("timesteps,minutes,agent\n1,2," + "9" * 140_000 + "\n", ", line 2: not a readable CSV (field larger than field limit (131072))"),
        ("steps,ratio\n1,2\n", ": no column timesteps, agent in its header"),
        ("timesteps,minutes\n1,2\n", ": no column agent in its header"),
        (HEADER + "2048,0.1,abc,1.2,1.1,1.3\n", ", line 2: agent is 'abc', not a number"),
        (HEADER + "2048,0.1,1.5,x,1.1,1.3\n", ", line 2: static is 'x', not a number"),
        (HEADER + "2048,0.1,inf,1.2,1.1,1.3\nnan,0.2,1.4,1.2,1.1,1.3\n", ": every row's timesteps or agent is NaN or inf; nothing to draw"),
        (HEADER, " holds no evaluation yet"),
        ("", " is empty; expected train.py's _eval.csv"),
    ],
)
def test_a_broken_csv_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    path = csv_file(tmp_path, text)
    with pytest.raises(SystemExit) as exited:
        main([path, "--out", str(tmp_path / "curve.png")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"plot.py: error: {path}{message}"), err
    assert err.count("\n") == 1 and not (tmp_path / "curve.png").exists()


def test_rows_with_nan_or_inf_are_left_out_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = ["2048,0.1,inf,1.2,1.1,1.3", "4096,0.2,1.4,1.2,1.1,1.3", "nan,0.3,1.3,1.2,1.1,1.3", "8192,0.4,1.2,1.2,1.1,nan"]
    path = csv_file(tmp_path, HEADER + "\n".join(rows) + "\n")
    curve = read_curve(path)
    assert (curve.xs, curve.agent, curve.skipped) == ([4096.0, 8192.0], [1.4, 1.2], [2, 4])
    assert curve.baselines == {"static": 1.2, "greedy": 1.1, "far": 1.3}
    assert main([path, "--out", str(tmp_path / "curve.png")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "plot.py: warning: left out 2 row(s) whose timesteps or agent is NaN or inf (lines 2, 4)\n"
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_a_nan_baseline_is_not_drawn(tmp_path: Path) -> None:
    curve = read_curve(csv_file(tmp_path, HEADER + "2048,0.1,1.5,nan,1.1,\n"))
    assert curve.baselines == {"greedy": 1.1} and curve.skipped == []


def test_the_script_prints_one_line_without_a_traceback(tmp_path: Path) -> None:
    path = csv_file(tmp_path, HEADER + "2048,0.1\n")
    done = subprocess.run([sys.executable, str(ROOT / "float" / "plot.py"), path], check=False, capture_output=True, text=True, timeout=120, cwd=ROOT / "float")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"plot.py: error: {path}, line 2: 2 fields where the header has 6\n"
    missing = subprocess.run(
        [sys.executable, str(ROOT / "float" / "plot.py"), str(tmp_path / "nope.csv")], check=False, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2 and missing.stderr == f"plot.py: error: cannot read {tmp_path / 'nope.csv'} (No such file or directory)\n"
