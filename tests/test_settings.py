"""Each setting is declared once (migsched.settings): train.py's parser, its checks, the bounds of
every command, the record's hyperparameters and docs/commands.md's flag table all follow it."""

from __future__ import annotations

from pathlib import Path

import pytest

from migsched import cli, settings
from migsched.settings import BY_NAME, RUN_LEVEL, SETTINGS, TABLE_BEGIN, TABLE_END, markdown_table, recorded
from migsched.training import RunRecord, build_parser, parse_args
from migsched.versions import REPO_ROOT, VERSIONS, get_version


def refusal(version: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """train.py's one-line error for `argv` (it must refuse them)."""
    with pytest.raises(SystemExit) as exited:
        parse_args(version, argv)
    assert exited.value.code == 2
    return capsys.readouterr().err.strip()


def test_docs_flag_table_is_the_declared_one() -> None:
    text = (REPO_ROOT / "docs" / "commands.md").read_text()
    written = text[text.index(TABLE_BEGIN) : text.index(TABLE_END) + len(TABLE_END)]
    assert written == markdown_table(build_parser("float"), get_version("float").defaults), "run python -m migsched.training"


def test_every_flag_of_train_py_is_in_the_docs_table() -> None:
    table = markdown_table(build_parser("float"), get_version("float").defaults)
    flags = [name for name in build_parser("float").flags if name != "help"]
    assert flags and all(f"`--{name}`" in table for name in flags)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_setting_is_a_flag_with_the_declared_help(version: str) -> None:
    parser = build_parser(version)
    for setting in SETTINGS:
        assert parser.flags[setting.name].help.replace("%%", "%").startswith(setting.help)
        assert parser.flags[setting.name].choices == setting.choices


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.type is int and s.high is not None], ids=lambda s: s.name)
def test_train_py_refuses_one_past_each_declared_bound(setting: settings.Setting, capsys: pytest.CaptureFixture[str]) -> None:
    assert refusal("online", [f"--{setting.name}", str(int(setting.high) + 1)], capsys) == f"train.py: error: {setting.problem(int(setting.high) + 1)}"
    below = -1 if setting.zero is not None or setting.low == 0 else 0
    assert f"--{setting.name} must be" in refusal("online", [f"--{setting.name}", str(below)], capsys)


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.type is float], ids=lambda s: s.name)
def test_train_py_refuses_non_finite_and_out_of_range_floats(setting: settings.Setting, capsys: pytest.CaptureFixture[str]) -> None:
    for text in ("nan", "inf", "0", "-1"):
        assert f"--{setting.name} must be" in refusal("float", [f"--{setting.name}", text], capsys)


def test_the_bounds_of_other_commands_are_the_declared_ones() -> None:
    for name, high in cli.UPPER_BOUNDS.items():
        declared = cli.EPISODES if name == "episodes" else BY_NAME[name]
        assert high == declared.high
    assert cli.UPPER_BOUNDS["N"] == 256 and cli.UPPER_BOUNDS["M"] == 1000


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("learning_rate", "lin_x", "--learning_rate must be a number or lin_<number>"),
        ("ent_coef", "0.1,-1", "--ent_coef must be one finite non-negative number"),
        ("net_arch", "64,0", "--net_arch must be at most 16 layer widths"),
    ],
)
def test_converted_settings_refuse_in_one_line(flag: str, text: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert message in refusal("float", [f"--{flag}", text], capsys)


def test_the_record_holds_every_hyperparameter_and_none_for_a_missing_stage(tmp_path: Path) -> None:
    args = parse_args("float", ["--num_steps", "4096", "--N", "3", "--M", "5"])
    hyper = RunRecord("float", args, {"N": 3, "M": 5}, [], tmp_path).asked["hyperparameters"]
    expected = {s.name for s in SETTINGS if s.name not in RUN_LEVEL} | {"preset", "n_steps", "device"}
    assert set(hyper) == expected
    assert hyper["batch_size"] == args.batch_size and hyper["net_arch"] == args.net_arch
    assert all(hyper[s.name] is None for s in SETTINGS if s.group in ("clone", "self_imitation"))
    cloned = recorded({"pretrain": "greedy", "pretrain_episodes": 7, "imitation_rounds": 3}, ["clone", "ppo"])
    assert cloned["pretrain"] == "greedy" and cloned["pretrain_episodes"] == 7 and cloned["imitation_rounds"] is None
