"""A training run in a background thread: :class:`TrainingJob` (its state, snapshot, heartbeat and
the catalog row of its outcome). The worker never touches the UI, catches every error into the
``failed`` state, and stops within one optimisation step; the loop itself is
:func:`core.train.loop.fit`, and :mod:`core.train.registry` keeps one running job per workspace.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.files import is_disk_full
from ..data.intensity import percentile_range
from ..data.records import Record, finite_or_none
from ..errors import SegDashError
from ..nn.checkpoint import load_checkpoint, read_checkpoint_info
from ..nn.device import amp_dtype_for, device_label, select_device
from ..nn.model import required_multiple
from ..store.workspace import Workspace, disk_full_error, validate_name
from .bundle import write_bundle
from .config import TrainConfig, default_config
from .data import pad_to, split_slices, validation_tensors
from .loop import Stopped, TrainingData, build_training, fit
from .recorder import RunRecorder

__all__ = ["JOB_STATES", "TrainingJob", "TrainingSnapshot"]

log = logging.getLogger(__name__)

JOB_STATES = ("queued", "running", "stopping", "done", "failed", "stopped")
_ACTIVE_STATES = ("queued", "running", "stopping")
_HEARTBEAT_S = 5.0  # the worker's process writes its heartbeat into the run's catalog row this often


@dataclass
class TrainingSnapshot(Record):
    """A training job's progress, as :meth:`TrainingJob.snapshot` copies it (``to_dict()`` for JSON).

    Attributes:
        run_id, dataset: the run and the dataset it trains on.
        state: one of :data:`JOB_STATES`; ``error`` its message when ``failed``.
        epoch: last completed epoch (``start_epoch`` for a resumed run at its start); ``epochs`` the
            final one; ``step`` the step within the current epoch, of ``steps_per_epoch``.
        eta_s: estimated seconds left (``None`` before the first step).
        device: where it trains, in words.
        history: per-epoch dicts: ``epoch, train_loss, val_loss, val_dice, val_iou, val_accuracy,
            val_pixel_error, val_dice_per_class, val_iou_per_class, lr, images_per_s, time_s`` and
            for binary data ``val_dice_fg, val_iou_fg``.
        best_dice, best_checkpoint, last_checkpoint: the best validation Dice and the checkpoints.
        resumed_from: the run (or checkpoint) it continues, if any.
        train_slices, val_slices: the split; notes: what the user should know about it.
        wall_time_s: seconds from start to end; bundle: the reproducibility bundle's path.
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
    device: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    best_dice: float | None = None
    best_checkpoint: str = ""
    last_checkpoint: str = ""
    resumed_from: str = ""
    train_slices: list[int] = field(default_factory=list)
    val_slices: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall_time_s: float = 0.0
    bundle: str = ""


def _new_run_id(dataset: str) -> str:
    return validate_name(f"{dataset[:40]}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}")


def _resolve_checkpoint(ws: Workspace, resume: str | Path) -> tuple[Path, str]:
    """``(checkpoint path, source run id or "")`` for a run id or a checkpoint path."""
    text = str(resume)
    run = ws.catalog.run(text) if "/" not in text and "\\" not in text else None
    if run is not None:
        if run["state"] in _ACTIVE_STATES:
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


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """``exc`` comes from a full disk: ENOSPC, or torch's ``inline_container`` write failure (which
    does not keep the errno) while the folder has little space left."""
    if is_disk_full(exc) or (isinstance(exc, ValueError) and str(exc).startswith("not enough space")):
        return True
    text = str(exc).lower()
    if isinstance(exc, RuntimeError) and (
        "write failed" in text or "inline_container" in text or "unexpected pos" in text
    ):
        try:
            return shutil.disk_usage(folder).free < 64 << 20
        except OSError:
            return False
    return False


def _oom_hint(exc: BaseException, cfg: TrainConfig, folder: Path | None = None) -> str:
    if folder is not None and _disk_full(exc, folder):
        if str(exc).startswith("not enough space"):
            return str(exc)
        return f"{disk_full_error(folder)} (a checkpoint of this run could not be saved)"
    text = f"{type(exc).__name__}: {exc}".strip()
    oom = isinstance(exc, getattr(torch.cuda, "OutOfMemoryError", ())) or "out of memory" in text.lower()
    if oom:
        return (
            f"the GPU ran out of memory: lower the batch size (now {cfg.batch_size}) or the patch size "
            f"(now {cfg.patch_size}). ({text.splitlines()[0][:300]})"
        )
    if isinstance(exc, SegDashError) and str(exc):
        return str(exc)  # our own messages are written for the user already
    return text


class TrainingJob:
    """One training run in a background thread.

    Args:
        workspace: the workspace (a :class:`~core.store.workspace.Workspace` or its folder).
        dataset: dataset name; its labeled slices are used.
        config: the training config (its model's ``n_classes`` is replaced by the dataset's).
        run_id: run id; default ``<dataset>-<date>-<time>-<random>``.
        resume_from: a run id or a checkpoint path to continue from (see module docstring).

    Raises:
        ValueError: unknown dataset, no labeled slices, unusable checkpoint, or a checkpoint that
            has already reached ``config.epochs``.

    Start it through :func:`~core.train.registry.registry` (``registry().start(job)``), which refuses a
    second running job
    in the same workspace; then poll :meth:`snapshot`.
    """

    def __init__(
        self,
        workspace: Workspace | str | Path,
        dataset: str,
        config: TrainConfig | None = None,
        run_id: str | None = None,
        resume_from: str | Path | None = None,
    ):
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
            if start_epoch >= config.epochs:
                raise SegDashError(
                    f"the checkpoint has reached epoch {start_epoch} of {config.epochs}; "
                    f"set epochs above {start_epoch} to train longer"
                )
            self.resumed_from = self.resumed_from or str(meta["run_id"] or self.resume_path)
            config = replace(config, model=meta["model_config"])
        self.config = replace(config, model=replace(config.model, n_classes=info.n_classes))
        self.class_names = info.class_names
        self.run_id = validate_name(run_id) if run_id else _new_run_id(dataset)
        if self.workspace.catalog.run(self.run_id) is not None:
            raise SegDashError(f"a run named {self.run_id!r} exists already")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snap = TrainingSnapshot(
            run_id=self.run_id,
            dataset=dataset,
            epoch=start_epoch,
            start_epoch=start_epoch,
            epochs=self.config.epochs,
            steps_per_epoch=self.config.steps_per_epoch,
            resumed_from=self.resumed_from,
        )

    def __repr__(self) -> str:
        return f"TrainingJob({self.run_id!r}, state={self.state!r})"

    # -- control (any thread) --------------------------------------------------------------
    @property
    def state(self) -> str:
        with self._lock:
            return self._snap.state

    def start(self) -> TrainingJob:
        """Record the run in the catalog and launch the worker thread (once)."""
        if self._thread is not None:
            raise SegDashError(f"job {self.run_id} was started already")
        extra = {"resumed_from": self.resumed_from} if self.resumed_from else {}
        self.workspace.catalog.create_run(self.run_id, self.dataset, self.config.to_dict(), state="queued")
        if extra:
            self.workspace.catalog.update_run(self.run_id, extra=extra)
        self._thread = threading.Thread(target=self._run, name=f"segdash-train-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the worker to stop; it does so within one optimisation step and keeps ``last.pt``."""
        self._stop.set()
        with self._lock:
            if self._snap.state in ("queued", "running"):
                self._snap.state = "stopping"

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker; returns True when it has finished."""
        if self._thread is None:
            return self.state not in _ACTIVE_STATES
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_active(self) -> bool:
        """True while the worker thread runs."""
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
            )

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
        t0 = time.time()
        self._t0 = t0
        cat = self.workspace.catalog
        final: dict[str, Any] = {}
        heartbeat = threading.Event()  # set: stop beating
        threading.Thread(
            target=self._beat, args=(heartbeat,), name=f"segdash-heartbeat-{self.run_id}", daemon=True
        ).start()
        try:
            self._set(state="running")
            cat.update_run(self.run_id, state="running")
            self._train()
            final = {"state": "done"}  # every epoch ran (a stop that came after the last step changes nothing)
        except Stopped:
            final = {"state": "stopped"}
        except Exception as exc:  # noqa: BLE001 - every error becomes the job's failed state
            if _disk_full(exc, self.workspace.root):  # the user's to fix: no traceback in the server log
                log.warning("training run %s failed: the disk is full (%s)", self.run_id, exc)
            else:
                log.exception("training run %s failed", self.run_id)
            final = {"state": "failed", "error": _oom_hint(exc, self.config, self.workspace.root)}
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
            if snap.last_checkpoint or snap.best_checkpoint:
                bundle = str(write_bundle(self.workspace, self.run_id))
        except Exception as exc:  # noqa: BLE001
            log.exception("finishing run %s", self.run_id)
            if final["state"] != "failed":
                why = _oom_hint(exc, self.config, self.workspace.root)
                final = {"state": "failed", "error": f"finishing the run failed: {why}"}
            if _disk_full(exc, self.workspace.root):  # the catalog too: write the outcome once there is room
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
                self.workspace.catalog.update_run(self.run_id, **record)
                return
            except Exception:  # noqa: BLE001 - still full or busy
                continue

    def _beat(self, done: threading.Event) -> None:
        """Write the run's heartbeat until ``done``: while it beats, the run is not interrupted.
        A stop requested through the catalog (:meth:`~core.store.catalog.Catalog.request_stop`, from
        another process) is read here too."""
        while not done.wait(_HEARTBEAT_S):
            try:
                self.workspace.catalog.heartbeat(self.run_id)
                if (self.workspace.catalog.run(self.run_id) or {}).get("stop_requested"):
                    self.stop()
            except Exception:  # noqa: BLE001 - a busy or full catalog: try again at the next beat
                log.debug("heartbeat of %s failed", self.run_id, exc_info=True)

    def _train(self) -> None:
        cfg, ws, ds = self.config, self.workspace, self.dataset
        cat = ws.catalog
        info = ws.dataset(ds)
        n_classes = info.n_classes
        labeled = ws.labeled_slices(ds)
        if not labeled:
            raise SegDashError(f"dataset {ds!r} has no labeled slices; label at least one slice first")
        ckpt = load_checkpoint(self.resume_path) if self.resume_path else None
        notes: list[str] = []

        # split and normalisation window
        if ckpt is not None:
            old_val = [z for z in ckpt.extra.get("val_slices", []) if z in labeled]
            if old_val and len(old_val) < len(labeled):
                val_zs = old_val
                train_zs = [z for z in labeled if z not in set(old_val)]
            else:
                train_zs, val_zs = split_slices(labeled, cfg.val_fraction, cfg.seed)
            window = ckpt.norm_window
        else:
            train_zs, val_zs = split_slices(labeled, cfg.val_fraction, cfg.seed)
            window = percentile_range(ws.read_images(ds))
        if not val_zs:
            val_zs = list(train_zs)
            notes.append("no slice held out for validation: validation uses the training slices")
        partial = [z for z in sorted(set(train_zs) | set(val_zs)) if info.coverage[z] == "partial"]
        if partial:
            notes.append(
                f"{len(partial)} slice(s) have partial masks: loss and validation scores count labeled pixels only"
            )
        names = info.slice_names
        self._set(train_slices=list(train_zs), val_slices=list(val_zs), notes=notes)
        dataset_version = ws.masks_version(ds, sorted(set(train_zs) | set(val_zs)))
        extra = {
            "resumed_from": self.resumed_from,
            "train_slices": train_zs,
            "val_slices": val_zs,
            "train_names": [names[z] for z in train_zs],
            "val_names": [names[z] for z in val_zs],
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
        tr_imgs = [pad_to(np.array(stack[z]), ps, ps) for z in train_zs]
        _, tr_masks_arr = ws.read_masks(ds, train_zs)
        tr_masks = [pad_to(m, ps, ps) for m in tr_masks_arr]
        _, val_masks = ws.read_masks(ds, val_zs)
        val_items = validation_tensors(
            [stack[z] for z in val_zs], val_masks, window, required_multiple(cfg.model), cfg.val_crop
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
        )
        if ckpt is not None:
            recorder.resumed(ckpt, state)
            del ckpt
        self._set(history=[dict(h) for h in state.history], epoch=state.epoch)
        fit(state, cfg, TrainingData(tr_imgs, tr_masks, window, val_items), n_classes, device, amp_dtype, recorder)
