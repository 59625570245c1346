"""The process-wide record of training jobs: at most one running job per workspace (:func:`registry`)."""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import SegDashError
from ..store.workspace import Workspace
from .job import TrainingJob

__all__ = ["JobRegistry", "registry"]


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
