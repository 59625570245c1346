"""A training run in a background thread: :class:`TrainingJob` (its state, snapshot, heartbeat and
the catalog row of its outcome). The worker never touches the UI, catches every error into the
``failed`` state, and stops within one optimisation step; the loop itself is
:func:`core.train.loop.fit`, and :mod:`core.train.registry` keeps one running job per workspace.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..data.intensity import percentile_range
from ..data.records import finite_or_none
from ..data.zrange import format_slices
from ..errors import SegDashError
from ..nn.checkpoint import load_checkpoint, read_checkpoint_info
from ..nn.device import amp_dtype_for, device_label, select_device, share_cpu_for_background
from ..nn.model import required_multiple
from ..store.schema import ACTIVE_RUN_STATES
from ..store.workspace import Workspace, validate_name
from .bundle import write_bundle
from .config import TrainConfig, default_config
from .data import context_images, pad_to, split_for, validation_tensors
from .eta import EtaClock
from .failures import failure_message, is_disk_full_error
from .finish import finish_run
from .loop import Stopped, TrainingData, build_training, fit
from .recorder import RunRecorder
from .snapshot import JOB_STATES, JobHandle, TrainingSnapshot, progress_record

__all__ = ["JOB_STATES", "TrainingJob", "TrainingSnapshot"]

log = logging.getLogger(__name__)

# the worker's process writes its heartbeat, progress and state into the run's catalog row this often, and
# reads a stop requested there: what other processes show of the run is this old at most
_HEARTBEAT_S = 2.0


def _new_run_id(dataset: str) -> str:
    return validate_name(f"{dataset[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")


def _resolve_checkpoint(ws: Workspace, resume: str | Path) -> tuple[Path, str]:
    """``(checkpoint path, source run id or "")`` for a run id or a checkpoint path."""
    text = str(resume)
    run = ws.run(text) if "/" not in text and "\\" not in text else None
    if run is not None:
        if run["state"] in ACTIVE_RUN_STATES:
            raise SegDashError(
                f"run {text!r} is still {run['state']} (process {run['owner_pid']} on "
                f"{run['owner_host']}); stop it first, or resume it once it has stopped"
            )
        for key in ("last_checkpoint", "best_checkpoint"):
            if run.get(key) and Path(run[key]).is_file():
                return Path(run[key]), text
        if run["state"] == "interrupted":
            raise SegDashError(
                f"run {text!r} was interrupted before its first epoch ended: it has no checkpoint "
                "to resume from; start a new training"
            )
        raise SegDashError(f"run {text!r} has no checkpoint to resume from")
    path = Path(text)
    if path.is_file():
        return path, ""
    raise SegDashError(f"cannot resume from {text!r}: neither a run id of this workspace nor a checkpoint file")


class TrainingJob(JobHandle):
    """One training run in a background thread.

    Args:
        workspace: the workspace (a :class:`~core.store.workspace.Workspace` or its folder).
        dataset: dataset name; its labeled slices are used.
        config: the training config (its model's ``n_classes`` is replaced by the dataset's).
        run_id: run id; default ``<dataset>-<date>-<time>-<random>``.
        resume_from: a run id or a checkpoint path to continue from (see module docstring).
        origin: where it is started from, recorded with the run (``app``, ``cli``, ``python``,
            ``torchrun``: :data:`~core.store.schema.RUN_ORIGINS`).
        recorded: the run's row was recorded already (queued, owned by this process) by the process
            that launched this one (:mod:`core.train.process`); :meth:`start` then does not record it.

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
        recorded: bool = False,
    ):
        self.origin, self._recorded = origin, recorded
        self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
        info = self.workspace.dataset(dataset)
        self.dataset = dataset
        if not self.workspace.labeled_slices(dataset):
            raise SegDashError(f"dataset {dataset!r} has no labeled slices; label at least one slice first")
        config = config or default_config(info.n_classes)
        self.resume_path: Path | None = None
        self.resumed_from = ""
        start_epoch = 0
        if resume_from is not None:
            self.resume_path, self.resumed_from = _resolve_checkpoint(self.workspace, resume_from)
            meta = read_checkpoint_info(self.resume_path)
            if len(meta["class_names"]) != info.n_classes:
                raise SegDashError(
                    f"checkpoint {self.resume_path} has {len(meta['class_names'])} classes, dataset "
                    f"{dataset!r} has {info.n_classes}"
                )
            start_epoch = int(meta["epoch"])
            if start_epoch >= config.epochs and not config.minutes:  # a time budget plans its own epochs
                raise SegDashError(
                    f"the checkpoint has reached epoch {start_epoch} of {config.epochs}; "
                    f"set epochs above {start_epoch} to train longer"
                )
            self.resumed_from = self.resumed_from or str(meta["run_id"] or self.resume_path)
            config = replace(config, model=meta["model_config"], context=int(meta.get("context") or 0))
        self.config = replace(config, model=replace(config.model, n_classes=info.n_classes))
        self.class_names = info.class_names
        self.run_id = validate_name(run_id) if run_id else _new_run_id(dataset)
        if (self.workspace.run(self.run_id) is not None) != recorded:
            raise SegDashError(
                f"a run named {self.run_id!r} exists already" if not recorded else f"no run {self.run_id!r} to train"
            )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interrupted = False
        self._thread: threading.Thread | None = None
        self._snap = TrainingSnapshot(
            run_id=self.run_id,
            dataset=dataset,
            epoch=start_epoch,
            start_epoch=start_epoch,
            epochs=self.config.epochs,
            steps_per_epoch=self.config.steps_per_epoch,
            resumed_from=self.resumed_from,
            origin="this server",
        )

    def __repr__(self) -> str:
        return f"TrainingJob({self.run_id!r}, state={self.state!r})"

    # -- control (any thread; state, join, is_active, snapshot: JobHandle) ----------------------
    def start(self) -> TrainingJob:
        """Record the run in the catalog and launch the worker thread (once)."""
        if self._thread is not None:
            raise SegDashError(f"job {self.run_id} was started already")
        extra = {"resumed_from": self.resumed_from} if self.resumed_from else {}
        if not self._recorded:
            self.workspace.create_run(
                self.run_id, self.dataset, self.config.to_dict(), state="queued", origin=self.origin
            )
        if extra:
            self.workspace.update_run(self.run_id, extra=extra)
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
        if self._stop.is_set():
            raise Stopped()

    def _run(self) -> None:
        share_cpu_for_background()  # first, so the OpenMP threads started here inherit it
        t0 = time.time()
        self._t0 = t0
        cat = self.workspace
        final: dict[str, Any] = {}
        heartbeat = threading.Event()  # set: stop beating
        threading.Thread(
            target=self._beat, args=(heartbeat,), name=f"segdash-heartbeat-{self.run_id}", daemon=True
        ).start()
        try:
            self._set(state="running")
            cat.beat(self.run_id, state="running")  # not over an outcome written meanwhile (interrupt())
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
            cat.update_run(self.run_id, state=final["state"], error=final.get("error", ""), **record)
            if (snap.last_checkpoint or snap.best_checkpoint) and not self._interrupted:
                # (an interrupted run's worker ends at once; the Train page writes its bundle when asked)
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
        cfg, ws, ds = self.config, self.workspace, self.dataset
        cat = ws
        info = ws.dataset(ds)
        n_classes = info.n_classes
        labeled = ws.labeled_slices(ds)
        if not labeled:
            raise SegDashError(f"dataset {ds!r} has no labeled slices; label at least one slice first")
        ckpt = load_checkpoint(self.resume_path) if self.resume_path else None
        notes: list[str] = []

        # split (a resumed run keeps its validation slices) and normalisation window
        names = info.slice_names
        old_val = [z for z in ckpt.extra.get("val_slices", []) if z in labeled] if ckpt is not None else []
        split = split_for(labeled, names, cfg, old_val if old_val and len(old_val) < len(labeled) else None)
        train_zs, val_zs, test_zs = split.train, split.val, split.test
        notes.extend(split.notes)
        partial = [z for z in sorted(set(train_zs) | set(val_zs)) if info.coverage[z] == "partial"]
        if partial:
            notes.append(
                f"{len(partial)} slice(s) have partial masks: loss and validation scores count labeled pixels only"
            )
        window = ckpt.norm_window if ckpt is not None else percentile_range(ws.read_images(ds))
        self._set(train_slices=list(train_zs), val_slices=list(val_zs), test_slices=list(test_zs), notes=notes)
        dataset_version = ws.masks_version(ds, sorted(set(train_zs) | set(val_zs) | set(test_zs)))
        extra = {
            "resumed_from": self.resumed_from,
            "train_slices": train_zs,
            "val_slices": val_zs,
            "train_names": [names[z] for z in train_zs],
            "val_names": [names[z] for z in val_zs],
            "test_slices": test_zs,
            "test_names": [names[z] for z in test_zs],
            "split": split.to_dict(),
            "norm_window": list(window),
            "class_names": list(self.class_names),
        }
        if not self.resumed_from:
            extra.pop("resumed_from")

        # device
        device = select_device(cfg.device)
        amp_dtype = amp_dtype_for(device, cfg.amp)
        label = device_label(device) + (f", {str(amp_dtype).removeprefix('torch.')} autocast" if amp_dtype else "")
        self._set(device=label)
        cat.update_run(self.run_id, device=label, dataset_version=dataset_version, extra=extra)
        self._check_stop()

        # data in memory: raw slices (normalised per patch), padded to at least one patch
        stack = ws.read_images(ds)
        ps = cfg.patch_size
        tr_imgs = [pad_to(a, ps, ps) for a in context_images(stack, train_zs, cfg.context)]
        _, tr_masks_arr = ws.read_masks(ds, train_zs)
        tr_masks = [pad_to(m, ps, ps) for m in tr_masks_arr]
        val_masks, whole = ws.read_truths(ds, val_zs)
        if whole:
            notes.append(
                f"validation slice(s) {format_slices(whole)} hold only labels accepted from a model:"
                " scored against them"
            )
        self._set(notes=notes)
        val_items = validation_tensors(
            context_images(stack, val_zs, cfg.context), val_masks, window, required_multiple(cfg.model), cfg.val_crop
        )
        self._check_stop()

        # model and optimisation, then the loop, recorded as it goes
        state = build_training(cfg, n_classes, device, amp_dtype, resume=ckpt)
        recorder = RunRecorder(
            ws,
            self.run_id,
            ds,
            cfg,
            self.class_names,
            window,
            extra,
            dataset_version,
            publish=self._set,
            check_stop=self._check_stop,
            started=self._t0,
            clock=EtaClock(epoch_end_steps=max(1, len(val_items)) / 4),
        )
        if ckpt is not None:
            recorder.resumed(ckpt, state)
            del ckpt
        self._set(history=[dict(h) for h in state.history], epoch=state.epoch)
        fit(state, cfg, TrainingData(tr_imgs, tr_masks, window, val_items), n_classes, device, amp_dtype, recorder)
        del tr_imgs, tr_masks, state
        test = (context_images(stack, test_zs, cfg.context), ws.read_truths(ds, test_zs)[0] if test_zs else [])
        val = (context_images(stack, val_zs, cfg.context), val_masks)  # whole slices, as the test ones
        ckpts = [recorder.best_path, recorder.last_path]
        try:
            outcome = finish_run(ckpts, cfg, val, test, window, n_classes, device, amp_dtype, self._check_stop)
        except (MemoryError, OSError, RuntimeError) as exc:  # the trained weights stand: keep the run done
            log.exception("tuning / testing run %s failed", self.run_id)
            outcome = {"error": f"tuning the decision or scoring the test slices failed: {exc}"}
        self._set(test_scores=outcome)
        cat.update_run(self.run_id, extra={**extra, "finish": outcome})
