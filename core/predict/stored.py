"""Stored predictions of a workspace's datasets, read and scored with numpy only (no torch), so the
review, guide and assist steps reach them without importing the network.

A prediction lives in ``predictions/<dataset>/<run_id>/``: ``masks.tif``, ``prob.tif`` and
``summary.json`` (written last: a prediction is listed once it is complete, or cancelled and saved).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SegDashError
from ..nn.metrics import confusion_matrix, slice_scores
from ..store.layout import PRED_MASKS as MASKS
from ..store.layout import PRED_PROB as PROB
from ..store.layout import PRED_SUMMARY as SUMMARY
from ..store.layout import prediction_dir, predictions_dir
from .probabilities import read_prediction_tiff

__all__ = [
    "GROUND_TRUTH_STATUSES",
    "score_prediction",
    "load_prediction",
    "list_predictions",
    "prob_path",
    "SUMMARY",
    "MASKS",
    "PROB",
]

#: Mask statuses that count as ground truth when a prediction is scored. ``from-prediction`` masks
#: are accepted predictions, not independent truth, and are not scored.
GROUND_TRUTH_STATUSES = ("labeled", "edited")


def score_prediction(
    ws: Any, dataset: str, labels: np.ndarray | Callable[[int], np.ndarray], zs: Sequence[int] | None = None
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Score predicted masks against the dataset's ground-truth masks.

    Ground truth is a slice with status ``labeled`` or ``edited`` (:data:`GROUND_TRUTH_STATUSES`).

    Args:
        ws: the :class:`core.store.workspace.Workspace`.
        dataset: dataset name.
        labels: predicted (Z, Y, X) class indices (array or memmap), or ``labels(z) -> (Y, X)``.
        zs: slices to consider (default all ground-truth slices among ``0 .. len(labels) - 1``).

    Returns:
        ``(rows, confusion)``: one row per scored slice in slice order with ``z, name, status,
        dice, iou, pixel_error, accuracy, dice_per_class, iou_per_class`` (``dice``/``iou``: of the
        foreground for binary, the mean over classes otherwise), and the (K, K) confusion matrix
        summed over them (rows: truth, columns: prediction).
    """
    info = ws.dataset(dataset)
    k = info.n_classes
    get = labels if callable(labels) else (lambda z: np.asarray(labels[z]))
    n_pred = None if callable(labels) else labels.shape[0]
    if zs is None:
        zs = [z for z, s in enumerate(info.statuses) if s in GROUND_TRUTH_STATUSES and (n_pred is None or z < n_pred)]
    rows: list[dict[str, Any]] = []
    conf = np.zeros((k, k), np.int64)
    for z in zs:
        truth = ws.read_truth(dataset, z)  # a person's pixels only (core.data.provenance)
        if truth is None:
            continue
        pred = get(z)
        s = slice_scores(pred, truth, k)
        conf += np.asarray(confusion_matrix(pred, truth, k), dtype=np.int64)
        rows.append(
            {
                "z": int(z),
                "name": info.slice_names[z],
                "status": info.statuses[z],
                "dice": float(s["dice_fg"] if "dice_fg" in s else s["mean_dice"]),
                "iou": float(s["iou_fg"] if "iou_fg" in s else s["mean_iou"]),
                "pixel_error": float(s["pixel_error"]),
                "accuracy": float(s["accuracy"]),
                "dice_per_class": [float(v) for v in s["dice"]],
                "iou_per_class": [float(v) for v in s["iou"]],
            }
        )
    return rows, conf


def load_prediction(ws: Any, dataset: str, run_id: str) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """A stored prediction: ``(masks, probs, summary)``.

    Returns:
        masks: (Z', Y, X) uint8 memmap, Z' = slices predicted (all unless cancelled);
        probs: as stored (uint8 = probability x 255): (Z', Y, X) P(class 1) for binary,
            (Z', K, Y, X) otherwise; ``None`` if absent. Re-threshold with :func:`~core.predict.probabilities.relabel`;
        summary: the ``summary.json`` dict (see :func:`~core.predict.dataset.predict_dataset`).
    """
    folder = _prediction_folder(ws, dataset, run_id)
    try:
        summary = json.loads((folder / SUMMARY).read_text())
    except (OSError, ValueError):
        known = ", ".join(list_predictions(ws, dataset)) or "none"
        raise SegDashError(f"no prediction {run_id!r} for dataset {dataset!r} (predictions: {known})") from None
    masks = read_prediction_tiff(folder / MASKS)
    probs = read_prediction_tiff(folder / PROB) if (folder / PROB).exists() else None
    return masks, probs, summary


def _prediction_folder(ws: Any, dataset: str, run_id: str | None = None) -> Path:
    """Same layout as ``Workspace.predictions_dir`` without creating folders."""
    return predictions_dir(ws.root, dataset) if run_id is None else prediction_dir(ws.root, dataset, run_id)


def prob_path(ws: Any, dataset: str, run_id: str) -> Path:
    """The stored probability TIFF of prediction ``run_id`` of ``dataset`` (for
    :func:`~core.predict.probabilities.relabel`)."""
    return _prediction_folder(ws, dataset, run_id) / PROB


def list_predictions(ws: Any, dataset: str) -> list[str]:
    """Run ids with a complete stored prediction for ``dataset``, newest first."""
    base = _prediction_folder(ws, dataset)
    if not base.is_dir():
        return []
    found = [p for p in base.iterdir() if (p / SUMMARY).is_file() and (p / MASKS).is_file()]
    found.sort(key=lambda p: (p / SUMMARY).stat().st_mtime, reverse=True)
    return [p.name for p in found]
