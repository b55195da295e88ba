"""`pytest` in a version folder: that folder's pytest.ini runs the model's tests of its version only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from migsched import VERSIONS

ROOT = Path(__file__).resolve().parent.parent


def test_pytest_in_a_version_folder_collects_that_version_only() -> None:
    version = "online"
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q"], cwd=ROOT / version, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    files = {test_id.split("::")[0] for test_id in ids}
    assert files == {"test_a100.py", "test_workloads.py", "test_state.py", "test_replay.py", "test_env.py", "test_golden.py"}
    golden = [test_id for test_id in ids if test_id.startswith("test_golden.py::test_golden_episode_replays[")]
    assert golden and all(test_id.endswith(f"-{version}]") for test_id in golden)
    params = [re.search(r"\[(.*)\]$", test_id) for test_id in ids]
    named = [match.group(1) for match in params if match]
    assert any(version in p.split("-") for p in named)
    others = set(VERSIONS) - {version}
    assert not [p for p in named if others & set(p.split("-"))]
