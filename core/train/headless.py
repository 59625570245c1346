"""Training without the UI: :func:`train_headless` checks a training request
(:func:`~core.train.request.check_request`), runs it as the dashboard does, in a
:class:`~core.train.job.TrainingJob` (on every rank under torchrun: :func:`~core.train.launch.start_job`),
and waits; :func:`job_progress` turns a snapshot into a progress count."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from ..data.records import finite_or_none
from ..store.workspace import Workspace
from . import distributed
from .config import TrainConfig
from .job import TrainingJob, TrainingSnapshot
from .launch import start_job
from .request import TrainingRequest, check_request

__all__ = ["train_headless", "job_progress"]

_END_STATES = ("done", "failed", "stopped")


def job_progress(snapshot: TrainingSnapshot | dict[str, Any]) -> tuple[int, int]:
    """``(steps done, steps in all)`` of a job :meth:`TrainingJob.snapshot`, counted from its start
    (a resumed job counts from the epoch it resumed at), for progress bars."""
    spe = max(1, int(snapshot.get("steps_per_epoch") or 1))
    start = int(snapshot.get("start_epoch") or 0)
    total = max(1, int(snapshot.get("epochs") or 1) - start) * spe
    done = (int(snapshot.get("epoch") or 0) - start) * spe + int(snapshot.get("step") or 0) % spe
    return min(total, max(0, done)), total


def train_headless(
    workspace: Workspace | str | Path,
    dataset: str,
    *,
    epochs: int | None = None,
    config: TrainConfig | dict[str, Any] | None = None,
    resume: str | None = None,
    progress: Callable[[TrainingSnapshot], None] | None = None,
    origin: str = "cli",
) -> dict[str, Any]:
    """Train without the UI, through the same :class:`TrainingJob` the dashboard uses, and wait.

    Args:
        workspace: workspace or its folder.
        dataset: dataset name.
        epochs: final epoch number (overrides the config).
        config: a :class:`TrainConfig`, or a partial dict of overrides (on the recipe; when resuming,
            on the resumed run's config).
        resume: run id (or checkpoint path) to continue from.
        progress: called with :meth:`TrainingJob.snapshot` whenever the step, epoch or state changes.
        origin: recorded with the run (shown on the Train page): ``cli``, as ``python -m core train``
            uses it, or ``python``, ``torchrun``.

    Returns:
        JSON-able summary: ``run_id, state, epochs, val_dice, val_iou, val_accuracy, val_dice_fg,
        best_dice, best_checkpoint, last_checkpoint, bundle, device, wall_time_s, error, split``,
        and from the run's end (:func:`~core.train.finish.finish_run`) ``decision`` (tuned on
        validation), ``val_scores`` and ``test_scores`` (with that decision; ``None`` without test slices).
        Ctrl-C stops the job cleanly (state ``stopped``). Under torchrun (``torchrun
        --nproc_per_node=N -m core train ...``) every rank trains (:mod:`core.train.distributed`),
        rank 0 records the run and reports progress; the summary adds ``rank`` and ``world_size``
        (the scores are rank 0's).

    Raises:
        ValueError: bad config, unknown dataset, nothing to resume, a job already running.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)

    def request() -> TrainingRequest:  # called once torchrun's process group (if any) is joined
        who = "torchrun" if distributed.active() and origin == "cli" else origin
        return check_request(ws, dataset, config, epochs=epochs, resume=resume, origin=who)

    job = start_job(ws, request)
    if not distributed.is_main():
        progress = None
    last_key = None
    try:
        while not job.join(0.2):
            if progress is not None:
                snap = job.snapshot()
                key = (snap.state, snap.epoch, snap.step)
                if key != last_key:
                    last_key = key
                    progress(snap)
    except KeyboardInterrupt:
        job.stop()
        _wait_for_end(job)
    except BaseException:
        job.stop()
        _wait_for_end(job)
        raise
    snap = job.snapshot()
    if progress is not None:
        progress(snap)
    if distributed.active():
        return {**_summary(snap), "rank": distributed.rank(), "world_size": distributed.world_size()}
    return _summary(snap)


def _wait_for_end(job: TrainingJob) -> None:
    """Wait until ``job`` has recorded how it ended (``last.pt``, catalog row, bundle). Polls its state
    instead of joining its thread: on Python 3.11 a ``Thread.join`` interrupted by Ctrl-C marks the
    thread finished while it still runs (bpo-45274's fix), so a later join returns at once and the
    process would exit, killing the thread before it saved anything."""
    while job.state not in _END_STATES:
        time.sleep(0.05)


def _summary(snap: TrainingSnapshot) -> dict[str, Any]:
    last = snap.history[-1] if snap.history else {}
    return {
        "run_id": snap.run_id,
        "state": snap.state,
        "epochs": snap.epoch,
        "val_dice": finite_or_none(last.get("val_dice")),
        "val_iou": finite_or_none(last.get("val_iou")),
        "val_accuracy": finite_or_none(last.get("val_accuracy")),
        "val_dice_fg": finite_or_none(last.get("val_dice_fg")),
        "best_dice": finite_or_none(snap.best_dice),
        "best_checkpoint": snap.best_checkpoint,
        "last_checkpoint": snap.last_checkpoint,
        "bundle": snap.bundle,
        "device": snap.device,
        "wall_time_s": round(float(snap.wall_time_s), 3),
        "error": snap.error,
        "split": {"train": snap.train_slices, "val": snap.val_slices, "test": snap.test_slices},
        "decision": snap.test_scores.get("decision"),
        "val_scores": snap.test_scores.get("val"),
        "test_scores": snap.test_scores.get("test"),
    }
