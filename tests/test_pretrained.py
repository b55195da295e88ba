"""The pretrained agents of pretrained/: each loads without running code, is what its record says,
schedules an episode, and is the file its measured quality was measured on."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from conftest import benchmark_module

import migsched
from migsched.__main__ import main as migsched_main
from migsched.evaluation import load_model
from migsched.models import read_facts, read_weights
from migsched.policies.agent import AgentPolicy
from migsched.policies.base import run_episode
from migsched.pretrained import AGENT_FILE, PRETRAINED_FOLDER, QUALITY_FILE, RECORD_FILE, agent_folder, all_agents, resolve
from migsched.versions import REPO_ROOT, make_env

TASKS = REPO_ROOT / "tests" / "data" / "rodinia_a30.txt"


@pytest.mark.parametrize(("version", "workload"), all_agents(), ids=[f"{v}/{w}" for v, w in all_agents()])
def test_each_agent_loads_matches_its_record_and_schedules_an_episode(version: str, workload: str) -> None:
    folder = agent_folder(version, workload)
    agent = folder / AGENT_FILE
    record = json.loads((folder / RECORD_FILE).read_text())
    assert agent.stat().st_size < 5 * 2**20, "weights only: a few MB at most"
    assert not agent.with_suffix(".zip").exists(), "no pickled model beside the weights"
    read_weights(agent, version)  # torch.load(weights_only=True): a pickle inside would be refused
    facts = read_facts(agent, version)
    assert (facts.version, facts.type_tasks, facts.N, facts.M, facts.reward) == (
        record["version"],
        record["type_tasks"],
        record["env_config"]["N"],
        record["env_config"]["M"],
        record["env_config"]["reward"],
    )
    assert (record["version"], record["type_tasks"], record["status"]) == (version, workload, "finished")
    assert record["hyperparameters"]["preset"] == "fast" and record["stage_reports"], "trained with the recommended recipe"
    model, env_config = load_model(str(agent), version)
    env = make_env(version, env_config, workload)
    played = run_episode(env, AgentPolicy(model), seed=12345)
    assert math.isfinite(played.makespan) and played.makespan >= played.lower_bound - 1e-9


@pytest.mark.parametrize(("version", "workload"), all_agents(), ids=[f"{v}/{w}" for v, w in all_agents()])
def test_each_agents_quality_was_measured_on_this_very_file(version: str, workload: str) -> None:
    folder = agent_folder(version, workload)
    quality = json.loads((folder / QUALITY_FILE).read_text())
    assert quality["agent_sha256"] == hashlib.sha256((folder / AGENT_FILE).read_bytes()).hexdigest()
    assert (quality["version"], quality["workload"]) == (version, workload)
    assert all(len(values) >= quality["cpsat_episodes"] for values in quality["makespans"].values())


def test_results_table_lists_every_agent() -> None:
    text = (PRETRAINED_FOLDER / "RESULTS.md").read_text()
    assert all(f"| {version} {workload} |" in text for version, workload in all_agents())


def test_a_pretrained_name_resolves_to_its_weights_and_a_wrong_one_says_what_exists() -> None:
    assert Path(resolve("pretrained:float/wide_times")) == agent_folder("float", "wide_times") / AGENT_FILE
    assert resolve("some/model.zip") == "some/model.zip"
    for wrong in ("pretrained:float", "pretrained:flat/wide_times", "pretrained:float/wide"):
        with pytest.raises(ValueError, match="pretrained:<version>/<workload>"):
            resolve(wrong)


def test_the_migsched_command_schedules_with_a_pretrained_agent_without_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schedule.json"
    assert migsched_main(["schedule", "--model", "pretrained:online/mix_scaling_soft", "--tasks", str(TASKS), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["version"] == "online" and len(written["tasks"]) == 8
    assert "makespan" in capsys.readouterr().out


def test_a_wrong_pretrained_name_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        migsched_main(["schedule", "float", "--model", "pretrained:float/nope", "--tasks", str(TASKS)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "names no pretrained agent" in err


def test_the_python_api_takes_a_pretrained_name() -> None:
    result = migsched.schedule("pretrained:direct_reconfig/wide_times", TASKS)
    assert result.version == "direct_reconfig" and result.makespan >= result.lower_bound


def test_the_anytime_benchmark_takes_a_pretrained_name() -> None:
    args = benchmark_module("anytime").parse_args(["--version", "float", "--type_tasks", "wide_times", "--model", "pretrained:float/wide_times"])
    assert Path(args.model) == agent_folder("float", "wide_times") / AGENT_FILE


def test_the_benchmark_measures_agents_in_another_folder_and_leaves_pretrained_alone(tmp_path: Path) -> None:
    """`--folder` is how a second training seed is checked: its agents, quality files and RESULTS.md
    live there, and the pretrained agents' files stay as they are."""
    source = agent_folder("online", "mix_scaling_soft")
    kept = (source / QUALITY_FILE).read_bytes()
    folder = tmp_path / "seed1" / "online" / "mix_scaling_soft"
    folder.mkdir(parents=True)
    for name in (AGENT_FILE, RECORD_FILE):
        (folder / name).write_bytes((source / name).read_bytes())
    benchmark = benchmark_module("pretrained")
    chosen = ["--version", "online", "--type_tasks", "mix_scaling_soft", "--folder", str(tmp_path / "seed1")]
    assert benchmark.main(["measure", *chosen, "--queues", "2", "--queue_len", "10"]) == 0
    quality = json.loads((folder / QUALITY_FILE).read_text())
    assert (quality["episodes"], quality["queue_len"]) == (2, 10)
    assert all(len(values) == 2 for values in quality["makespans"].values())
    assert "| online mix_scaling_soft |" in (tmp_path / "seed1" / "RESULTS.md").read_text()
    assert (source / QUALITY_FILE).read_bytes() == kept
