"""A worker process started ahead: ``python -m core.train.process --spare`` imports what training
needs (torch, the network, smp's losses) and then waits on its standard input for the request, so
a run that takes it starts training without paying for the process start and the imports.

Why: "Train on my strokes" has a minute from the press to its first prediction on 2 cores, and a
fresh worker spends seconds of it starting and importing before its first step: 11.0 s in the
first round, 6.8 s in the second, against 0.6-1.1 s with a spare (``benchmarks/bench_live.py``, the
shared 2-core machine at load 7). The Label page starts one when it opens (through
:func:`core.workflow.live.warm_up`), while the user draws; :class:`~core.train.process.ProcessJob`
takes it (:func:`take`) when there is one and starts a fresh worker otherwise, so a run from the
Train page or a live round are the same worker either way. One spare per server process at most;
it ends by itself, having trained nothing, when its server does (the end of its standard input)
or after :data:`IDLE_S` without a request (the page starts another as it renders).

Example:
    >>> prestart()                 # doctest: +SKIP
    >>> wait_ready(60)             # doctest: +SKIP
    True
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import threading

from ..nn.device import sharing_cpu, worker_env

__all__ = ["prestart", "take", "wait_ready", "forget_output", "READY", "IDLE_S"]

READY = b"ready\n"  # what a spare writes to its standard output once it waits for its request
IDLE_S = 1800.0  # a spare never taken ends after this long (it holds torch's few hundred MB meanwhile)
_LOCK = threading.Lock()
_SPARE: list[subprocess.Popen] = []  # this server's one spare worker, if any
_ENV: dict[int, dict[str, str]] = {}  # the settings each spare was started with (_settings), by process id
# what a worker's environment sets for its training (the rest may change as libraries load: not compared)
_SETTINGS = ("SEGDASH_", "OMP_", "MKL_", "CUDA_VISIBLE_DEVICES", "PYTHONPATH")


def _settings(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(_SETTINGS)}


_READY: set[int] = set()  # process ids of the spares seen ready


def prestart() -> None:
    """Start a spare worker unless one is alive already (any thread; returns at once)."""
    with _LOCK:
        if _SPARE and _SPARE[0].poll() is None:
            return
        _SPARE.clear()
        env = worker_env()
        proc = subprocess.Popen(
            [sys.executable, "-m", "core.train.process", "--spare"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,  # its READY line; it writes to its run's log once it has one
            stderr=subprocess.STDOUT,
            env=env,
        )
        _ENV[proc.pid] = _settings(env)
        _SPARE.append(proc)
        _yield_cpu(proc.pid)


def _yield_cpu(pid: int) -> None:
    """Lower the spare's priority as :func:`~core.nn.device.share_cpu_for_background` lowers a
    training thread's (``SEGDASH_NICE``, default 10): its imports, while the user draws, leave the
    CPU to the server's reruns. Its job's thread inherits it and adds nothing more
    (:func:`~core.train.process.main`), as a fresh worker's does."""
    if not (sharing_cpu() and sys.platform.startswith("linux")):
        return
    try:
        want = int(os.environ.get("SEGDASH_NICE") or 10)
        os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, pid) + max(0, want)))
    except (OSError, ValueError):  # not allowed here, or a bad variable (the job reports it)
        pass


def take() -> subprocess.Popen | None:
    """The spare worker, still alive, for a run to send its request to (then no longer the spare);
    ``None`` when there is none, or when this process's environment for a worker has changed since
    the spare started (it would train under the old one: it is ended instead)."""
    with _LOCK:
        proc = _SPARE.pop() if _SPARE else None
    if proc is None:
        return None
    if proc.poll() is not None or _ENV.pop(proc.pid, None) != _settings(worker_env()):  # died, or started otherwise
        _close(proc)  # the end of its input ends a spare that is still waiting
        return None
    return proc


def wait_ready(timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the spare to have done its imports; False when there is no
    spare or it is not ready by then (it is still taken as it is: it then imports after the press)."""
    with _LOCK:
        proc = _SPARE[0] if _SPARE else None
    if proc is None or proc.stdout is None:
        return False
    if proc.pid in _READY:
        return True
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    if readable and proc.stdout.readline() == READY:
        _READY.add(proc.pid)
        return True
    return False


def _close(proc: subprocess.Popen) -> None:
    for pipe in (proc.stdin, proc.stdout):
        with contextlib.suppress(OSError, AttributeError):
            pipe.close()


def forget_output(proc: subprocess.Popen) -> None:
    """Close this process's end of a taken spare's output pipe (the worker writes to its run's log
    from then on)."""
    _READY.discard(proc.pid)
    with contextlib.suppress(OSError, AttributeError):
        proc.stdout.close()  # type: ignore[union-attr]
