"""The processes and threads of a training run: environment workers that die with the run and
report their own death, and torch threads sized to the cores other processes leave free.

`make_vec_env` builds the vectorised environments `train.py` trains on: in process (`dummy`), or
one subprocess each (`subproc`) whose pipes raise `WorkerDied` when a worker ends instead of
blocking for ever. `FreeCoreThreads` re-sizes torch's thread pool before each PPO update.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor

from migsched.versions import make_env

#: fork starts the environment subprocesses at once; the others re-import torch in every worker.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else None


# --- environment workers ----------------------------------------------------------------------


class WorkerDied(RuntimeError):
    """An environment subprocess ended while training needed it (killed, out of memory, crashed)."""


class GuardedPipe:
    """The training process's end of a worker's pipe: waits on the pipe and on the worker's exit
    together, so a dead worker raises WorkerDied instead of blocking `recv` for ever (the other
    workers inherited the dead one's pipe, so the pipe alone never reports its end)."""

    def __init__(self, connection: multiprocessing.connection.Connection, process: multiprocessing.Process, index: int) -> None:
        self.connection = connection
        self.process = process
        self.index = index

    def send(self, message: Any) -> None:
        try:
            self.connection.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            raise WorkerDied(self.death()) from None

    def recv(self) -> Any:
        ready = multiprocessing.connection.wait([self.connection, self.process.sentinel])
        if self.connection in ready:
            try:
                return self.connection.recv()
            except (EOFError, ConnectionResetError):
                pass
        raise WorkerDied(self.death())

    def close(self) -> None:
        self.connection.close()

    def death(self) -> str:
        """What happened to the worker, in words."""
        self.process.join(timeout=1.0)
        code = self.process.exitcode
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with status {code}"
        return f"environment worker {self.index} (pid {self.process.pid}) {how}"


class SupervisedSubprocVecEnv(SubprocVecEnv):
    """SB3's SubprocVecEnv whose pipes notice a dead worker (WorkerDied) and whose `close` never
    waits on one: it kills the workers, which hold nothing worth keeping."""

    def __init__(self, env_fns: list[Callable[[], Any]], start_method: str | None = None) -> None:
        super().__init__(env_fns, start_method=start_method)
        self.remotes = [GuardedPipe(remote, process, k) for k, (remote, process) in enumerate(zip(self.remotes, self.processes))]

    def close(self) -> None:
        if self.closed:
            return
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.join()
        self.closed = True


def die_with_parent(parent: int) -> None:
    """Make this process (a worker) be killed when its parent dies (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def worker_env(parent: int, version: str, env_config: dict[str, Any], type_tasks: str) -> Any:
    """An environment built inside a subprocess worker: the worker dies with the training process,
    takes SIGTERM's default action (the forked handler would only set a flag) and ignores SIGINT
    (a Ctrl+C reaches the whole process group; the training process stops and closes the workers)."""
    die_with_parent(parent)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return make_env(version, env_config, type_tasks)


def make_vec_env(version: str, env_config: dict[str, Any], type_tasks: str, n_envs: int, vec_env: str) -> VecEnv:
    """`n_envs` environments of `version`: in this process (`dummy`), one supervised subprocess
    each (`subproc`), or one `BatchEnv` holding them all in arrays (`batched`); with episode
    returns and lengths recorded for the log."""
    if vec_env == "batched":
        from migsched.batch import BatchEnv

        return VecMonitor(BatchEnv(version, env_config, type_tasks, n_envs))
    if n_envs == 1 or vec_env == "dummy":
        return VecMonitor(DummyVecEnv([partial(make_env, version, env_config, type_tasks)] * n_envs))
    factories = [partial(worker_env, os.getpid(), version, env_config, type_tasks)] * n_envs
    return VecMonitor(SupervisedSubprocVecEnv(factories, start_method=START_METHOD))


# --- torch threads ----------------------------------------------------------------------------


def torch_threads(n_envs: int, vec_env: str) -> int:
    """The most torch threads on the CPU: up to 4 of this process's cores when the environments
    run in this process, one when they run in subprocesses (which need the cores)."""
    if n_envs > 1 and vec_env == "subproc":
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def runnable_elsewhere() -> int | None:
    """How many threads of other processes are runnable right now (Linux: /proc/loadavg, less
    this process's own runnable threads), or None where the system does not say."""
    try:
        runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        mine = 0
        for task in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{task}/stat") as stat:
                mine += stat.read().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError, ValueError):
        return None
    return max(0, runnable - mine)


def threads_for_free_cores(most: int, elsewhere: int | None) -> int:
    """Torch threads for the next update: the cores other processes leave free, at least one and
    at most `most`. Threads beyond the free cores only spin against the other processes: beside
    one busy process on 2 cores, two threads made training 3-6 times slower than one (docs/speed.md)."""
    if elsewhere is None:
        return most
    return max(1, min(most, len(os.sched_getaffinity(0)) - elsewhere))


class FreeCoreThreads(BaseCallback):
    """Before each PPO update, sets torch's threads to the cores no other process is using
    (`threads_for_free_cores`), so a run alone uses its cores and a run beside others does not
    fight them."""

    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = most

    def _on_rollout_end(self) -> None:
        threads = threads_for_free_cores(self.most, runnable_elsewhere())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        self.logger.record("time/torch_threads", threads)

    def _on_step(self) -> bool:
        return True
