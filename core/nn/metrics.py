"""Segmentation metrics from a confusion matrix: accuracy, pixel error, Dice and IoU per class.

MONAI-style pair: stateless functions (:func:`confusion_matrix`, :func:`scores_from_confusion`,
:func:`slice_scores`) and an accumulator (:class:`ConfusionAccumulator`) that sums confusion
matrices over batches and slices, so a dataset's score is computed over all its pixels (micro
average), not as a mean of per-slice scores.

Conventions:

- Inputs are class-index label images of equal shape (any leading axes), numpy or torch. Pixels
  whose truth is ``ignore_index`` (default :data:`~core.data.masks.UNLABELED`: not labeled) are not
  counted: scores of partial masks are scores on their labeled pixels only.
- The confusion matrix has rows = truth, columns = prediction.
- A class absent from both truth and prediction has Dice/IoU ``nan`` (nothing to score) and is left
  out of ``mean_dice`` / ``mean_iou``, which average over the classes present.
- For binary data (K = 2), class 1 is the foreground; ``dice_fg`` / ``iou_fg`` repeat its score.
  The training history's headline ``val_dice`` is ``mean_dice`` (mean over classes).

Example:
    >>> import numpy as np
    >>> truth = np.array([[0, 1], [1, 1]])
    >>> pred = np.array([[0, 1], [0, 1]])
    >>> confusion_matrix(pred, truth, 2).tolist()
    [[1, 0], [1, 2]]
    >>> s = slice_scores(pred, truth, 2)
    >>> round(s["accuracy"], 3), round(s["dice_fg"], 3), [round(d, 3) for d in s["dice"]]
    (0.75, 0.8, [0.667, 0.8])
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..data.masks import UNLABELED
from ..errors import SegDashError

__all__ = ["confusion_matrix", "scores_from_confusion", "slice_scores", "ConfusionAccumulator"]


def _as_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def confusion_matrix(pred: Any, target: Any, n_classes: int, ignore_index: int | None = UNLABELED) -> np.ndarray:
    """Count pixels by (true class, predicted class).

    Args:
        pred: predicted class indices, any shape, integer (numpy array or torch tensor).
        target: true class indices, same shape as ``pred``.
        n_classes: number of classes K.
        ignore_index: pixels whose target is this value are left out (``None``: none).

    Example:
        >>> confusion_matrix(np.array([1, 1, 0]), np.array([1, 255, 0]), 2).tolist()
        [[1, 0], [0, 1]]

    Returns:
        (K, K) int64 matrix, rows = truth, columns = prediction.

    Raises:
        ValueError: shapes differ or values fall outside 0..K-1.
    """
    if hasattr(pred, "detach") and hasattr(target, "detach") and pred.device == target.device:
        return _confusion_torch(pred, target, n_classes, ignore_index)
    p, t = _as_numpy(pred), _as_numpy(target)
    if p.shape != t.shape:
        raise SegDashError(f"prediction shape {p.shape} differs from target shape {t.shape}")
    p = p.astype(np.int64, copy=False).ravel()
    t = t.astype(np.int64, copy=False).ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    if p.size and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= n_classes):
        raise SegDashError(f"labels must be class indices 0..{n_classes - 1}")
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _confusion_torch(pred: Any, target: Any, n_classes: int, ignore_index: int | None) -> np.ndarray:
    """Same as :func:`confusion_matrix`, computed on the tensors' device (no big copy off a GPU)."""
    import torch

    if pred.shape != target.shape:
        raise SegDashError(f"prediction shape {tuple(pred.shape)} differs from target shape {tuple(target.shape)}")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    if ignore_index is not None:
        keep = t != ignore_index
        p, t = p[keep], t[keep]
    if p.numel() and (min(p.min(), t.min()) < 0 or max(p.max(), t.max()) >= n_classes):
        raise SegDashError(f"labels must be class indices 0..{n_classes - 1}")
    cm = torch.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return cm.reshape(n_classes, n_classes).cpu().numpy().astype(np.int64)


def scores_from_confusion(cm: np.ndarray) -> dict[str, Any]:
    """Scores from a confusion matrix (rows = truth, columns = prediction).

    Returns:
        dict with ``accuracy``, ``pixel_error`` (1 - accuracy), ``dice`` and ``iou`` (lists, one
        float per class, ``nan`` for a class absent from truth and prediction), ``mean_dice`` and
        ``mean_iou`` (over the classes present); for K = 2 also ``dice_fg`` and ``iou_fg`` (class 1).
        All values are plain Python floats.

    Example:
        >>> s = scores_from_confusion(np.array([[5, 1], [0, 2]]))
        >>> s["pixel_error"], s["iou"]
        (0.125, [0.8333333333333334, 0.6666666666666666])
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise SegDashError(f"confusion matrix must be square (K, K), got shape {cm.shape}")
    total = cm.sum()
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        dice = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
    accuracy = float(tp.sum() / total) if total > 0 else math.nan
    out: dict[str, Any] = {
        "accuracy": accuracy,
        "pixel_error": 1.0 - accuracy,
        "dice": [float(d) for d in dice],
        "iou": [float(v) for v in iou],
        "mean_dice": _nanmean(dice),
        "mean_iou": _nanmean(iou),
    }
    if cm.shape[0] == 2:
        out["dice_fg"] = float(dice[1])
        out["iou_fg"] = float(iou[1])
    return out


def _nanmean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else math.nan


def slice_scores(pred: Any, target: Any, n_classes: int) -> dict[str, Any]:
    """Scores of one (Y, X) prediction against its (Y, X) truth; keys as :func:`scores_from_confusion`."""
    return scores_from_confusion(confusion_matrix(pred, target, n_classes))


class ConfusionAccumulator:
    """Sum confusion matrices over batches, then score them all at once.

    Args:
        n_classes: number of classes K.

    Example:
        >>> acc = ConfusionAccumulator(2)
        >>> acc.update(np.array([0, 1]), np.array([0, 1])).update(np.array([1]), np.array([0]))
        ConfusionAccumulator(n_classes=2, pixels=3)
        >>> acc.compute()["accuracy"]
        0.6666666666666666
    """

    def __init__(self, n_classes: int):
        if n_classes < 2:
            raise SegDashError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = n_classes
        self._cm = np.zeros((n_classes, n_classes), np.int64)

    def __repr__(self) -> str:
        return f"ConfusionAccumulator(n_classes={self.n_classes}, pixels={int(self._cm.sum())})"

    def update(self, pred: Any, target: Any) -> ConfusionAccumulator:
        """Add class-index predictions and targets of equal shape (numpy or torch); returns self."""
        self._cm += confusion_matrix(pred, target, self.n_classes)
        return self

    def reset(self) -> None:
        self._cm[:] = 0

    @property
    def matrix(self) -> np.ndarray:
        """A copy of the summed (K, K) matrix, rows = truth, columns = prediction."""
        return self._cm.copy()

    def compute(self) -> dict[str, Any]:
        """Scores of everything added so far (see :func:`scores_from_confusion`)."""
        return scores_from_confusion(self._cm)
