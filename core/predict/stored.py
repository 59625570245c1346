"""Stored predictions of a workspace's datasets, read and scored with numpy only (no torch), so the
review, guide and assist steps reach them without importing the network.

A prediction lives in ``predictions/<dataset>/<run_id>/``: ``masks.tif``, ``prob.tif`` and
``summary.json`` (written last: a prediction is listed once it is complete, or cancelled and saved).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..data.records import Record, json_clean
from ..errors import SegDashError
from ..nn.metrics import confusion_matrix, slice_scores
from ..store.layout import PRED_MASKS as MASKS
from ..store.layout import PRED_PROB as PROB
from ..store.layout import PRED_SUMMARY as SUMMARY
from ..store.layout import prediction_dir, predictions_dir
from .probabilities import read_prediction_tiff

__all__ = [
    "GROUND_TRUTH_STATUSES",
    "SCORE_KEYS",
    "PredictionSummary",
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

#: A slice's scores against its ground truth, as :func:`score_prediction` rows and the scored
#: entries of :attr:`PredictionSummary.slices` carry them (``dice``/``iou``: of the foreground for
#: two classes, the mean over classes otherwise).
SCORE_KEYS = ("dice", "iou", "pixel_error", "accuracy", "dice_per_class", "iou_per_class")


@dataclass
class PredictionSummary(Record):
    """A stored prediction's ``summary.json``: its keys are these fields (``to_dict()`` for JSON).

    :func:`~core.predict.dataset.predict_dataset` writes every field; a summary written by an older
    SegDash may lack some, which then hold the defaults below (``None``: unknown).

    Attributes:
        dataset, run_id: what was predicted, and the prediction's name.
        checkpoint: the checkpoint file (absolute); checkpoint_epoch: its epoch.
        class_names, n_classes: the dataset's classes when predicted; model_class_names: the model's.
        threshold: binary models: P(class 1) above it is foreground; decision: the whole decision
            used (:class:`~core.nn.decision.Decision` as a dict: threshold, class weights, cleanup);
            split: the model's training split (which slices were validation, test); config: the
            :class:`~core.predict.config.PredictConfig` as a dict; tile: tile side used.
        norm_window: the checkpoint's intensity window; prob_dtype, prob_scale: how ``prob.tif``
            stores probabilities (uint8, probability x 255).
        device, seconds, created: where the network ran, how long it took, ``time.time()`` at the end.
        n_done, n_total, cancelled: slices predicted, of the stack's; whether it was cancelled.
        mean_uncertainty, mean_dice: over the predicted slices, and over the scored ones.
        confusion: (K, K) pixel counts over the scored slices (rows: truth, columns: prediction).
        slices: per predicted slice ``{z, name, status, uncertainty}``, plus :data:`SCORE_KEYS`
            where the slice had ground truth.
        warnings: what did not fit between the checkpoint and the dataset; trained_on: the
            dataset the model was trained on.

    Example:
        >>> s = PredictionSummary.from_dict({"dataset": "cells", "run_id": "r1", "threshold": 0.4, "new": 1})
        >>> s.threshold, s["run_id"], s.n_done is None
        (0.4, 'r1', True)
    """

    dataset: str = ""
    run_id: str = ""
    checkpoint: str = ""
    checkpoint_epoch: int | None = None
    class_names: list[str] = field(default_factory=list)
    n_classes: int | None = None
    threshold: float = 0.5
    decision: dict[str, Any] | None = None
    split: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tile: int | None = None
    norm_window: list[float] = field(default_factory=list)
    prob_dtype: str = "uint8"
    prob_scale: float = 255.0
    device: str | None = None
    created: float = 0.0
    seconds: float = 0.0
    n_done: int | None = None
    n_total: int | None = None
    cancelled: bool = False
    mean_uncertainty: float | None = None
    mean_dice: float | None = None
    confusion: list[list[int]] = field(default_factory=list)
    slices: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    trained_on: str | None = None
    model_class_names: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PredictionSummary":
        """From a ``summary.json`` dict; keys of a newer SegDash that this one does not know are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json(self) -> str:
        """The ``summary.json`` text (NaN and infinity as ``null``, numpy values as Python's)."""
        return json.dumps(json_clean(self.to_dict()), indent=1)


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
        scores = (
            float(s["dice_fg"] if "dice_fg" in s else s["mean_dice"]),
            float(s["iou_fg"] if "iou_fg" in s else s["mean_iou"]),
            float(s["pixel_error"]),
            float(s["accuracy"]),
            [float(v) for v in s["dice"]],
            [float(v) for v in s["iou"]],
        )
        rows.append(
            {"z": int(z), "name": info.slice_names[z], "status": info.statuses[z], **dict(zip(SCORE_KEYS, scores))}
        )
    return rows, conf


def load_prediction(ws: Any, dataset: str, run_id: str) -> tuple[np.ndarray, np.ndarray | None, PredictionSummary]:
    """A stored prediction: ``(masks, probs, summary)``.

    Returns:
        masks: (Z', Y, X) uint8 memmap, Z' = slices predicted (all unless cancelled);
        probs: as stored (uint8 = probability x 255): (Z', Y, X) P(class 1) for binary,
            (Z', K, Y, X) otherwise; ``None`` if absent. Re-threshold with :func:`~core.predict.probabilities.relabel`;
        summary: its ``summary.json`` (:class:`PredictionSummary`; written by
            :func:`~core.predict.dataset.predict_dataset`).
    """
    folder = _prediction_folder(ws, dataset, run_id)
    try:
        raw = json.loads((folder / SUMMARY).read_text())
        summary = PredictionSummary.from_dict({"dataset": dataset, "run_id": run_id, **raw})
    except (OSError, ValueError, TypeError):
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
