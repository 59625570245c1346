"""A training run in a background thread: :class:`TrainingJob` (its state, snapshot, heartbeat and
the catalog row of its outcome), running one checked :class:`~core.train.request.TrainingRequest`.
The worker never touches the UI, catches every error into the ``failed`` state, and stops within
one optimisation step (or at the request's deadline). Its work: :func:`~core.train.prepare.prepare_run`,
then :func:`core.train.loop.fit` with the run's handlers (:mod:`core.train.handlers`), then
:func:`~core.train.finish.finish_run`; :mod:`core.train.registry` keeps one running job per workspace.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import torch

from ..data.owner import host_token
from ..data.records import finite_or_none
from ..errors import SegDashError
from ..nn.device import amp_dtype_for, device_label, select_device, share_cpu_for_background
from ..store.schema import ACTIVE_RUN_STATES
from ..store.workspace import Workspace
from . import distributed, prepare
from .bundle import write_bundle
from .config import TrainConfig
from .events import Events, Stopped
from .failures import failure_message, is_disk_full_error
from .finish import finish_run
from .handlers import run_handlers
from .loop import build_training, fit
from .recorder import RunContext
from .request import TrainingRequest, check_request
from .snapshot import JOB_STATES, JobHandle, TrainingSnapshot, progress_record

__all__ = ["JOB_STATES", "DEADLINE_MIN_STEPS", "TrainingJob", "TrainingSnapshot", "first_snapshot", "steps_taken"]

log = logging.getLogger(__name__)

# the worker's process writes its heartbeat, progress and state into the run's catalog row this often, and
# reads a stop requested there: what other processes show of the run is this old at most
_HEARTBEAT_S = 2.0
# a request's deadline stops the run only once it has taken this many optimisation steps: a run stopped
# before would keep a network that never saw its data (a live round on a slow machine)
DEADLINE_MIN_STEPS = 3


def first_snapshot(request: TrainingRequest) -> TrainingSnapshot:
    """A request's progress before its first step."""
    return TrainingSnapshot(
        run_id=request.run_id,
        dataset=request.dataset,
        epoch=request.start_epoch,
        start_epoch=request.start_epoch,
        epochs=request.config.epochs,
        steps_per_epoch=request.config.steps_per_epoch,
        resumed_from=request.resumed_from,
        origin="this server",
    )


def steps_taken(snap: TrainingSnapshot) -> int:
    """Optimisation steps a run's snapshot has taken since its start (a resumed run: since it resumed)."""
    return int(snap.step) + max(0, int(snap.epoch) - int(snap.start_epoch)) * int(snap.steps_per_epoch)


def _queued_here(run: Any) -> bool:
    """The run's row was recorded, queued, for this very process (the server that launched this
    worker records it, owned by the worker, so that every page lists it at once)."""
    return (
        run["state"] == "queued"
        and run["owner_pid"] == os.getpid()
        and host_token(run["owner_host"] or "") == host_token(socket.gethostname())
    )


class TrainingJob(JobHandle):
    """One training run in a background thread.

    Args:
        workspace: the workspace (a :class:`~core.store.workspace.Workspace` or its folder).
        dataset: dataset name; its labeled slices are used.
        config: the training config (its model's ``n_classes`` is replaced by the dataset's).
        run_id: run id; default ``<dataset>-<date>-<time>-<random>``.
        resume_from: a run id or a checkpoint path to continue from (see :mod:`core.train`).
        origin: where it is started from, recorded with the run (``app``, ``cli``, ``python``,
            ``torchrun``: :data:`~core.store.schema.RUN_ORIGINS`).
        deadline: ``time.time()`` at which the run stops as if asked to (``last.pt`` kept), if any.

    The arguments make a request checked by :func:`~core.train.request.check_request`; a request
    checked already (the worker process's, torchrun's) makes a job with :meth:`from_request`.

    Raises:
        ValueError: unknown dataset, no labeled slices, unusable checkpoint, or a checkpoint that
            has already reached ``config.epochs``.

    Start it through :func:`~core.train.registry.registry` (``registry().start(job)``), which refuses a
    second running job in the same workspace; then poll :meth:`snapshot`.
    """

    def __init__(
        self,
        workspace: Workspace | str | Path,
        dataset: str,
        config: TrainConfig | None = None,
        run_id: str | None = None,
        resume_from: str | Path | None = None,
        origin: str = "python",
        deadline: float | None = None,
    ):
        ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        request = check_request(
            ws, dataset, config, resume=resume_from, run_id=run_id, origin=origin, deadline=deadline
        )
        self._adopt(request, ws)

    @classmethod
    def from_request(cls, request: TrainingRequest, workspace: Workspace | None = None) -> TrainingJob:
        """The job of a checked ``request`` (not checked again), on ``workspace`` (default: its own)."""
        job = cls.__new__(cls)
        job._adopt(request, workspace or Workspace(request.workspace))
        return job

    def _adopt(self, request: TrainingRequest, workspace: Workspace) -> None:
        self.request, self.workspace = request, workspace
        self.run_id, self.dataset, self.config, self.origin = (
            request.run_id,
            request.dataset,
            request.config,
            request.origin,
        )
        self.resume_path = Path(request.resume_path) if request.resume_path else None
        self.resumed_from = request.resumed_from
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interrupted = False
        self._thread: threading.Thread | None = None
        self._snap = first_snapshot(request)

    def __repr__(self) -> str:
        return f"TrainingJob({self.run_id!r}, state={self.state!r})"

    # -- control (any thread; state, join, is_active, snapshot: JobHandle) ----------------------
    def start(self) -> TrainingJob:
        """Record the run in the catalog (queued; unless its row was recorded for this process by
        the server that launched it, or rank 0 records it) and launch the worker thread (once)."""
        if self._thread is not None:
            raise SegDashError(f"job {self.run_id} was started already")
        ws = self.workspace
        if getattr(self.workspace, "records_runs", True):
            run = ws.run(self.run_id)
            if run is None:
                ws.create_run(self.run_id, self.dataset, self.config.to_dict(), state="queued", origin=self.origin)
            elif not _queued_here(run):
                raise SegDashError(f"a run named {self.run_id!r} exists already")
        if self.resumed_from:
            ws.update_run(self.run_id, extra={"resumed_from": self.resumed_from})
        self._thread = threading.Thread(target=self._run, name=f"segdash-train-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop; it does so within one optimisation step and keeps ``last.pt``."""
        self._stop.set()
        with self._lock:
            if self._snap.state in ("queued", "running"):
                self._snap.state = "stopping"

    def interrupt(self) -> None:
        """Stop because the process that started the run is gone (its server ended), not because
        anyone asked: the catalog reads ``interrupted`` at once (only over a state still active: an
        outcome already written stays), the job stops as :meth:`stop` does, keeping ``last.pt``,
        and records ``interrupted`` as its outcome; the run resumes from ``last.pt``."""
        self._interrupted = True
        self.stop()
        try:
            self.workspace.beat(self.run_id, state="interrupted")
        except Exception:  # noqa: BLE001 - a busy catalog: the outcome is written when the job ends
            log.warning("recording run %s as interrupted", self.run_id, exc_info=True)

    # -- worker ----------------------------------------------------------------------------
    def _set(self, **values: Any) -> None:
        with self._lock:
            if values.get("state") == "running" and self._snap.state == "stopping":
                values.pop("state")
            unknown = set(values) - set(self._snap.keys())
            if unknown:
                raise AttributeError(f"a training snapshot has no {sorted(unknown)}")
            for key, value in values.items():
                setattr(self._snap, key, value)

    def _check_stop(self) -> None:
        deadline = self.request.deadline
        if self._stop.is_set():
            raise Stopped()
        if deadline is not None and time.time() >= deadline:
            with self._lock:
                taken = steps_taken(self._snap)
            if taken >= DEADLINE_MIN_STEPS:
                raise Stopped()

    def _run(self) -> None:
        share_cpu_for_background()  # first, so the OpenMP threads started here inherit it
        t0 = time.time()
        self._t0 = t0
        ws = self.workspace
        final: dict[str, Any] = {}
        heartbeat = threading.Event()  # set: stop beating
        threading.Thread(
            target=self._beat, args=(heartbeat,), name=f"segdash-heartbeat-{self.run_id}", daemon=True
        ).start()
        try:
            self._set(state="running")
            ws.beat(self.run_id, state="running")  # not over an outcome written meanwhile (interrupt())
            self._train()
            final = {"state": "done"}  # every epoch ran (a stop that came after the last step changes nothing)
        except Stopped:
            final = {"state": "interrupted" if self._interrupted else "stopped"}
        except Exception as exc:  # noqa: BLE001 - every error becomes the job's failed state
            if is_disk_full_error(exc, self.workspace.root):  # the user's to fix: no traceback in the server log
                log.warning("training run %s failed: the disk is full (%s)", self.run_id, exc)
            else:
                log.exception("training run %s failed", self.run_id)
            final = {"state": "failed", "error": failure_message(exc, self.config, self.workspace.root)}
        finally:
            heartbeat.set()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        wall = time.time() - t0
        snap = self.snapshot()
        bundle = ""
        record = {
            "wall_time": wall,
            "best_checkpoint": snap.best_checkpoint,
            "last_checkpoint": snap.last_checkpoint,
            "best_dice": finite_or_none(snap.best_dice),
        }
        try:
            # (its progress too: the last heartbeat may be up to two seconds older than the last step)
            ws.update_run(
                self.run_id,
                state=final["state"],
                error=final.get("error", ""),
                progress=progress_record(snap),
                **record,
            )
            if (snap.last_checkpoint or snap.best_checkpoint) and not self._interrupted and self.origin != "live":
                # (an interrupted run's worker ends at once, and a live round's at its deadline, the next
                # round waiting for it: the Train page writes their bundle when asked)
                bundle = str(write_bundle(self.workspace, self.run_id))
        except Exception as exc:  # noqa: BLE001
            log.exception("finishing run %s", self.run_id)
            if final["state"] != "failed":
                why = failure_message(exc, self.config, self.workspace.root)
                final = {"state": "failed", "error": f"finishing the run failed: {why}"}
            if is_disk_full_error(exc, self.workspace.root):  # the catalog too: write the outcome once there is room
                record.update(state=final["state"], error=final.get("error", ""))
                threading.Thread(
                    target=self._record_later, args=(record,), daemon=True, name=f"segdash-record-{self.run_id}"
                ).start()
        self._set(wall_time_s=wall, bundle=bundle, eta_s=0.0, **final)

    def _record_later(self, record: dict[str, Any]) -> None:
        """Retry writing the run's outcome for ten minutes (a full disk may be freed meanwhile); after
        that the run reads as interrupted, its heartbeat being stale."""
        for _ in range(int(600 / _HEARTBEAT_S)):
            time.sleep(_HEARTBEAT_S)
            try:
                self.workspace.update_run(self.run_id, **record)
                return
            except Exception:  # noqa: BLE001 - still full or busy
                continue

    def _beat(self, done: threading.Event) -> None:
        """Write the run's heartbeat, progress and state until ``done``: while it beats, the run is not
        interrupted, and other processes show it live. A stop requested through the catalog
        (:meth:`~core.store.run_rows.RunRows.request_stop`, from another process) is read here too."""
        while True:
            try:
                snap = self.snapshot()
                state = snap.state if snap.state in ACTIVE_RUN_STATES else None
                if self.workspace.beat(self.run_id, progress_record(snap), state=state):
                    self.stop()
            except Exception:  # noqa: BLE001 - a busy or full catalog: try again at the next beat
                log.debug("heartbeat of %s failed", self.run_id, exc_info=True)
            if done.wait(_HEARTBEAT_S):
                return

    def _train(self) -> None:
        cfg, ws = self.config, self.workspace
        run = prepare.prepare_run(self.request, ws)
        s = run.split
        self._set(train_slices=list(s.train), val_slices=list(s.val), test_slices=list(s.test), notes=run.notes)
        device = select_device(cfg.device)
        amp_dtype = amp_dtype_for(device, cfg.amp)
        label = device_label(device) + (f", {str(amp_dtype).removeprefix('torch.')} autocast" if amp_dtype else "")
        self._set(device=label)
        ws.update_run(self.run_id, device=label, dataset_version=run.dataset_version, extra=run.extra)
        self._check_stop()

        # model and optimisation, then the loop, its handlers recording as it goes
        state = build_training(cfg, device, amp_dtype, resume=run.checkpoint)
        names = tuple(run.extra["class_names"])
        ctx = RunContext(
            ws, self.run_id, self.dataset, cfg, names, run.window, run.extra, run.dataset_version,
            publish=self._set, started=self._t0,
        )  # fmt: skip
        handlers = run_handlers(ctx, run.val_items, device, amp_dtype, self._check_stop)
        if run.checkpoint is not None:  # (rank 0 records a resumed run's source, as fit's other events)
            Events(distributed.handlers_for_rank(handlers)).on_resume(state, run.checkpoint)
            run.checkpoint = None
        fit(state, cfg, run.data, device, amp_dtype, handlers)
        del state
        val, test = run.held_out(ws, self.request)
        run.data = run.val_items = None  # type: ignore[assignment]  # the training slices: freed before the end
        try:
            outcome = finish_run(
                [ctx.best_path, ctx.last_path], cfg, val, test, run.window, cfg.model.n_classes, device, amp_dtype,
                self._check_stop,
            )  # fmt: skip
        except (MemoryError, OSError, RuntimeError) as exc:  # the trained weights stand: keep the run done
            log.exception("tuning / testing run %s failed", self.run_id)
            outcome = {"error": f"tuning the decision or scoring the test slices failed: {exc}"}
        self._set(test_scores=outcome)
        ws.update_run(self.run_id, extra={**run.extra, "finish": outcome})
