"""The pretrained agents shipped in `pretrained/<version>/<workload>/`, and the names that pick one.

Each folder holds `agent.pt` (the weights-only form: tensors and plain data, read with torch's
`weights_only`, docs/commands.md "Model files and trust"), `record.json` (train.py's run record:
recipe, stages with their budgets and what they reached, seed, libraries, wall clock) and,
once `benchmarks/pretrained.py measure` ran, `quality.json` (its measured quality).
Every command that reads a model takes `pretrained:<version>/<workload>` for its file.
"""

from __future__ import annotations

from pathlib import Path

from migsched.versions import REPO_ROOT, VERSIONS
from migsched.workloads import WORKLOAD_NAMES

PRETRAINED_FOLDER = REPO_ROOT / "pretrained"
PREFIX = "pretrained:"
AGENT_FILE = "agent.pt"
RECORD_FILE = "record.json"
QUALITY_FILE = "quality.json"


def agent_folder(version: str, workload: str, root: Path = PRETRAINED_FOLDER) -> Path:
    """The folder of the agent of `version` on `workload`: the pretrained one, or under another `root`."""
    return root / version / workload


def all_agents() -> list[tuple[str, str]]:
    """Every (version, workload) a pretrained agent is made for, in the README's order."""
    return [(version, workload) for version in VERSIONS for workload in WORKLOAD_NAMES]


def resolve(name: str | Path) -> str | Path:
    """The file of a model name: `pretrained:<version>/<workload>` is that agent's `agent.pt`;
    any other name is returned as it is. A pretrained name that names no agent is a ValueError."""
    text = str(name)
    if not text.startswith(PREFIX):
        return name
    parts = text[len(PREFIX) :].strip("/").split("/")
    if len(parts) != 2 or parts[0] not in VERSIONS or parts[1] not in WORKLOAD_NAMES:
        raise ValueError(
            f"{text!r} names no pretrained agent: use pretrained:<version>/<workload>, a version of {', '.join(VERSIONS)} and a workload of {', '.join(WORKLOAD_NAMES)}"
        )
    path = agent_folder(parts[0], parts[1]) / AGENT_FILE
    if not path.is_file():
        raise ValueError(f"{text!r}: no pretrained agent at {path} (a clone without pretrained/?)")
    return str(path)
