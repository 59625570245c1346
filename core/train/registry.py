"""The process-wide record of training jobs: at most one running job per workspace (:func:`registry`);
and every run of a workspace as the Train page shows it, whichever process trains it
(:func:`live_runs`, :func:`run_snapshot`, :func:`stop_run`)."""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import SegDashError
from ..store.workspace import Workspace
from .job import TrainingJob
from .snapshot import TrainingSnapshot, snapshot_of_run

__all__ = ["JobRegistry", "registry", "live_runs", "run_snapshot", "stop_run"]


def _root_of(workspace: Workspace | str | Path) -> Path:
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    return Path(root).resolve()


class JobRegistry:
    """Process-wide record of training jobs: at most one running job per workspace.

    The dashboard keeps it across reruns and sessions (one per process), so a second browser tab
    sees the job the first one started.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}

    def start(self, job: TrainingJob) -> TrainingJob:
        """Register and start ``job``.

        Raises:
            ValueError: a job is already running in the same workspace.
        """
        with self._lock:
            running = self._active(_root_of(job.workspace))
            if running is not None and running.state not in ("queued", "running", "stopping"):
                raise SegDashError(
                    f"run {running.run_id} is {running.state} and its process is still finishing (writing its "
                    "bundle): try again in a few seconds"
                )
            if running is not None:
                raise SegDashError(f"a training job is already running for this workspace: {running.run_id}")
            self._jobs[job.run_id] = job
            try:
                job.start()
            except BaseException:
                del self._jobs[job.run_id]
                raise
        return job

    def get(self, run_id: str) -> TrainingJob | None:
        with self._lock:
            return self._jobs.get(run_id)

    def active(self, workspace_root: Workspace | str | Path) -> TrainingJob | None:
        """The queued, running or stopping job of that workspace, if any."""
        with self._lock:
            return self._active(_root_of(workspace_root))

    def _active(self, root: Path) -> TrainingJob | None:
        for job in self._jobs.values():
            if _root_of(job.workspace) == root and job.is_active():
                return job
        return None

    def jobs(self) -> list[TrainingJob]:
        """All jobs of this process, oldest first."""
        with self._lock:
            return list(self._jobs.values())


_REGISTRY = JobRegistry()


def registry() -> JobRegistry:
    """The process-wide :class:`JobRegistry`."""
    return _REGISTRY


def run_snapshot(ws: Workspace, run_id: str) -> TrainingSnapshot | None:
    """The progress of ``run_id``: the live snapshot of this process's job, else what its process
    last wrote into the catalog (:func:`~core.train.snapshot.snapshot_of_run`); ``None``: no such run."""
    job = _REGISTRY.get(run_id)
    if job is not None and _root_of(job.workspace) == _root_of(ws):
        return job.snapshot()
    run = ws.run(run_id)
    return None if run is None else snapshot_of_run(run, ws.run_epochs(run_id))


def live_runs(ws: Workspace) -> list[TrainingSnapshot]:
    """Every active run of the workspace (queued, running, stopping), newest first, whichever
    process trains it: this server, another one, ``python -m core train``, torchrun."""
    out = []
    for run in ws.runs(active=True):
        snap = run_snapshot(ws, run.run_id)
        if snap is not None and snap.state in ("queued", "running", "stopping"):
            out.append(snap)
    return out


def stop_run(ws: Workspace, run_id: str) -> None:
    """Stop ``run_id``: this process's job at once (within one step), another process's through the
    catalog (its heartbeat reads the request within seconds)."""
    job = _REGISTRY.get(run_id)
    if job is not None and _root_of(job.workspace) == _root_of(ws) and job.is_active():
        job.stop()
    else:
        ws.request_stop(run_id)
