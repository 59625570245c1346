"""Predicting a workspace's dataset: :func:`predict_dataset` stores masks, probabilities and a
scored ``summary.json`` for review; :class:`PredictionJob` runs it in a background thread for a page
to poll and cancel (:func:`prediction_jobs` finds it again after a rerun)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.io import atomic_write
from ..data.records import Record
from ..errors import SegDashError
from ..nn.checkpoint import Checkpoint, load_checkpoint
from ..nn.device import resolve_device, share_cpu_for_background, signal_stop, use_worker_process, worker_env
from ..nn.fit import fit_warnings
from .config import PredictConfig, PredictionResult, ProgressFn
from .inferer import decision_for, default_tile
from .probabilities import read_prediction_tiff
from .protocol import result_of, spec_of
from .stack import predict_stack
from .stored import MASKS, PROB, SCORE_KEYS, SUMMARY, PredictionSummary, score_prediction

__all__ = ["predict_dataset", "PredictionJob", "PredictionSnapshot", "prediction_jobs"]


def _run_id_for(ckpt: Checkpoint, checkpoint_path: Path) -> str:
    rid = getattr(ckpt, "run_id", None) or checkpoint_path.stem
    rid = re.sub(r"[^A-Za-z0-9._-]", "_", str(rid)).lstrip("._-")[:64]
    return rid or "prediction"


def predict_dataset(
    ws: Any,
    dataset: str,
    checkpoint_path: str | Path,
    cfg: PredictConfig = PredictConfig(),
    run_id: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> PredictionResult:
    """Predict a whole dataset of a workspace and store it for review.

    Writes into ``ws.predictions_dir(dataset, run_id)``: ``masks.tif`` (Z, Y, X) uint8,
    ``prob.tif`` (uint8 x 255; see :func:`~core.predict.stack.predict_stack`) and ``summary.json`` with the checkpoint,
    settings, per-slice uncertainty, scores against ground truth where a slice has a labeled or
    edited mask, and their confusion matrix. ``summary.json`` is written last, so
    :func:`~core.predict.stored.list_predictions` lists a prediction only once it is complete (or cancelled and saved).

    Args:
        ws: the workspace.
        dataset: dataset name.
        checkpoint_path: checkpoint file (:func:`core.nn.checkpoint.save_checkpoint`).
        cfg: prediction options.
        run_id: name of the prediction; default the checkpoint's run id, else its file stem.
        progress: ``progress(done, total, eta_seconds)`` after each slice.
        cancel: event that stops the run after the current slice; finished slices are kept.
    """
    checkpoint_path = Path(checkpoint_path)
    info = ws.dataset(dataset)
    ckpt = load_checkpoint(checkpoint_path, device="cpu")
    k = int(ckpt.model_config.n_classes)
    if k != info.n_classes:
        raise SegDashError(
            f"the checkpoint predicts {k} classes ({', '.join(ckpt.class_names)}); dataset "
            f"{dataset!r} has {info.n_classes} ({', '.join(info.class_names)})"
        )
    run_id = run_id or _run_id_for(ckpt, checkpoint_path)
    folder = ws.predictions_dir(dataset, run_id)
    images = ws.read_images(dataset)
    warnings = tuple(fit_warnings(ckpt, images=images, class_names=info.class_names, dataset=dataset))
    decision = decision_for(ckpt, cfg)
    result = predict_stack(
        ckpt,
        images,
        out_masks=folder / MASKS,
        out_prob=folder / PROB,
        cfg=cfg,
        progress=progress,
        cancel=cancel,
        slice_names=list(info.slice_names),
        pixel_size=ws.pixel_size(dataset),
    )
    result = replace(result, warnings=warnings)
    if result.n_done == 0:
        return result
    masks = read_prediction_tiff(result.masks_path)
    rows, conf = score_prediction(ws, dataset, masks)
    del masks
    slices = [
        {"z": z, "name": info.slice_names[z], "status": info.statuses[z], "uncertainty": u}
        for z, u in enumerate(result.uncertainty)
    ]
    for r in rows:
        slices[r["z"]].update({key: r[key] for key in SCORE_KEYS})
    summary = PredictionSummary(
        dataset=dataset,
        run_id=run_id,
        checkpoint=str(checkpoint_path.resolve()),
        checkpoint_epoch=getattr(ckpt, "epoch", None),
        class_names=list(info.class_names),
        n_classes=k,
        threshold=decision.threshold,
        decision=decision.to_dict(),
        split=ckpt.extra.get("split"),
        config=asdict(cfg),
        tile=default_tile(ckpt, cfg.tile, resolve_device(cfg.device)),
        norm_window=list(ckpt.norm_window),
        device=result.device,
        created=time.time(),
        seconds=result.seconds,
        n_done=result.n_done,
        n_total=result.n_total,
        cancelled=result.cancelled,
        mean_uncertainty=float(np.mean(result.uncertainty)),
        mean_dice=float(np.mean([r["dice"] for r in rows])) if rows else None,
        confusion=conf.tolist(),
        slices=slices,
        warnings=list(warnings),
        trained_on=ckpt.extra.get("dataset"),
        model_class_names=list(ckpt.class_names),
    )
    text = summary.to_json()
    atomic_write(folder / SUMMARY, lambda fh: fh.write(text.encode()))
    return result


@dataclass
class PredictionSnapshot(Record):
    """A :class:`PredictionJob`'s progress (``to_dict()`` for JSON).

    Attributes:
        state: ``running``, then ``done``, ``cancelled`` or ``failed``; ``error`` its message.
        done, total: slices predicted, of the stack's; eta_s: estimated seconds left.
        result: the :class:`~core.predict.config.PredictionResult` once finished.
        started: ``time.time()`` at the start; run_id, dataset: what is predicted;
        cancel_requested: Cancel was pressed (the job stops after the current slice).
    """

    started: float
    run_id: str | None
    dataset: str
    state: str = "running"
    done: int = 0
    total: int = 0
    eta_s: float | None = None
    error: str = ""
    result: PredictionResult | None = None
    cancel_requested: bool = False


class PredictionJob:
    """:func:`predict_dataset` in a background thread, for a page to poll and cancel.

    The thread calls no UI code: it fills a snapshot (state, slices done, ETA, result, error) that
    :meth:`snapshot` copies. :meth:`cancel` sets the event :func:`predict_dataset` checks before
    each slice: the finished slices are kept and stored as a (cancelled) prediction.

    States: ``running``, then ``done``, ``cancelled`` or ``failed`` (``error`` holds the message of
    a refusal such as a class-count mismatch, or of an internal error).

    Where it computes: a worker process (:mod:`core.predict.worker`; its thread here reads the
    worker's progress) unless ``process=False`` or ``SEGDASH_WORKER_PROCESS=0``
    (:func:`~core.nn.device.use_worker_process`): in the server's process it would wait for the
    interpreter lock while pages render.

    Example:
        >>> job = PredictionJob(ws, "isbi2012", "runs/r1/best.pt").start()    # doctest: +SKIP
        >>> job.cancel(); job.join(); job.snapshot()["state"]                 # doctest: +SKIP
        'cancelled'
    """

    def __init__(
        self,
        ws: Any,
        dataset: str,
        checkpoint_path: str | Path,
        cfg: PredictConfig = PredictConfig(),
        run_id: str | None = None,
        process: bool | None = None,
    ):
        self.ws, self.dataset, self.checkpoint_path, self.cfg = ws, dataset, Path(checkpoint_path), cfg
        self.run_id = run_id
        self.process = use_worker_process() if process is None else process
        self._proc: subprocess.Popen | None = None
        self._worker_ready = False
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._snap = PredictionSnapshot(started=time.time(), run_id=run_id, dataset=dataset)

    def start(self) -> "PredictionJob":
        self._thread = threading.Thread(target=self._run, name=f"segdash-predict-{self.dataset}", daemon=True)
        self._thread.start()
        return self

    def _progress(self, done: int, total: int, eta: float | None) -> None:
        with self._lock:
            self._snap.done, self._snap.total, self._snap.eta_s = done, total, eta

    def _run(self) -> None:
        if self.process:
            final = self._in_worker()
        else:
            final = self._here()
        with self._lock:
            self._snap = replace(self._snap, **final)

    def _finished(self, result: PredictionResult) -> dict[str, Any]:
        return {
            "state": "cancelled" if result.cancelled else "done",
            "result": result,
            "done": result.n_done,
            "total": result.n_total,
        }

    def _in_worker(self) -> dict[str, Any]:
        """:mod:`core.predict.worker` in a process of its own; its progress lines read here."""
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "core.predict.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
            text=True,
        )
        what = (self.ws.root, self.dataset, self.checkpoint_path, self.cfg, self.run_id)
        proc.stdin.write(spec_of(*what, cancelled=self._cancel.is_set()))
        proc.stdin.close()
        final: dict[str, Any] | None = None
        for line in proc.stdout:
            kind, _, payload = line.strip().partition(" ")
            if kind == "ready":  # it handles the cancel signal from now on
                self._worker_ready = True
                if self._cancel.is_set():
                    self.cancel()
            elif kind == "progress":
                self._progress(*json.loads(payload))
            elif kind == "result":
                final = self._finished(result_of(json.loads(payload)))
            elif kind in ("refused", "error"):
                final = {"state": "failed", "error": json.loads(payload)}
        err = proc.stderr.read()
        code = proc.wait()
        if final is None:
            tail = err.strip()[-1500:]
            final = {"state": "failed", "error": f"the prediction process ended unexpectedly (exit status {code})"}
            final["error"] += f": {tail}" if tail else ""
        return final

    def _here(self) -> dict[str, Any]:
        share_cpu_for_background()  # first, so the OpenMP threads started here inherit it
        what = (self.ws, self.dataset, self.checkpoint_path, self.cfg)
        try:
            result = predict_dataset(*what, run_id=self.run_id, progress=self._progress, cancel=self._cancel)
            final = {
                "state": "cancelled" if result.cancelled else "done",
                "result": result,
                "done": result.n_done,
                "total": result.n_total,
            }
        except SegDashError as exc:  # a refusal, written for the user
            final = {"state": "failed", "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every error becomes the job's failed state
            final = {"state": "failed", "error": f"{type(exc).__name__}: {exc}"}
        return final

    def cancel(self) -> None:
        """Stop after the slice being predicted; the finished ones are kept."""
        self._cancel.set()
        with self._lock:
            self._snap.cancel_requested = True
        if self._proc is not None and self._worker_ready:  # before it is ready, the signal would kill it
            signal_stop(self._proc)

    def is_active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_active()

    def snapshot(self) -> PredictionSnapshot:
        """A copy of the job's progress (:class:`PredictionSnapshot`; it reads like a dict too)."""
        with self._lock:
            return replace(self._snap)


_PREDICTION_JOBS: dict[tuple[str, str], PredictionJob] = {}
_PREDICTION_JOBS_LOCK = threading.Lock()


def prediction_jobs(ws: Any, dataset: str, start: PredictionJob | None = None) -> PredictionJob | None:
    """The process-wide latest :class:`PredictionJob` of a workspace's dataset (so a page finds it
    again after a rerun or reload); with ``start``, start that job unless one is running.

    Raises:
        ValueError: ``start`` given while a prediction of that dataset is running.
    """
    key = (str(Path(ws.root).resolve()), dataset)
    with _PREDICTION_JOBS_LOCK:
        current = _PREDICTION_JOBS.get(key)
        if start is None:
            return current
        if current is not None and current.is_active():
            raise SegDashError(f"a prediction of {dataset!r} is already running: cancel it or wait for it")
        _PREDICTION_JOBS[key] = start.start()
        return start
