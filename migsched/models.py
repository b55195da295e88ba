"""Model files: their names, how a name is claimed and a model saved atomically, their run
records, and loading a model with every check that it fits a version.

A model lives in `<version folder>/trained_models/` beside the `train.py` that wrote it, as
`bs3_N={N}_M={M}_s={steps}_{type_tasks}.zip`, with a JSON record of the same stem beside it.
A name is taken by creating its record exclusively (`O_EXCL`), so two runs in one folder never
write the same name: the second takes `-2`, `-3`, ... A zip is written to a hidden temporary
file, flushed, and then given its name, so a kill during a save leaves no broken zip.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from gymnasium import spaces

from migsched.a100 import NUM_SLICES
from migsched.state import FIRST_RUN_ACTION
from migsched.versions import get_version, make_env

MODELS_FOLDER = "trained_models"
#: Files of another name's run that also make a stem taken (runs of older versions wrote no record).
TAKEN_SUFFIXES = (".json", ".zip", "_eval.csv", "_best.zip")


class ModelError(ValueError):
    """A model file that cannot be used here: missing, not a model, or not fitting the version."""


def model_path(folder: Path, n_slots: int, levels: int, steps: int, type_tasks: str) -> Path:
    """`<folder>/trained_models/bs3_N={N}_M={M}_s={steps}_{type_tasks}.zip`; `folder` is the version folder of train.py."""
    return Path(folder) / MODELS_FOLDER / f"bs3_N={n_slots}_M={levels}_s={steps}_{type_tasks}.zip"


def numbered(path: Path, k: int) -> Path:
    """`path` itself for k = 1, else `<stem>-<k><suffix>` beside it."""
    return path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")


def record_path(model: Path) -> Path:
    """The JSON record beside a model zip (same stem)."""
    return model.with_suffix(".json")


def claim(path: Path, record: dict[str, Any]) -> Path:
    """Take the first free name of `path` (`path`, `<stem>-2.zip`, ...) by creating its JSON record
    exclusively with `record` in it, and return that name. A name is free when no file of
    TAKEN_SUFFIXES exists under its stem. Raises OSError if the folder cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    k = 1
    while True:
        candidate = numbered(path, k)
        stem = candidate.with_suffix("")
        if not any(stem.with_name(stem.name + end).exists() for end in TAKEN_SUFFIXES):
            try:
                handle = os.open(record_path(candidate), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                pass
            else:
                with os.fdopen(handle, "w") as out:
                    json.dump(record, out, indent=2)
                return candidate
        k += 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, write: Any) -> None:
    """Call `write(temporary path)`, flush the file to disk and give it the name `path`; the
    file gets the mode a plain `open` would give (0666 less the umask). A failure or a kill
    leaves `path` as it was."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".tmp")
    os.close(handle)
    try:
        write(tmp)
        with open(tmp, "r+b") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a model's JSON record atomically."""
    write_atomically(path, lambda tmp: Path(tmp).write_text(json.dumps(record, indent=2, default=str) + "\n"))


def save_model(model: Any, path: Path, record: dict[str, Any], claimed: bool = False) -> Path:
    """Save `model` with its JSON `record` under `path`, or its next free name, and return that
    name. `claimed`: `path` was already claimed by this run (its record exists), save there."""
    if not claimed:
        path = claim(path, {**record, "status": "saving"})
    try:
        write_atomically(path, model.save)
    except BaseException:
        if not claimed:
            record_path(path).unlink(missing_ok=True)
        raise
    write_record(record_path(path), {**record, "model": str(path)})
    return path


def read_model_data(path: str | Path) -> dict[str, Any]:
    """The non-tensor part of a saved model (spaces, hyperparameters), without loading its weights."""
    from stable_baselines3.common.save_util import json_to_data

    try:
        with zipfile.ZipFile(path) as archive:
            data = json_to_data(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} is not a Stable-Baselines3 model zip ({exc})") from None
    if not isinstance(data.get("observation_space"), spaces.Space) or not isinstance(data.get("action_space"), spaces.Discrete):
        raise ModelError(f"{path} is not a Stable-Baselines3 model zip of a discrete-action agent")
    return data


def check_weights(path: str | Path) -> None:
    """ModelError unless the zip holds a readable `policy.pth` (the network's weights)."""
    import torch

    try:
        with zipfile.ZipFile(path) as archive:
            raw = archive.read("policy.pth")
        weights = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    except KeyError:
        raise ModelError(f"{path} has no policy.pth: the network's weights are missing") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a corrupt file
        raise ModelError(f"{path}: its policy.pth is not readable ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(weights, dict) or not weights:
        raise ModelError(f"{path}: its policy.pth holds no weights")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def trained_dims(data: dict[str, Any], path: str | Path) -> tuple[int, int | None]:
    """N and M of a saved model: as recorded by train.py, else N from its action space and M
    from a one-hot observation space or an `_M=<levels>_` in the file name (None if neither)."""
    recorded = data.get("env_config") or {}
    if "N" in recorded and "M" in recorded:
        return int(recorded["N"]), int(recorded["M"])
    n_slots = (int(data["action_space"].n) - FIRST_RUN_ACTION) // NUM_SLICES
    if isinstance(data["observation_space"], spaces.MultiDiscrete):
        return n_slots, int(data["observation_space"].nvec[-1]) - 1
    named = re.search(r"_M=(\d+)_", Path(path).name)
    return n_slots, int(named.group(1)) if named else None


def describe(space: spaces.Space) -> str:
    """A one-line description of a space (a MultiDiscrete by its length)."""
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({space.shape[0]} entries)"
    return str(space)


def check_fits(path: str | Path, version: str, n_slots: int, levels: int) -> dict[str, Any]:
    """The model's data; a ModelError naming both sides unless the model in `path` is a readable
    model with the spaces, N and M of `version`."""
    if not str(path).strip():
        raise ModelError("the model path is empty")
    if not Path(path).is_file():
        raise ModelError(f"model file not found: {path}")
    data = read_model_data(path)
    trained_n, trained_m = trained_dims(data, path)
    env = make_env(version, {"N": n_slots, "M": levels})
    model_spaces = (data["observation_space"], data["action_space"])
    if model_spaces != (env.observation_space, env.action_space) or (trained_n, trained_m or levels) != (n_slots, levels):
        raise ModelError(
            f"{path} does not fit {version} with N={n_slots} M={levels}: the model was trained with N={trained_n} "
            f"M={trained_m or '?'} ({describe(model_spaces[0])} -> {describe(model_spaces[1])}), "
            f"this needs {describe(env.observation_space)} -> {describe(env.action_space)}"
        )
    check_weights(path)
    return data


def saved_env_config(data: dict[str, Any], n_slots: int, levels: int) -> dict[str, Any]:
    """The environment configuration a model was trained with (N and M at least)."""
    return {**(data.get("env_config") or {}), "N": n_slots, "M": levels}


def load_checked_model(path: str | Path, version: str) -> tuple[Any, dict[str, Any]]:
    """A saved model for `version` on the CPU and the env_config it was trained with (N, M and
    whatever else train.py recorded); ModelError if it is not a usable model of `version`."""
    from sb3_contrib import MaskablePPO

    data = read_model_data(path)
    n_slots, levels = trained_dims(data, path)
    if levels is None:
        raise ModelError(f"{path}: its M is not recorded in the model nor in its name (_M=<levels>_)")
    check_fits(path, version, n_slots, levels)
    try:
        model = MaskablePPO.load(path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - a zip that passed the checks but still does not load
        raise ModelError(f"{path} cannot be loaded ({type(exc).__name__}: {first_line(exc)})") from None
    config = saved_env_config(data, n_slots, levels)
    if get_version(version).offline:
        config.pop("queue_len", None)
    return model, config
