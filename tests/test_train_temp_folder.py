"""train.py leaves no `<temp>/SB3-<date>` folder: Stable-Baselines3's default logger used to create
an empty one in the system's temporary folder on every run. (torch keeps its one cache folder,
`torchinductor_<user>`, there.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import script_env, version_copy


def test_a_training_run_leaves_no_sb3_folder_in_the_temporary_folder(tmp_path: Path) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    folder = version_copy("float", tmp_path / "versions")
    argv = [
        "--num_steps",
        "2048",
        "--N",
        "3",
        "--M",
        "4",
        "--type_tasks",
        "good_scaling",
        "--preset",
        "fast",
        "--stages",
        "ppo",
        "--seed",
        "0",
        "--eval_freq",
        "0",
    ]
    done = subprocess.run(
        [sys.executable, str(folder / "train.py"), *argv], cwd=folder, env=script_env() | {"TMPDIR": str(temp)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "| rollout/" in done.stdout and "| time/" in done.stdout and "total_timesteps" in done.stdout, "SB3's table still printed"
    assert "model saved: " in done.stdout
    assert list(temp.glob("SB3-*")) == []
