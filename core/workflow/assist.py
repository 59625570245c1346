"""Model-assisted labeling: a starting mask for an unlabeled slice from the current model.

:func:`model_suggestion` prefers a stored prediction of the dataset (the newest one holding the
slice, :func:`core.predict.stored.list_predictions`); without one it predicts the slice with the best
checkpoint of the newest finished training run (:func:`core.nn.checkpoint.load_checkpoint`,
:func:`core.predict.inferer.predict_slice`). Torch is imported only when one of the two exists.

Example:
    >>> labels, source = model_suggestion(ws, "cells", 12)          # doctest: +SKIP
    >>> source                                                       # doctest: +SKIP
    'stored prediction run-0003'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegDashError
from ..store.layout import predictions_dir, runs_dir
from ..store.workspace import Workspace

__all__ = ["model_suggestion", "model_sources"]

_NOT_FINISHED = ("queued", "running", "stopping", "failed")  # core.train.job.JOB_STATES without done, stopped


def _checkpoint_path(ws: Workspace, run: dict[str, Any]) -> Path | None:
    raw = run.get("best_checkpoint") or ""
    if not raw:
        return None
    p = Path(raw)
    for cand in (p, Path(ws.root) / p, runs_dir(ws.root) / run["run_id"] / p):
        if cand.is_file():
            return cand
    return None


def model_sources(ws: Workspace, dataset: str) -> dict[str, Any]:
    """What a suggestion could come from, without importing torch.

    Returns:
        ``{"prediction_folder": bool, "run": run dict or None, "checkpoint": Path or None}``: whether
        a predictions folder exists for the dataset, and the newest finished run with a best
        checkpoint on disk.
    """
    has_folder = predictions_dir(ws.root, dataset).is_dir()
    for run in ws.runs(dataset):
        if run["state"] in _NOT_FINISHED:
            continue
        ckpt = _checkpoint_path(ws, run)
        if ckpt is not None:
            return {"prediction_folder": has_folder, "run": run, "checkpoint": ckpt}
    return {"prediction_folder": has_folder, "run": None, "checkpoint": None}


def model_suggestion(ws: Workspace, dataset: str, z: int, threshold: float = 0.5) -> tuple[np.ndarray, str]:
    """Class labels for slice ``z`` from the current model, and where they came from.

    Args:
        ws: the workspace.
        dataset: dataset name.
        z: slice index.
        threshold: binary models: foreground where P(class 1) > threshold (fresh predictions only;
            a stored prediction keeps its own threshold).

    Returns:
        ``((Y, X) uint8 labels, description of the source)``.

    Raises:
        ValueError: no stored prediction covers the slice and no finished run has a checkpoint, or
            the model's classes do not match the dataset's.
    """
    info = ws.dataset(dataset)
    if not 0 <= z < info.shape[0]:
        raise SegDashError(f"slice {z} out of range 0..{info.shape[0] - 1}")
    sources = model_sources(ws, dataset)
    if sources["prediction_folder"]:
        from ..predict.stored import list_predictions, load_prediction

        for run_id in list_predictions(ws, dataset):
            masks, _, _ = load_prediction(ws, dataset, run_id)
            if z < masks.shape[0] and masks.shape[1:] == info.shape[1:]:
                return _checked(np.array(masks[z]), info.n_classes), f"stored prediction {run_id}"
    if sources["checkpoint"] is None:
        raise SegDashError(
            f"no model for {dataset!r} yet: no stored prediction covers slice {z} and no finished "
            "training run has a checkpoint. Train one on the Train page, or label this slice by hand."
        )
    from ..nn.checkpoint import load_checkpoint
    from ..predict.config import PredictConfig
    from ..predict.inferer import predict_slice, slice_input
    from ..predict.probabilities import labels_from_probs

    ckpt = load_checkpoint(sources["checkpoint"], device="cpu")
    if int(ckpt.model_config.n_classes) != info.n_classes:
        raise SegDashError(
            f"the model of run {sources['run']['run_id']} predicts {ckpt.model_config.n_classes} classes; "
            f"{dataset!r} has {info.n_classes}"
        )
    probs = predict_slice(ckpt, slice_input(ckpt, ws.read_images(dataset), z), PredictConfig(threshold=threshold))
    labels = labels_from_probs(probs, threshold)
    return _checked(labels, info.n_classes), f"model of run {sources['run']['run_id']}"


def _checked(labels: np.ndarray, n_classes: int) -> np.ndarray:
    labels = np.asarray(labels, dtype=np.uint8)
    if labels.size and int(labels.max()) >= n_classes:
        raise SegDashError(f"the prediction has class {int(labels.max())}, the dataset only {n_classes} classes")
    return labels
