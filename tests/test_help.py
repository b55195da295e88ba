"""Every command's --help: each flag has text and shows its default, one name per idea, and a
version's commands offer no flag it refuses."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT, benchmark_module

from migsched import VERSIONS, evaluation, plots, scheduling, sweep, training
from migsched.cli import OneLineParser


class Captured(Exception):
    """Raised instead of parsing: carries the parser a command built."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self.parser = parser


def benchmark(name: str) -> Callable[[], object]:
    """The entry point (`parse_args` or `main`) of benchmarks/<name>.py."""
    module = benchmark_module(name)
    return getattr(module, "parse_args", None) or module.main


COMMANDS: dict[str, Callable[[], object]] = {
    **{f"{v}/train.py": (lambda v=v: training.parse_args(v, [])) for v in VERSIONS},
    **{f"{v}/evaluate.py": (lambda v=v: evaluation.parse_args(v, [])) for v in VERSIONS},
    **{f"{v}/schedule.py": (lambda v=v: scheduling.parse_args(v, [])) for v in VERSIONS},
    "plot.py": lambda: plots.main([]),
    "sweep.py": lambda: sweep.parse_args([]),
    **{f"benchmarks/{path.stem}.py": (lambda stem=path.stem: benchmark(stem)()) for path in sorted((ROOT / "benchmarks").glob("*.py"))},
}


def parser_of(command: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser `command` builds, caught as it starts to parse."""

    def capture(self: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        raise Captured(self)

    monkeypatch.setattr(OneLineParser, "parse_args", capture)
    monkeypatch.setattr(OneLineParser, "parse_known_args", capture)
    monkeypatch.setattr("sys.argv", [command])
    with pytest.raises(Captured) as caught:
        COMMANDS[command]()
    return caught.value.parser


def flags(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_flag_has_text_and_shows_its_default(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = parser_of(command, monkeypatch)
    one_of = {action for group in parser._mutually_exclusive_groups if group.required for action in group._group_actions}
    for action in flags(parser):
        assert action.help and action.help.strip(), f"{command} {action.option_strings[0]} has no help text"
        if action.nargs != 0 and not action.required and action not in one_of:
            assert "default" in action.help, f"{command} {action.option_strings[0]}: its help does not show its default"


def test_one_name_per_idea(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {option for command in COMMANDS for action in flags(parser_of(command, monkeypatch)) for option in action.option_strings}
    for retired in ("--first_seed", "--eval_seed", "--versions"):
        assert retired not in names, f"{retired} is another name of an idea that has one"
    time_limits = [a.help for c in COMMANDS for a in flags(parser_of(c, monkeypatch)) if "--time_limit" in a.option_strings]
    assert time_limits and all("per batch" in text and "per episode" not in text for text in time_limits)
    cpsat = {a.default for c in COMMANDS for a in flags(parser_of(c, monkeypatch)) if "--cpsat_time" in a.option_strings}
    assert cpsat == {10.0}, "every command gives CP-SAT the same time by default"


@pytest.mark.parametrize("script", ["evaluate.py", "schedule.py"])
def test_online_offers_no_search(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    offered = {option for action in flags(parser_of(f"online/{script}", monkeypatch)) for option in action.option_strings}
    assert not offered & {"--samples", "--time_limit", "--temperature"}
    offline = {option for action in flags(parser_of(f"float/{script}", monkeypatch)) for option in action.option_strings}
    assert {"--samples", "--time_limit", "--temperature"} <= offline


def test_the_default_is_shown_in_the_formatted_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        evaluation.parse_args("float", ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--episodes EPISODES seeded episodes to evaluate (default 100)" in text
    assert "--gantt_episode GANTT_EPISODE which episode --gantt draws, 0 is the first (default 0)" in text


def test_every_benchmark_is_listed() -> None:
    assert {f"benchmarks/{p.name}" for p in Path(ROOT / "benchmarks").glob("*.py")} <= set(COMMANDS)
