"""Training in a worker process: the dashboard's jobs compute outside the server's process.

Why: a training thread inside the Streamlit server shares the server's interpreter lock (the GIL)
with every page being rendered. Each optimisation step dispatches hundreds of operations from
Python, so while a few users click through the pages the step waits for the lock, not for a core:
measured on 2 cores with 4 users, training in the server kept 12 % of its speed while the server
process as a whole used less than one core (``benchmarks/bench_load.py``, README "Load"). A process
of its own has its own interpreter; the operating system shares the cores by priority
(:func:`~core.nn.device.share_cpu_for_background`, inherited environment included).

:class:`ProcessJob` is what the pages hold: the same interface as
:class:`~core.train.job.TrainingJob` (``start``, ``stop``, ``join``, ``is_active``, ``snapshot``,
``state``, ``run_id``, ``dataset``, ``workspace``), kept in the same process-wide registry
(:func:`~core.train.registry.registry`), so a page refresh or a second tab finds it. The work itself
is a plain :class:`TrainingJob` in ``python -m core.train.process`` (:func:`main`), made from the
:class:`~core.train.request.TrainingRequest` this process checked (sent as one JSON line, not checked
again): the run's row is recorded (queued, owned by the worker) as the worker starts, so every page
lists it at once, and the worker's job writes it as any job does (epochs, checkpoints, heartbeat with progress every
2 s); the :class:`ProcessJob` reads its snapshot from there (:func:`~core.train.snapshot.snapshot_of_run`).
Stop: a signal to the worker (``SIGUSR1``: it stops within one step), and the catalog's stop request
as well (what other processes use). A worker that dies without recording an end (killed, out of
memory) leaves its run ``failed`` with the exit status and the end of its log
(``runs/<id>/worker.log``). A worker whose server ends stops as Stop would, keeping ``last.pt``, but
records the run ``interrupted`` (not ``stopped``: nobody asked for it) the moment it notices, and
the run resumes from there. It notices within a tenth of a second whatever the server died of:
the server holds the write end of the worker's standard input open for as long as it lives, so its
end (killed, crashed, stopped) is an end-of-file the worker reads at once (:func:`watch_server`);
the parent's process id is polled too, and Ctrl-C (the same process group) or ``SIGTERM`` (a
service stopped) count the same. Such a stop comes between steps, never while an epoch is being
recorded, so the epochs in the catalog are exactly those ``last.pt`` holds.

Where training runs is :func:`start_training`'s choice: a worker process by default,
``SEGDASH_WORKER_PROCESS=0`` keeps it in a thread of this process (what scripts and tests that
want the job's live object use directly: ``registry().start(TrainingJob(...))``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from ..data.owner import Owner
from ..errors import SegDashError
from ..nn.device import on_stop_signal, server_gone, signal_stop, use_worker_process, worker_env
from ..store.schema import ACTIVE_RUN_STATES
from ..store.workspace import Workspace
from . import spare
from .config import TrainConfig
from .job import TrainingJob, first_snapshot
from .registry import registry
from .request import TrainingRequest, check_request
from .snapshot import JobHandle, mark_worker, snapshot_of_run

__all__ = ["ProcessJob", "start_training", "main", "worker_job", "watch_server"]

log = logging.getLogger(__name__)
_POLL_S = 0.5  # how often the job reads its run's row (the worker's heartbeat writes it every 2 s)
_WATCH_S = 0.1  # how often the worker looks whether its server is still there (besides the pipe's end)
_LOG_TAIL = 1500  # characters of the worker's log quoted when it dies


def start_training(
    workspace: Workspace,
    dataset: str,
    config: TrainConfig,
    *,
    resume_from: str | None = None,
    origin: str = "app",
    deadline: float | None = None,
) -> TrainingJob | ProcessJob:
    """Check and start a training run of ``dataset`` the way the dashboard does: in a worker process
    (:class:`ProcessJob`; a spare one started ahead when there is one, :mod:`core.train.spare`)
    unless ``SEGDASH_WORKER_PROCESS=0``, registered in the process-wide registry either way. The
    Train page and "Train on my strokes" (``origin="live"``, with a ``deadline``) both call it.

    Raises:
        ValueError: what :func:`~core.train.request.check_request` refuses (checked here, before any
            process starts), or a job already running in the workspace.
    """
    request = check_request(workspace, dataset, config, resume=resume_from, origin=origin, deadline=deadline)
    if use_worker_process():
        return registry().start(ProcessJob(request, workspace))
    return registry().start(TrainingJob.from_request(request, workspace))


class ProcessJob(JobHandle):
    """A checked :class:`~core.train.request.TrainingRequest` run by a worker process (see the module
    docstring).

    Args:
        request: the request, checked in this process.
        workspace: its workspace (default: ``request.workspace``).
    """

    def __init__(self, request: TrainingRequest, workspace: Workspace | None = None):
        self.request, self.workspace = request, workspace or Workspace(request.workspace)
        self.run_id, self.dataset, self.config = request.run_id, request.dataset, request.config
        self.origin, self.resumed_from = request.origin, request.resumed_from
        self._lock = threading.Lock()
        self._snap = first_snapshot(request)
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._stop_asked = False

    def __repr__(self) -> str:
        return f"ProcessJob({self.run_id!r}, state={self.state!r})"

    @property
    def pid(self) -> int | None:
        """The worker's process id, once started."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> ProcessJob:
        """Launch the worker process and the thread that follows it (once)."""
        if self._proc is not None:
            raise SegDashError(f"job {self.run_id} was started already")
        run_dir = self.workspace.run_dir(self.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = run_dir / "worker.log"  # the server's directory, as paths are given
        spec = {"parent": os.getpid(), "request": self.request.to_dict(), "log": str(log_path)}
        self._proc = spare.take()  # a worker started ahead, its imports done (or under way)
        if self._proc is not None:
            spare.forget_output(self._proc)  # it writes to the run's log once it has the request
        else:
            with open(log_path, "ab") as log_file:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "core.train.process"],
                    stdin=subprocess.PIPE,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=worker_env(),
                )
        mark_worker(self._proc.pid)
        try:  # the run's row now, owned by the worker, so that every page lists it at once
            self.workspace.create_run(
                self.run_id,
                self.dataset,
                self.config.to_dict(),
                state="queued",
                owner=Owner(self._proc.pid, socket.gethostname()),
                origin=self.origin,
            )
            if self.resumed_from:
                self.workspace.update_run(self.run_id, extra={"resumed_from": self.resumed_from})
        except BaseException:
            self._proc.kill()
            raise
        assert self._proc.stdin is not None
        # one line: the request and this process's id; the pipe then stays open for this process's life:
        # its end tells the worker that the server is gone (watch_server), however it ended
        self._proc.stdin.write(json.dumps(spec).encode() + b"\n")
        self._proc.stdin.flush()
        self._thread = threading.Thread(target=self._follow, name=f"segdash-worker-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop: it does so within one step and keeps ``last.pt``."""
        with self._lock:
            self._stop_asked = True
            if self._snap.state in ("queued", "running"):
                self._snap.state = "stopping"
        self._signal_stop()  # and again from the follower until the worker could be signalled

    def _signal_stop(self) -> bool:
        """Record the stop request (the worker's heartbeat reads it on any platform) and, once the
        worker runs its job (it handles the signal from then on), signal it; True once signalled."""
        try:
            run = self.workspace.run(self.run_id)
            if run is None:
                return False
            self.workspace.request_stop(self.run_id)
            if run["state"] == "queued":  # still starting: the signal would kill it
                return False
        except Exception:  # noqa: BLE001 - a busy catalog: the follower asks again
            log.debug("stop request of %s not recorded", self.run_id, exc_info=True)
            return False
        if self._proc is not None:
            signal_stop(self._proc)  # within one step
        return True

    # -- following the worker --------------------------------------------------------------
    def _refresh(self) -> bool:
        """Read the run's row into the snapshot; False while the worker has not recorded it yet."""
        run = self.workspace.run(self.run_id)
        if run is None:
            return False
        snap = replace(snapshot_of_run(run, self.workspace.run_epochs(self.run_id)), origin="this server")
        with self._lock:
            # stopped only once the worker has ended (it still writes the bundle after the catalog says
            # stopped): until then a Resume would be refused, so the page must not say stopped yet
            alive = self._proc is not None and self._proc.poll() is None
            if self._stop_asked and (snap.state in ("queued", "running") or (alive and snap.state == "stopped")):
                snap = replace(snap, state="stopping")
            self._snap = snap
        return True

    def _follow(self) -> None:
        proc = self._proc
        assert proc is not None
        signalled = False
        while proc.poll() is None:
            try:
                self._refresh()
                if self._stop_asked and not signalled:  # a stop asked while the worker was starting
                    signalled = self._signal_stop()
            except Exception:  # noqa: BLE001 - a busy catalog: read again at the next poll
                log.debug("reading run %s", self.run_id, exc_info=True)
            time.sleep(_POLL_S)
        code = proc.returncode
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]
        try:
            seen = self._refresh()
        except Exception:  # noqa: BLE001
            seen = False
        recorded = self.state not in ACTIVE_RUN_STATES and (self.state != "interrupted" or code == 0)
        if seen and recorded:  # the worker wrote its outcome (an interrupted one too: SIGTERM)
            return
        why = f"the training process ended unexpectedly (exit status {code}"
        why += ", killed: out of memory?)" if code in (-9, 137) else ")"
        tail = self._log_tail()
        error = why + (f"; its last output: {tail}" if tail else "")
        log.error("training run %s: %s", self.run_id, error)
        try:
            if seen:
                self.workspace.update_run(self.run_id, state="failed", error=error)
        except Exception:  # noqa: BLE001
            log.exception("recording the end of run %s", self.run_id)
        with self._lock:
            self._snap = replace(self._snap, state="failed", error=error)

    def _log_tail(self) -> str:
        try:
            text = (self.workspace.run_dir(self.run_id) / "worker.log").read_text(errors="replace")
        except OSError:
            return ""
        return text.strip()[-_LOG_TAIL:]


def watch_server(fd: int | None = None) -> threading.Event:
    """In the worker: an event set as soon as the server that started it is gone. A thread reads
    the worker's standard input (``fd``), whose write end the server holds open for its whole life,
    to its end: an end-of-file at once when the server ends, killed included. (The worker's loop also
    polls its parent's id, :func:`~core.nn.device.server_gone`, in case another process kept the pipe
    open.) The file descriptor is read raw: a daemon thread blocked in a buffered read would hold
    its lock at the interpreter's exit."""
    gone = threading.Event()
    fd = sys.stdin.fileno() if fd is None else fd

    def read_to_end() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:  # closed: gone as well
            pass
        gone.set()

    threading.Thread(target=read_to_end, name="segdash-server-watch", daemon=True).start()
    return gone


def worker_job(spec: dict[str, Any]) -> TrainingJob:
    """The worker's job: its server's request (``spec["request"]``), as it was checked there."""
    return TrainingJob.from_request(TrainingRequest.from_dict(spec["request"]))


def _import_for_training() -> None:
    """What a run imports only once it builds its loss (smp's losses load timm: seconds), done
    before the request arrives in a worker started ahead."""
    import segmentation_models_pytorch.losses  # noqa: F401


def _log_to(path: str) -> None:
    """Send this process's output (its standard output and error) to the run's log from now on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """The worker: read the request its server checked (one JSON line) from standard input, train,
    exit 0 once the run's outcome (done, stopped, interrupted or failed) is in the catalog.
    ``SIGUSR1`` stops it (the Stop button); its server's end, Ctrl-C or ``SIGTERM`` interrupt it
    (:meth:`~core.train.job.TrainingJob.interrupt`). ``--spare``: started ahead
    (:mod:`core.train.spare`), it does the imports, says :data:`~core.train.spare.READY`, then
    waits; an end of its input before any request (its server ended), or no request within
    :data:`~core.train.spare.IDLE_S`, ends it, having done nothing."""
    if "--spare" in (sys.argv[1:] if argv is None else argv):
        _import_for_training()
        with contextlib.suppress(OSError):  # taken before it was ready: its server no longer reads the line
            os.write(1, spare.READY)
        if not select.select([sys.stdin.buffer], [], [], spare.IDLE_S)[0]:
            return 0  # never taken: its memory back (the page starts another when it renders)
        if hasattr(os, "getpriority") and os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.environ["SEGDASH_NICE"] = "0"  # its server lowered its priority already (spare._yield_cpu)
    line = sys.stdin.buffer.readline()
    if not line.strip():
        return 0
    spec: dict[str, Any] = json.loads(line)
    if spec.get("log"):
        _log_to(spec["log"])
    job = worker_job(spec)
    parent = spec.get("parent")
    gone = watch_server()
    on_stop_signal(job.stop)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, lambda *_: gone.set())  # a service stopped: as if its server ended
    registry().start(job)
    interrupted = 0.0  # when the server's end was noticed
    while job.state in ACTIVE_RUN_STATES:  # polled, not joined: see core.train.headless._wait_for_end
        try:
            gone.wait(_WATCH_S)
            if not interrupted and (gone.is_set() or server_gone(parent)):
                interrupted = time.monotonic()
                job.interrupt()  # recorded interrupted now; the job stops at its next step, last.pt kept
                print(f"run {job.run_id}: the server that started it ended: interrupted", flush=True)
        except KeyboardInterrupt:  # Ctrl-C in the server's terminal reaches its workers too
            gone.set()
    snap = job.snapshot()
    took = f" ({time.monotonic() - interrupted:.1f} s after its server's end)" if interrupted else ""
    print(f"run {job.run_id}: {snap.state}{took} {snap.error}".strip(), flush=True)
    return 0


if __name__ == "__main__":
    _code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # the outcome is in the catalog and on disk: skip the interpreter's teardown (seconds with torch
    # loaded), so that the page reads the run stopped, and can resume it, as soon as the worker is done
    os._exit(_code)
