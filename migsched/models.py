"""Model files: their names, how a name is claimed and a model saved atomically, their run
records, and loading a model with every check that it fits a version.

A model lives in `<version folder>/trained_models/` beside the `train.py` that wrote it, as
`bs3_N={N}_M={M}_s={steps}_{type_tasks}.zip`, with a JSON record of the same stem beside it.
A name is taken by creating its record exclusively (`O_EXCL`), so two runs in one folder never
write the same name: the second takes `-2`, `-3`, ... A zip is written to a hidden temporary
file, flushed, and then given its name, so a kill during a save leaves no broken zip; the next
run in the folder marks a killed run's record and removes its temporary files. Beside each zip
train.py writes the weights-only form (`.pt`: tensors and plain data only).

Reading a model never unpickles anything unless the user passes `--trust_model`: the zip's
`data` is read as JSON, its pickled entries are replaced by this tool's own classes and the
environment's spaces (SB3's `custom_objects`), and torch reads the weights with `weights_only`.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from gymnasium import spaces

from migsched.a100 import NUM_SLICES
from migsched.state import FIRST_RUN_ACTION
from migsched.versions import VERSIONS, get_version, make_env

MODELS_FOLDER = "trained_models"
#: The library's Adam (eps 1e-5 is SB3's default for it), fused: the same update in fewer kernels,
#: measured 14% (float) to 25% (one_hot) faster per PPO update on CPU. New models and models
#: rebuilt from their weights-only form use it.
OPTIMIZER_KWARGS = dict(eps=1e-5, fused=True)
#: Files of another name's run that also make a stem taken (runs of older versions wrote no record).
TAKEN_SUFFIXES = (".json", ".zip", ".pt", "_eval.csv", "_best.zip", "_best.pt")


class ModelError(ValueError):
    """A model file that cannot be used here: missing, not a model, or not fitting the version."""


def model_path(folder: Path, n_slots: int, levels: int, steps: int = 0, type_tasks: str = "", label: str | None = None) -> Path:
    """`<folder>/trained_models/bs3_N={N}_M={M}_s={steps}_{type_tasks}.zip`, or with `label` (what
    trained it: `migsched.stages.run_label`) in place of `s={steps}`; `folder` is the version folder of train.py."""
    return Path(folder) / MODELS_FOLDER / f"bs3_N={n_slots}_M={levels}_{label or f's={steps}'}_{type_tasks}.zip"


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
    """Save `model` (its zip and weights-only form) with its JSON `record` under `path`, or its
    next free name, and return that name. `claimed`: `path` was already claimed by this run (its record exists), save there."""
    if not claimed:
        path = claim(path, {**record, "status": "saving"})
    try:
        write_model(model, path)
    except BaseException:
        if not claimed:
            record_path(path).unlink(missing_ok=True)
        raise
    weights = weights_path(path)
    write_record(record_path(path), {**record, "model": str(path)} | ({"weights": str(weights)} if weights.exists() else {}))
    return path


def write_model(model: Any, path: Path) -> None:
    """Write `model`'s zip at `path` and, for a model that knows its version (train.py's), its
    weights-only form beside it, each atomically."""
    write_atomically(path, model.save)
    version = getattr(model, "migsched_version", None)
    if version is not None:
        save_weights(model, weights_path(path), version)


#: Statuses of a record whose run has not ended: a claimed name being trained, or a save under way.
UNFINISHED = ("running", "saving")


def _process_gone(pid: Any) -> bool:
    """Whether no process `pid` runs on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def clean_stale_runs(models: Path) -> list[str]:
    """Mark as died the records in `models` left unfinished by a process of this machine that is
    gone (killed by SIGKILL, or the machine lost power), and remove their hidden temporary files;
    a note for each. Runs of other machines sharing the folder are left alone."""
    import platform

    notes = []
    for path in sorted(models.glob("*.json")) if models.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            process = record.get("process") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if record.get("status") not in UNFINISHED or process.get("host") != platform.node() or not _process_gone(process.get("pid")):
            continue
        stem = path.stem
        removed = [tmp for pattern in (f".{stem}.*.tmp", f".{stem}_best.*.tmp") for tmp in models.glob(pattern)]
        for tmp in removed:
            tmp.unlink(missing_ok=True)
        status = f"died: process {process['pid']} ended while {record['status']} (found by a later run)"
        try:
            write_record(path, {**record, "status": status})
        except OSError:
            continue
        notes.append(
            f"note: {path.name} was left {record['status']!r} by process {process['pid']}, which is gone: marked died"
            + (f", {len(removed)} temporary file(s) removed" if removed else "")
        )
    return notes


# --- reading a model without running code -------------------------------------------------------

#: The flag, named the same in every command, that lets Stable-Baselines3 unpickle a model zip.
TRUST_FLAG = "--trust_model"
TRUST_HELP = (
    "the model zip is yours or from someone you trust: read it with Stable-Baselines3's own loader, which unpickles "
    "(runs) the Python objects stored in its data; without this flag nothing in a model file is ever unpickled"
)
#: The weights-only form of an agent that train.py writes beside each zip: loaded with torch's
#: `weights_only=True`, it holds tensors, numbers and strings, never code.
WEIGHTS_SUFFIX = ".pt"
WEIGHTS_FORMAT = "migsched-agent"
WEIGHTS_FORMAT_VERSION = 1
#: Entries of SB3's data that an untrusted read replaces by None: the state of a rollout under way.
TRANSIENT_ENTRIES = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer")
#: Per space class, the attributes whose saved text identifies a space.
SPACE_FIELDS = {"Discrete": ("n", "start"), "Box": ("_shape", "dtype", "low", "high"), "MultiDiscrete": ("_shape", "dtype", "nvec")}


@dataclass(frozen=True)
class Serialized:
    """An entry of a model zip's `data` that Stable-Baselines3 stored pickled: the name of its
    type and the readable fields SB3 wrote beside the pickle. The pickle itself is never read."""

    type_name: str
    fields: dict[str, Any]

    @property
    def kind(self) -> str:
        """The class name, e.g. `Box` (a `MaskedDiscrete` is a `Discrete`)."""
        name = re.sub(r"^<class '(.*)'>$", r"\1", self.type_name).rsplit(".", 1)[-1]
        return "Discrete" if name == "MaskedDiscrete" else name


def read_model_data(path: str | Path) -> dict[str, Any]:
    """The `data` entry of a Stable-Baselines3 zip as plain JSON: each pickled entry becomes a
    `Serialized` holding only its readable fields. Nothing is unpickled; ModelError if it is not a model."""
    try:
        with zipfile.ZipFile(path) as archive:
            raw = json.loads(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path} is not a Stable-Baselines3 model zip ({first_line(exc)})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path} is not a Stable-Baselines3 model zip (its data is not a JSON object)")
    data: dict[str, Any] = {}
    for key, item in raw.items():
        if isinstance(item, dict) and ":serialized:" in item:
            data[key] = Serialized(str(item.get(":type:", "?")), {k: v for k, v in item.items() if k not in (":serialized:", ":type:")})
        else:
            data[key] = item
    if not all(isinstance(data.get(key), Serialized) for key in ("observation_space", "action_space")) or data["action_space"].kind != "Discrete":
        raise ModelError(f"{path} is not a Stable-Baselines3 model zip of a discrete-action agent")
    return data


def _as_saved(value: Any) -> Any:
    """`value` as SB3 writes a readable field: itself if JSON can hold it (read back), else its str()."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


def space_signature(space: spaces.Space | Serialized) -> tuple[str, tuple[Any, ...]]:
    """What identifies a space, the same for a space and for its saved readable fields."""
    if isinstance(space, Serialized):
        kind = space.kind
        return kind, tuple(space.fields.get(name) for name in SPACE_FIELDS.get(kind, ()))
    kind = "Discrete" if isinstance(space, spaces.Discrete) else type(space).__name__
    return kind, tuple(_as_saved(getattr(space, name, None)) for name in SPACE_FIELDS.get(kind, ()))


def describe(space: spaces.Space | Serialized) -> str:
    """A one-line description of a space or a saved space (a MultiDiscrete by its length)."""
    kind, values = space_signature(space)
    if kind == "Discrete":
        return f"Discrete({values[0]})"
    shape = re.findall(r"\d+", str(values[0]))
    return f"{kind}({', '.join(shape)}{',' if len(shape) == 1 else ''})" + (" entries" if kind == "MultiDiscrete" else "")


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
    if isinstance(recorded, dict) and "N" in recorded and "M" in recorded:
        return int(recorded["N"]), int(recorded["M"])
    actions = int(data["action_space"].fields.get("n", 0))
    n_slots = (actions - FIRST_RUN_ACTION) // NUM_SLICES
    observation = data["observation_space"]
    if observation.kind == "MultiDiscrete":
        return n_slots, int(re.findall(r"\d+", str(observation.fields.get("nvec")))[-1]) - 1
    named = re.search(r"_M=(\d+)_", Path(path).name)
    return n_slots, int(named.group(1)) if named else None


def trained_version(data: dict[str, Any], path: str | Path) -> str | None:
    """The version that trained a model: saved in it by train.py, else in the run record beside it, else None."""
    if isinstance(data.get("migsched_version"), str):
        return data["migsched_version"]
    try:
        recorded = json.loads(record_path(Path(path)).read_text()).get("version")
    except (OSError, ValueError, AttributeError):
        return None
    return recorded if isinstance(recorded, str) else None


def check_version_of(trained: str | None, version: str, path: str | Path) -> None:
    """ModelError if a model of another version is given to `version`'s commands."""
    if trained is not None and trained != version:
        raise ModelError(f"{path} is a model of the {trained} version, not {version}: use it with {trained}/'s commands")


def check_exists(path: str | Path) -> None:
    """ModelError unless `path` names a file."""
    if not str(path).strip():
        raise ModelError("the model path is empty")
    if not Path(path).is_file():
        raise ModelError(f"model file not found: {path}")


def check_fits(path: str | Path, version: str, n_slots: int, levels: int, trusted: bool = False) -> dict[str, Any]:
    """The model's plain data; a ModelError naming both sides unless `path` is a readable model of
    `version` with its spaces, N and M (and, unless `trusted`, readable without unpickling). Reads
    `.pt` weights-only files too. Runs no code from the file."""
    check_exists(path)
    if Path(path).suffix == WEIGHTS_SUFFIX:
        agent = read_weights(path, version)
        trained_n, trained_m = agent.env_config["N"], agent.env_config["M"]
        if (trained_n, trained_m) != (n_slots, levels):
            raise ModelError(f"{path} does not fit {version} with N={n_slots} M={levels}: the model was trained with N={trained_n} M={trained_m}")
        return {"env_config": agent.env_config, "migsched_version": agent.version}
    data = read_model_data(path)
    check_version_of(trained_version(data, path), version, path)
    trained_n, trained_m = trained_dims(data, path)
    env = make_env(version, {"N": n_slots, "M": levels})
    saved = (data["observation_space"], data["action_space"])
    fits = [space_signature(s) for s in saved] == [space_signature(s) for s in (env.observation_space, env.action_space)]
    if not fits or (trained_n, trained_m or levels) != (n_slots, levels):
        raise ModelError(
            f"{path} does not fit {version} with N={n_slots} M={levels}: the model was trained with N={trained_n} "
            f"M={trained_m or '?'} ({describe(saved[0])} -> {describe(saved[1])}), "
            f"this needs {describe(env.observation_space)} -> {describe(env.action_space)}"
        )
    if not trusted:
        untrusted_objects(data, env, path)
    check_weights(path)
    return data


def saved_env_config(data: dict[str, Any], n_slots: int, levels: int) -> dict[str, Any]:
    """The environment configuration a model was trained with (N and M at least)."""
    recorded = data.get("env_config")
    return {**(recorded if isinstance(recorded, dict) else {}), "N": n_slots, "M": levels}


def _saved_constant(entry: Serialized) -> float | None:
    """The value of a saved constant schedule (`FloatSchedule(ConstantSchedule(val=X))`), else None."""
    found = re.fullmatch(r"ConstantSchedule\(val=([-+0-9.eE]+)\)", str(entry.fields.get("value_schedule", "")))
    return float(found.group(1)) if found else None


def untrusted_objects(data: dict[str, Any], env: Any, path: str | Path) -> dict[str, Any]:
    """SB3's `custom_objects` for `data`: a replacement for every pickled entry, so that
    `MaskablePPO.load` unpickles nothing. The spaces are the environment's (already checked equal),
    the classes MaskablePPO's own (refused if the file names others), the schedules their saved
    constants, a rollout's transient state None. ModelError for anything else pickled."""
    from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy

    classes = {"policy_class": MaskableActorCriticPolicy, "rollout_buffer_class": MaskableRolloutBuffer}
    objects: dict[str, Any] = {"observation_space": env.observation_space, "action_space": env.action_space}
    for key, entry in data.items():
        if not isinstance(entry, Serialized) or key in objects:
            continue
        if key in classes:
            expected = classes[key]
            if entry.fields.get("__module__") != expected.__module__ or f"{expected.__name__}." not in str(entry.fields.get("__init__")):
                raise ModelError(f"{path}: its {key} is not sb3-contrib's {expected.__name__}; a model of this tool can be read only with {TRUST_FLAG}")
            objects[key] = expected
        elif key in TRANSIENT_ENTRIES:
            objects[key] = None
        elif key in ("clip_range", "clip_range_vf", "lr_schedule"):
            value = _saved_constant(entry)
            if value is None and key == "lr_schedule" and isinstance(data.get("learning_rate"), (int, float)):
                value = float(data["learning_rate"])  # a decaying schedule: only a restore uses it, and it sets its own
            if value is None:
                raise ModelError(f"{path}: its {key} is not a constant; read it with {TRUST_FLAG} if the file is yours")
            objects[key] = value
        else:
            raise ModelError(
                f"{path}: its data holds a pickled {key} ({entry.kind}) that cannot be read without running code; "
                f"if the file is yours or you trust its author, pass {TRUST_FLAG}"
            )
    return objects


def load_checked_model(path: str | Path, version: str, trusted: bool = False, env: Any = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """A saved model of `version` on the CPU (unless `kwargs` say otherwise) and the env_config it
    was trained with (N, M and whatever else train.py recorded); ModelError if it is not a usable
    model of `version`. A zip is read without unpickling anything unless `trusted`; a `.pt`
    weights-only file never needs trust. `env` and `kwargs` go to `MaskablePPO.load` (a restore)."""
    from sb3_contrib import MaskablePPO

    if Path(path).suffix == WEIGHTS_SUFFIX:
        agent = read_weights(path, version)
        return agent.model(env, **kwargs), dict(agent.env_config)
    data = read_model_data(path)
    n_slots, levels = trained_dims(data, path)
    if levels is None:
        raise ModelError(f"{path}: its M is not recorded in the model nor in its name (_M=<levels>_)")
    check_fits(path, version, n_slots, levels, trusted)
    config = saved_env_config(data, n_slots, levels)
    if get_version(version).offline:
        config.pop("queue_len", None)
    objects = None if trusted else untrusted_objects(data, make_env(version, config), path)
    kwargs.setdefault("device", "cpu")
    try:
        model = MaskablePPO.load(path, env=env, custom_objects=objects, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a zip that passed the checks but still does not load
        raise ModelError(f"{path} cannot be loaded ({type(exc).__name__}: {first_line(exc)})") from None
    model.migsched_version = version
    return model, config


class ModelFacts(NamedTuple):
    """What a model file says it was trained for: the settings a command inherits from it."""

    version: str | None
    N: int
    M: int | None
    reward: str
    type_tasks: str | None


def read_facts(path: str | Path, version: str | None = None) -> ModelFacts:
    """The facts of the model in `path` (a zip or a `.pt`), read without running code; ModelError
    if it is not a model or is not one of `version` (None: any). The workload comes from the model, else from
    its run record, else None."""
    check_exists(path)
    if Path(path).suffix == WEIGHTS_SUFFIX:
        agent = read_weights(path, version)
        config = agent.env_config
        return ModelFacts(agent.version, config["N"], config["M"], config.get("reward", "levels"), agent.type_tasks)
    data = read_model_data(path)
    trained = trained_version(data, path)
    if version is not None:
        check_version_of(trained, version, path)
    n_slots, levels = trained_dims(data, path)
    config = data.get("env_config") if isinstance(data.get("env_config"), dict) else {}
    workload = data.get("type_tasks")
    if not isinstance(workload, str):
        try:
            workload = json.loads(record_path(Path(path)).read_text()).get("type_tasks")
        except (OSError, ValueError, AttributeError):
            workload = None
    return ModelFacts(trained, n_slots, levels, config.get("reward", "levels"), workload if isinstance(workload, str) else None)


# --- the weights-only form --------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsFile:
    """A weights-only agent: what made it (version, env_config, network widths, timesteps) and the
    policy's tensors. `model()` rebuilds a MaskablePPO around them."""

    path: Path
    version: str
    env_config: dict[str, Any]
    net_arch: dict[str, list[int]]
    timesteps: int
    policy: dict[str, Any]
    type_tasks: str | None = None

    def model(self, env: Any = None, **kwargs: Any) -> Any:
        """A MaskablePPO with these weights (on `env`, or a new env of the file's version)."""
        import torch
        from sb3_contrib import MaskablePPO

        kwargs.setdefault("device", "cpu")
        kwargs.pop("policy_kwargs", None)
        env = env if env is not None else make_env(self.version, self.env_config)
        policy_kwargs = dict(net_arch=self.net_arch, optimizer_kwargs=OPTIMIZER_KWARGS)
        model = MaskablePPO("MlpPolicy", env, policy_kwargs=policy_kwargs, **kwargs)
        try:
            model.policy.load_state_dict({k: torch.as_tensor(v) for k, v in self.policy.items()})
        except (RuntimeError, KeyError) as exc:
            raise ModelError(f"{self.path}: its tensors do not fit the network it describes ({first_line(exc)})") from None
        model.num_timesteps = self.timesteps
        model.env_config = dict(self.env_config)
        model.migsched_version = self.version
        model.type_tasks = self.type_tasks
        return model


def weights_path(model_zip: Path) -> Path:
    """The weights-only file beside a model zip (same stem, `.pt`)."""
    return model_zip.with_suffix(WEIGHTS_SUFFIX)


def save_weights(model: Any, path: Path, version: str) -> None:
    """Write `model`'s policy in the weights-only form, atomically."""
    import torch

    arch = model.policy.net_arch
    payload = {
        "format": WEIGHTS_FORMAT,
        "format_version": WEIGHTS_FORMAT_VERSION,
        "version": version,
        "env_config": dict(model.env_config),
        "type_tasks": getattr(model, "type_tasks", None),
        "net_arch": {key: list(arch if isinstance(arch, list) else arch[key]) for key in ("pi", "vf")},
        "timesteps": int(model.num_timesteps),
        "policy": {key: value.detach().cpu() for key, value in model.policy.state_dict().items()},
    }
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def read_weights(path: str | Path, version: str | None = None) -> WeightsFile:
    """A weights-only file of `version` (None: any), read with torch's `weights_only=True` (no
    code runs); ModelError if it is not one or is another version's."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a file that is not its own
        raise ModelError(f"{path} is not a weights-only agent file ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        raise ModelError(f"{path} is not a weights-only agent file (no format {WEIGHTS_FORMAT!r})")
    if payload.get("format_version") != WEIGHTS_FORMAT_VERSION:
        raise ModelError(f"{path}: weights-only format version {payload.get('format_version')!r}, this tool reads {WEIGHTS_FORMAT_VERSION}")
    config, arch = payload.get("env_config"), payload.get("net_arch")
    valid = (
        isinstance(config, dict)
        and all(isinstance(config.get(key), int) for key in ("N", "M"))
        and isinstance(arch, dict)
        and all(isinstance(arch.get(key), list) and all(isinstance(w, int) and w > 0 for w in arch[key]) for key in ("pi", "vf"))
        and isinstance(payload.get("timesteps"), int)
        and isinstance(payload.get("policy"), dict)
        and payload["policy"]
    )
    if not valid:
        raise ModelError(f"{path}: a weights-only agent file with missing or malformed entries")
    trained = payload.get("version")
    if not isinstance(trained, str) or trained not in VERSIONS:
        raise ModelError(f"{path}: a weights-only agent file of no known version ({trained!r})")
    if version is not None:
        check_version_of(trained, version, path)
    workload = payload.get("type_tasks")
    return WeightsFile(
        Path(path),
        trained,
        config,
        {"pi": arch["pi"], "vf": arch["vf"]},
        payload["timesteps"],
        payload["policy"],
        workload if isinstance(workload, str) else None,
    )
