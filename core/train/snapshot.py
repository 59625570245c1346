"""A training run's progress as a typed record: :class:`TrainingSnapshot`, copied from a job of this
process (:meth:`~core.train.job.TrainingJob.snapshot`) or read from the catalog for a run that
another process trains (:func:`snapshot_of_run`), and what the job's heartbeat writes into the
catalog for the others to read (:func:`progress_record`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..data.owner import Owner, host_token
from ..data.records import Record
from ..store.records import RunRecord
from ..store.schema import ACTIVE_RUN_STATES

__all__ = [
    "JOB_STATES",
    "ORIGIN_NAMES",
    "TrainingSnapshot",
    "JobHandle",
    "progress_record",
    "snapshot_of_run",
    "origin_label",
    "held_out_ious",
    "mark_worker",
]

JOB_STATES = ("queued", "running", "stopping", "done", "failed", "stopped", "interrupted")
_PROGRESS_KEYS = ("epoch", "start_epoch", "epochs", "step", "steps_per_epoch", "eta_s", "notes", "first_step_at")
# the origins of :data:`~core.store.schema.RUN_ORIGINS` in words
ORIGIN_NAMES = {"app": "dashboard", "cli": "CLI", "python": "Python", "torchrun": "torchrun", "live": "live loop"}


@dataclass
class TrainingSnapshot(Record):
    """A training job's progress, as :meth:`TrainingJob.snapshot` copies it (``to_dict()`` for JSON).

    Attributes:
        run_id, dataset: the run and the dataset it trains on.
        state: one of :data:`JOB_STATES` (``interrupted``: the server that started it ended, or,
            for a run read from the catalog, its process is gone); ``error`` its message when ``failed``.
        epoch: last completed epoch (``start_epoch`` for a resumed run at its start); ``epochs`` the
            final one; ``step`` the step within the current epoch, of ``steps_per_epoch``.
        eta_s: estimated seconds left (``None`` before the first steps).
        first_step_at: ``time.time()`` when its first optimisation step ended (``None`` before).
        device: where it trains, in words.
        history: per-epoch dicts: ``epoch, train_loss, val_loss, val_dice, val_iou, val_accuracy,
            val_pixel_error, val_dice_per_class, val_iou_per_class, lr, images_per_s, time_s`` and
            for binary data ``val_dice_fg, val_iou_fg``.
        best_dice, best_checkpoint, last_checkpoint: the best validation Dice and the checkpoints.
        resumed_from: the run (or checkpoint) it continues, if any.
        train_slices, val_slices, test_slices: the split (:func:`~core.train.data.plan_split`);
            notes: what the user should know about it.
        test_scores: the decision tuned on validation, and the scores with it of the validation
            and test slices when the run ended (:func:`~core.train.finish.finish_run`).
        wall_time_s: seconds from start to end; bundle: the reproducibility bundle's path.
        origin: who trains it, in words (:func:`origin_label`): ``this server``, ``CLI 4242@host``.
    """

    run_id: str
    dataset: str
    state: str = "queued"
    error: str = ""
    epoch: int = 0
    start_epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    eta_s: float | None = None
    first_step_at: float | None = None
    device: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    best_dice: float | None = None
    best_checkpoint: str = ""
    last_checkpoint: str = ""
    resumed_from: str = ""
    train_slices: list[int] = field(default_factory=list)
    val_slices: list[int] = field(default_factory=list)
    test_slices: list[int] = field(default_factory=list)
    test_scores: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    bundle: str = ""
    origin: str = ""


class JobHandle:
    """What a page holds of a training job, whichever way it computes: its progress in ``_snap``
    (guarded by ``_lock``), kept up by a background thread ``_thread`` (the job's worker thread, or
    the thread following a worker process). Subclasses: :class:`~core.train.job.TrainingJob`,
    :class:`~core.train.process.ProcessJob`."""

    _lock: threading.Lock
    _snap: TrainingSnapshot
    _thread: threading.Thread | None

    @property
    def state(self) -> str:
        with self._lock:
            return self._snap.state

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the background thread; returns True when it has finished."""
        if self._thread is None:
            return self.state not in ACTIVE_RUN_STATES
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_active(self) -> bool:
        """True while the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> TrainingSnapshot:
        """A copy of the job's progress (safe to keep and to read from any thread); see
        :class:`TrainingSnapshot` for its fields (it reads like a dict too: ``snap["state"]``)."""
        with self._lock:
            s = self._snap
            return replace(
                s,
                history=[dict(h) for h in s.history],
                notes=list(s.notes),
                train_slices=list(s.train_slices),
                val_slices=list(s.val_slices),
                test_slices=list(s.test_slices),
                test_scores=dict(s.test_scores),
            )


def progress_record(snap: TrainingSnapshot, now: float | None = None) -> dict[str, Any]:
    """What a job's heartbeat writes into its run's ``progress`` column: ``epoch, start_epoch,
    epochs, step, steps_per_epoch, eta_s, notes, first_step_at`` and ``at`` (when)."""
    out = {k: getattr(snap, k) for k in _PROGRESS_KEYS}
    out["notes"] = list(snap.notes)
    out["at"] = time.time() if now is None else now
    return out


_WORKERS: set[int] = set()  # process ids of this server's training workers (core.train.process)


def mark_worker(pid: int) -> None:
    """Record ``pid`` as a worker process of this server: its runs read as trained by this server."""
    _WORKERS.add(int(pid))


def held_out_ious(run: RunRecord) -> dict[str, float | None]:
    """``{"val": IoU, "test": IoU}`` of a finished run, as its end scored them with the decision it
    tuned (:func:`~core.train.finish.finish_run`: whole slices both): foreground IoU of a binary
    run, mean IoU over classes of a multi-class one; ``None`` where not scored (no test slices, a
    run from before, one still going).

    Example:
        >>> from core.store.records import RunRecord
        >>> r = RunRecord(run_id="r", dataset="d", created=0.0, state="done",
        ...               extra={"finish": {"val": {"iou_fg": 0.75, "mean_iou": 0.8}, "test": {"iou_fg": 0.81}}})
        >>> held_out_ious(r)
        {'val': 0.75, 'test': 0.81}
    """
    finish = (run.extra or {}).get("finish") or {}
    out: dict[str, float | None] = {}
    for part in ("val", "test"):
        scores = finish.get(part) or {}
        value = scores.get("iou_fg", scores.get("mean_iou"))
        out[part] = None if value is None else float(value)
    return out


def origin_label(run: RunRecord, me: Owner | None = None) -> str:
    """Who trains ``run``, in words. An active run: ``this server`` (this process), else where it
    was started from and its process: ``CLI 4242@host``, ``other server 77@host``. A finished one:
    where it was started from (``dashboard``, ``CLI``, ...; ``""`` when not recorded)."""
    if run.state not in ACTIVE_RUN_STATES:
        return ORIGIN_NAMES.get(run.origin, "")
    me = me or Owner.current()
    if run.owner_pid is None:
        return "unknown process"
    here = host_token(run.owner_host or "") == host_token(me.host)
    if here and (run.owner_pid == me.pid or run.owner_pid in _WORKERS):
        return "this server"
    word = "other server" if run.origin == "app" else ORIGIN_NAMES.get(run.origin, "process")
    return f"{word} {run.owner_pid}@{run.owner_host}"


def snapshot_of_run(run: RunRecord, history: list[dict[str, Any]], now: float | None = None) -> TrainingSnapshot:
    """The progress of a run another process trains, from its catalog row and ``history`` (its
    epochs): epoch, step and ETA as of its last heartbeat (the ETA less the time since), ``stopping``
    once a stop was requested."""
    p = run.progress or {}
    now = time.time() if now is None else now
    eta = p.get("eta_s")
    if eta is not None and p.get("at"):
        eta = max(0.0, float(eta) - max(0.0, now - float(p["at"])))
    state = "stopping" if run.state in ("queued", "running") and run.stop_requested else run.state
    last_epoch = int(history[-1]["epoch"]) if history else 0
    extra = run.extra or {}
    return TrainingSnapshot(
        run_id=run.run_id,
        dataset=run.dataset,
        state=state,
        error=run.error,
        epoch=max(last_epoch, int(p.get("epoch") or 0)),
        start_epoch=int(p.get("start_epoch") or 0),
        epochs=int(p.get("epochs") or run.config.get("epochs") or 0),
        step=int(p.get("step") or 0),
        steps_per_epoch=int(p.get("steps_per_epoch") or run.config.get("steps_per_epoch") or 0),
        eta_s=eta,
        first_step_at=p.get("first_step_at"),
        device=run.device,
        history=[dict(h) for h in history],
        best_dice=run.best_dice,
        best_checkpoint=run.best_checkpoint,
        last_checkpoint=run.last_checkpoint,
        resumed_from=str(extra.get("resumed_from") or ""),
        train_slices=list(extra.get("train_slices") or []),
        val_slices=list(extra.get("val_slices") or []),
        test_slices=list(extra.get("test_slices") or []),
        test_scores=dict(extra.get("finish") or {}),
        notes=list(p.get("notes") or []),
        wall_time_s=float(run.wall_time or 0.0),
        origin=origin_label(run),
    )
