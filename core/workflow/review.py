"""Reviewing a stored prediction: the correction queue, per-slice scores, accepting a prediction.

Works on what :func:`core.predict.dataset.predict_dataset` stored (masks, probabilities, summary) and on
the workspace's *current* masks, so scores follow the user's edits without predicting again. Every
function takes ``threshold=None`` (the prediction's own) or a new threshold, re-labelling binary
predictions from the stored probabilities (:func:`core.predict.probabilities.relabel`) as a threshold slider
does.

Ground truth is a slice whose mask is ``labeled`` or ``edited``; a ``from-prediction`` mask is an
accepted prediction, not independent truth, and is not scored.

Order of the correction queue (:func:`correction_queue`), worst first, in three blocks:

1. **Label next**: unlabeled slices, most uncertain first (mean normalised entropy of the
   prediction, :func:`core.predict.probabilities.slice_uncertainty`). This is the active-learning order of
   MONAI Label's "next sample" and of ilastik's uncertainty view: correcting the prediction where
   the model is least sure adds the most to the next training round.
2. **Check**: ground-truth slices, lowest Dice against their mask first. A low Dice on a labeled
   slice points at a label mistake or a case the model has not learned.
3. **Accepted**: ``from-prediction`` slices, most uncertain first; already reviewed.

``priority`` is one number that gives the same order: ``2 + uncertainty`` for block 1,
``1 + (1 - Dice)`` for block 2, ``uncertainty`` for block 3 (higher = sooner). A slice with no
foreground in truth or prediction has no Dice (``None``) and ranks as perfect.

Example:
    >>> queue = correction_queue(ws, "cells", "run-0001")         # doctest: +SKIP
    >>> queue[0]["reason"]                                        # doctest: +SKIP
    'unlabeled; uncertainty 0.31 (highest first): label this next'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..data.records import finite_or_none
from ..errors import SegDashError
from ..predict.probabilities import relabel
from ..predict.stored import (
    GROUND_TRUTH_STATUSES,
    PredictionSummary,
    load_prediction,
    prob_path,
    score_prediction,
)

__all__ = [
    "PredictionReview",
    "review_prediction",
    "correction_queue",
    "per_slice_scores",
    "dataset_confusion",
    "accept_prediction",
    "class_dice",
    "collapse_warning",
]


def _labels_getter(
    ws: Any, dataset: str, run_id: str, threshold: float | None
) -> tuple[Callable[[int], np.ndarray], int, PredictionSummary]:
    """``(labels(z), slices predicted, summary)`` at the prediction's threshold or a new one."""
    masks, probs, summary = load_prediction(ws, dataset, run_id)
    n = masks.shape[0]
    if threshold is None or float(threshold) == float(summary.threshold) or probs is None:
        return (lambda z: np.asarray(masks[z])), n, summary
    path = prob_path(ws, dataset, run_id)
    return (lambda z: relabel(path, threshold, z=z)), n, summary


def _dice_key(d: float | None) -> float:
    return 1.0 if d is None or (isinstance(d, float) and math.isnan(d)) else float(d)


@dataclass(frozen=True)
class PredictionReview:
    """Everything the review of one prediction needs, from one scoring pass over the ground truth.

    Attributes:
        scores: rows of :func:`per_slice_scores`, worst first.
        queue: rows of :func:`correction_queue`, highest priority first.
        confusion: the (K, K) matrix of :func:`dataset_confusion`.
    """

    scores: list[dict[str, Any]]
    queue: list[dict[str, Any]]
    confusion: np.ndarray

    def slice_score(self, z: int) -> dict[str, Any] | None:
        """The score row of slice ``z``, ``None`` where it is not scored (no ground truth)."""
        return next((r for r in self.scores if r["z"] == z), None)


def _score_pass(
    ws: Any, dataset: str, run_id: str, threshold: float | None
) -> tuple[list[dict[str, Any]], np.ndarray, PredictionSummary]:
    """Every ground-truth slice scored once: ``(rows worst first, confusion, summary)``."""
    labels, n, summary = _labels_getter(ws, dataset, run_id, threshold)
    info = ws.dataset(dataset)
    zs = [z for z in range(min(n, len(info.statuses))) if info.statuses[z] in GROUND_TRUTH_STATUSES]
    rows, conf = score_prediction(ws, dataset, labels, zs)
    unc = {s["z"]: s.get("uncertainty") for s in summary.slices}
    for r in rows:
        r["uncertainty"] = unc.get(r["z"])
        r["dice"], r["iou"] = finite_or_none(r["dice"]), finite_or_none(r["iou"])
    rows.sort(key=lambda r: (_dice_key(r["dice"]), -r["pixel_error"], r["z"]))
    return rows, conf, summary


def review_prediction(ws: Any, dataset: str, run_id: str, threshold: float | None = None) -> PredictionReview:
    """Scores, correction queue and confusion of a prediction, each ground-truth slice scored once.

    What the Predictions page shows: the same numbers as :func:`per_slice_scores`,
    :func:`correction_queue` and :func:`dataset_confusion`, which would score every slice three times.
    """
    rows, conf, summary = _score_pass(ws, dataset, run_id, threshold)
    return PredictionReview(scores=rows, queue=_queue(ws.dataset(dataset), summary, rows), confusion=conf)


def per_slice_scores(ws: Any, dataset: str, run_id: str, threshold: float | None = None) -> list[dict[str, Any]]:
    """Scores of the prediction on every ground-truth slice, worst (lowest Dice) first.

    Args:
        ws: the workspace.
        dataset: dataset name.
        run_id: prediction id (:func:`core.predict.stored.list_predictions`).
        threshold: ``None``: the prediction's masks; else re-label binary probabilities.

    Returns:
        rows ``{z, name, status, dice, iou, pixel_error, accuracy, dice_per_class, iou_per_class,
        uncertainty}``; ``dice``/``iou`` are of the foreground for binary data, the mean over classes
        otherwise, ``None`` when there is nothing to score.
    """
    return _score_pass(ws, dataset, run_id, threshold)[0]


def dataset_confusion(ws: Any, dataset: str, run_id: str, threshold: float | None = None) -> np.ndarray:
    """(K, K) int64 confusion matrix of the prediction over all ground-truth slices.

    Rows are the true class, columns the predicted class (:func:`core.nn.metrics.confusion_matrix`).
    """
    return _score_pass(ws, dataset, run_id, threshold)[1]


def correction_queue(ws: Any, dataset: str, run_id: str, threshold: float | None = None) -> list[dict[str, Any]]:
    """Every predicted slice, in the order to review it (see the module docstring).

    Returns:
        rows ``{z, name, status, dice, iou, pixel_error, uncertainty, priority, reason}``, highest
        ``priority`` first; ``dice``/``iou``/``pixel_error`` are ``None`` for slices without ground
        truth.
    """
    rows, _, summary = _score_pass(ws, dataset, run_id, threshold)
    return _queue(ws.dataset(dataset), summary, rows)


def _queue(info: Any, summary: PredictionSummary, scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The correction queue from the slices' scores (rows of :func:`per_slice_scores`)."""
    scored = {r["z"]: r for r in scores}
    rows: list[dict[str, Any]] = []
    for s in summary.slices:
        z = int(s["z"])
        if z >= len(info.statuses):
            continue
        status = info.statuses[z]
        u = float(s.get("uncertainty") or 0.0)
        row = {
            "z": z,
            "name": info.slice_names[z],
            "status": status,
            "dice": None,
            "iou": None,
            "pixel_error": None,
            "uncertainty": u,
        }
        if z in scored:
            r = scored[z]
            row.update(dice=r["dice"], iou=r["iou"], pixel_error=r["pixel_error"])
            d = _dice_key(r["dice"])
            row["priority"] = 1.0 + (1.0 - d)
            dice_txt = "no foreground to score" if r["dice"] is None else f"Dice {d:.3f} vs its mask"
            row["reason"] = f"{status}; {dice_txt} (lowest first): check the mask or the model"
        elif status == "unlabeled":
            row["priority"] = 2.0 + u
            row["reason"] = f"unlabeled; uncertainty {u:.2f} (highest first): label this next"
        else:
            row["priority"] = u
            row["reason"] = f"accepted prediction; uncertainty {u:.2f}"
        rows.append(row)
    rows.sort(key=lambda r: (-r["priority"], r["z"]))
    return rows


def accept_prediction(ws: Any, dataset: str, run_id: str, z: int, threshold: float | None = None) -> int:
    """Save the predicted mask of slice ``z`` as its new mask version, status ``from-prediction``.

    Args:
        threshold: ``None``: the stored mask; else re-labelled from the stored probabilities.

    Returns:
        the new mask version number (earlier versions stay; undo with ``Workspace.undo_mask``).
    """
    labels, n, _ = _labels_getter(ws, dataset, run_id, threshold)
    if not 0 <= z < n:
        raise SegDashError(f"slice {z} has no prediction in {run_id!r} (predicted slices 0..{n - 1})")
    return ws.save_mask(dataset, z, labels(z), status="from-prediction", source=f"accepted:{run_id}")


def class_dice(scores: list[dict[str, Any]], n_classes: int) -> tuple[list[float | None], float | None]:
    """Per-class Dice averaged over the scored slices, and their mean over classes.

    A slice where a class is absent from both truth and prediction does not count for that class
    (its Dice is undefined). The headline of a review: a model that predicts every pixel as one
    class has a high Dice for that class and 0 for the others, which one foreground Dice hides.

    Args:
        scores: rows of :func:`per_slice_scores` (``dice_per_class``).
        n_classes: K.

    Returns:
        ``(per_class, mean)``: K values (``None`` where no slice defines it) and their mean over
        the defined classes (``None`` when there is none).

    Example:
        >>> class_dice([{"dice_per_class": [0.0, 0.9]}, {"dice_per_class": [float("nan"), 0.7]}], 2)
        ([0.0, 0.8], 0.4)
    """
    per_class: list[float | None] = []
    for k in range(n_classes):
        vals = [
            float(r["dice_per_class"][k])
            for r in scores
            if len(r.get("dice_per_class") or ()) > k and math.isfinite(float(r["dice_per_class"][k]))
        ]
        per_class.append(round(float(np.mean(vals)), 12) if vals else None)
    defined = [v for v in per_class if v is not None]
    return per_class, (round(float(np.mean(defined)), 12) if defined else None)


def collapse_warning(
    confusion: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    min_share: float = 0.01,
    min_recall_ratio: float = 0.1,
) -> str | None:
    """A sentence when the model (nearly) never predicts a class that the masks have.

    A class that holds at least ``min_share`` of the true pixels but is predicted on fewer than
    ``min_recall_ratio`` times as many pixels as it has is "missing": the model has collapsed
    onto the other classes (typically everything predicted as the majority class).

    Args:
        confusion: (K, K) pixel counts over the scored slices (rows truth, columns prediction).
        class_names: K names.

    Example:
        >>> collapse_warning(np.array([[0, 20], [0, 80]]), ["membrane", "cell"])[:44]
        "the model predicts no 'membrane' pixels: it "
    """
    cm = np.asarray(confusion, dtype=np.float64)
    total = cm.sum()
    if total <= 0:
        return None
    true_px, pred_px = cm.sum(axis=1), cm.sum(axis=0)
    missing = [
        k for k in range(cm.shape[0]) if true_px[k] >= min_share * total and pred_px[k] < min_recall_ratio * true_px[k]
    ]
    if not missing:
        return None
    names = ", ".join(f"'{class_names[k]}'" for k in missing)
    pct = ", ".join(
        f"{100 * pred_px[k] / total:.1f} % predicted vs {100 * true_px[k] / total:.1f} % in the masks" for k in missing
    )
    few = "no" if all(pred_px[k] == 0 for k in missing) else "almost no"
    return (
        f"the model predicts {few} {names} pixels: it has collapsed onto the other "
        f"class{'es' if cm.shape[0] > 2 else ''} ({pct}). Its Dice for the classes it does predict looks "
        "good but means little: train longer, with more labeled slices, or with the Dice loss."
    )
