"""migsched.cli: one-line errors, the seed and positive-number types, and output paths checked before any work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migsched import sweep
from migsched.cli import SEED_MAX, OneLineParser, check_image_file, check_output_file, image_format_problem, output_file_problem, positive_float, seed_int


def parser() -> OneLineParser:
    """A parser with one flag of each helper's type."""
    made = OneLineParser(prog="tool.py")
    made.add_argument("--seed", type=seed_int)
    made.add_argument("--time", type=positive_float)
    made.add_argument("--csv")
    return made


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error and exit status 2 of `tool.py argv`, parsed and its --csv checked."""
    with pytest.raises(SystemExit) as exited:
        args = parser().parse_args(argv)
        check_output_file(parser(), "--csv", args.csv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("tool.py: error: ") and err.count("\n") == 1, err
    return err


def test_errors_are_one_line_without_the_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert error_of(["--bogus"], capsys) == "tool.py: error: unrecognized arguments: --bogus\n"


def test_the_parser_lists_its_long_flags_with_their_actions() -> None:
    made = OneLineParser(prog="tool.py")
    seed = made.add_argument("-s", "--seed", type=int)
    switch = made.add_argument("--dry_run", action="store_true")
    made.add_argument("positional")
    assert made.flags == {"help": made.flags["help"], "seed": seed, "dry_run": switch}
    assert switch.nargs == 0 and seed.type is int


def test_seeds_are_what_numpy_accepts(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["--seed", "0"]).seed == 0
    assert parser().parse_args(["--seed", str(SEED_MAX)]).seed == SEED_MAX == 2**32 - 1
    for bad in ("-1", str(SEED_MAX + 1), "1.5", "one"):
        assert f"0..{SEED_MAX}" in error_of([f"--seed={bad}"], capsys)


def test_positive_floats_are_finite_and_above_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert parser().parse_args(["--time", "0.25"]).time == 0.25
    for bad in ("nan", "inf", "-inf", "0", "-2", "fast"):
        assert "argument --time: expected a" in error_of([f"--time={bad}"], capsys), bad


def test_a_writable_path_passes_and_nothing_is_created_or_truncated(tmp_path: Path) -> None:
    new, old = tmp_path / "new.csv", tmp_path / "old.csv"
    old.write_text("kept")
    assert output_file_problem(new) is None and output_file_problem(old) is None
    assert not new.exists() and old.read_text() == "kept"
    check_output_file(parser(), "--csv", None)


def test_an_unwritable_path_is_refused_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    cases = {tmp_path: "is a directory", tmp_path / "missing" / "e.csv": "does not exist", tmp_path / "file" / "e.csv": "is not a folder"}
    for path, reason in cases.items():
        err = error_of(["--csv", str(path)], capsys)
        assert err.startswith(f"tool.py: error: --csv {path}: ") and reason in err, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_or_file_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "old.csv").write_text("")
    folder.chmod(0o500)
    (folder / "old.csv").chmod(0o400)
    try:
        assert "is not writable" in output_file_problem(folder / "new.csv")
        assert "not writable" in output_file_problem(folder / "old.csv")
    finally:
        folder.chmod(0o700)


def test_a_figure_needs_a_suffix_matplotlib_saves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("g.png", "g.PDF", "g.svg"):
        assert image_format_problem(tmp_path / name) is None
        check_image_file(parser(), "--gantt", tmp_path / name)
    assert image_format_problem("g") == image_format_problem("g.") and image_format_problem("g").startswith("no image suffix; end the name in one of .")
    with pytest.raises(SystemExit):
        check_image_file(parser(), "--gantt", tmp_path / "g.csv")
    assert capsys.readouterr().err.startswith(f"tool.py: error: --gantt {tmp_path / 'g.csv'}: unknown image format .csv; end the name in one of ")
    with pytest.raises(SystemExit):
        check_image_file(parser(), "--gantt", tmp_path / "missing" / "g.png")
    assert "does not exist" in capsys.readouterr().err


def test_sweep_uses_the_shared_parser() -> None:
    assert sweep.OneLineParser is OneLineParser
