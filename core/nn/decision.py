"""From class probabilities to labels: the decision a run tunes on its validation slices (numpy only).

A :class:`Decision` holds the binary threshold (foreground where P(class 1) > ``threshold``), per-class
weights for more classes (label = arg-max of ``weight_k * P(class k)``), and an optional cleanup:
objects (connected components, 8-connected, of each class but 0) smaller than ``min_size`` pixels
become background, holes (components of class 0 not touching the border) smaller than
``hole_size`` pixels take the class around them. :func:`tune_decision` picks each on validation
slices (best mean IoU over classes), :func:`apply_decision` applies it; the run stores it in its
checkpoints and prediction uses it unless told otherwise.

Partial labels (strokes) hold the classes in the shares the annotator drew them (about equal), not
in the image's: a model trained on them over-predicts the rarer class, and a decision tuned on
the strokes alone makes it worse. :func:`estimate_priors` estimates the classes' shares in the
whole validation slices from the model's probabilities (Saerens, Latinne & Decaestecker 2002,
"Adjusting the outputs of a classifier to new a priori probabilities"), and :func:`tune_decision`
then weighs each true class's pixels to that share.

Example:
    >>> import numpy as np
    >>> p = np.array([[[0.3, 0.45, 0.6]]], dtype=np.float32)  # (K=1: P(class 1), Y=1, X=3)
    >>> apply_decision(p, Decision(threshold=0.4)).tolist()
    [[0, 1, 1]]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import SegDashError
from .metrics import confusion_matrix, scores_from_confusion

__all__ = ["Decision", "apply_decision", "cleanup", "tune_decision", "estimate_priors", "THRESHOLDS", "SIZES"]

#: Thresholds tried by :func:`tune_decision` (binary), and object / hole sizes in pixels.
THRESHOLDS = tuple(round(0.1 + 0.05 * i, 2) for i in range(17))
SIZES = (0, 16, 64, 256, 1024)
_WEIGHTS = (0.5, 0.7, 1.0, 1.4, 2.0)


@dataclass(frozen=True)
class Decision:
    """How probabilities become labels.

    Args:
        threshold: binary models: foreground where P(class 1) > ``threshold``.
        class_weights: models of more classes: one weight per class (empty: all 1, plain arg-max).
        min_size: objects smaller than this many pixels become background (0: kept).
        hole_size: holes smaller than this many pixels are filled (0: kept).
    """

    threshold: float = 0.5
    class_weights: tuple[float, ...] = ()
    min_size: int = 0
    hole_size: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.threshold) <= 1.0:
            raise SegDashError(f"threshold must be in [0, 1], got {self.threshold}")
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        if any(not w > 0 for w in self.class_weights):
            raise SegDashError(f"class weights must be positive, got {list(self.class_weights)}")
        for name in ("min_size", "hole_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or int(v) != v or v < 0:
                raise SegDashError(f"{name} must be a number of pixels (0 or more), got {v!r}")
            object.__setattr__(self, name, int(v))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["class_weights"] = list(self.class_weights)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Decision:
        """From a stored dict; unknown keys are ignored, missing ones take the defaults."""
        d = dict(d or {})
        return cls(**{k: d[k] for k in ("threshold", "class_weights", "min_size", "hole_size") if k in d})


def _fill_holes(labels: np.ndarray, hole_size: int) -> np.ndarray:
    from scipy import ndimage

    bg, n = ndimage.label(labels == 0)
    if not n:
        return labels
    sizes = np.bincount(bg.ravel(), minlength=n + 1)
    border = np.unique(np.concatenate([bg[0], bg[-1], bg[:, 0], bg[:, -1]]))
    small = np.flatnonzero(sizes < hole_size)
    small = small[(small > 0) & ~np.isin(small, border)]
    if not small.size:
        return labels
    out = labels.copy()
    if labels.max() <= 1:
        out[np.isin(bg, small)] = 1
        return out
    for i, sl in enumerate(ndimage.find_objects(bg), start=1):
        if sl is None or i not in set(small.tolist()):
            continue
        sl = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in sl)
        hole = bg[sl] == i
        ring = ndimage.binary_dilation(hole) & ~hole
        around = labels[sl][ring]
        around = around[around > 0]
        if around.size:
            out[sl][hole] = np.bincount(around).argmax()
    return out


def cleanup(labels: np.ndarray, min_size: int = 0, hole_size: int = 0) -> np.ndarray:
    """(Y, X) class indices with objects below ``min_size`` pixels removed and holes below
    ``hole_size`` pixels filled (see the module docstring); the input is not changed.

    >>> import numpy as np
    >>> m = np.zeros((6, 6), np.uint8); m[0, 5] = 1; m[1:4, 1:4] = 1; m[2, 2] = 0
    >>> int(cleanup(m, min_size=2, hole_size=2).sum())  # the lone pixel goes, the hole is filled
    9
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise SegDashError(f"expected (Y, X) labels, got shape {labels.shape}")
    out = labels
    if min_size > 0:
        out = labels.copy()
        eight = np.ones((3, 3), bool)
        for k in np.unique(labels):
            if k == 0:
                continue
            comp, n = ndimage.label(labels == k, structure=eight)
            sizes = np.bincount(comp.ravel(), minlength=n + 1)
            small = sizes < min_size
            small[0] = False
            out[small[comp]] = 0
    if hole_size > 0:
        out = _fill_holes(out, hole_size)
    return out


def apply_decision(probs: np.ndarray, decision: Decision = Decision()) -> np.ndarray:
    """(K, Y, X) probabilities (or (1, Y, X) holding P(class 1)) to (Y, X) uint8 labels."""
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise SegDashError(f"expected (K, Y, X) probabilities, got shape {probs.shape}")
    if probs.shape[0] <= 2:
        labels = (probs[-1] > decision.threshold).astype(np.uint8)
    elif decision.class_weights:
        if len(decision.class_weights) != probs.shape[0]:
            raise SegDashError(f"{len(decision.class_weights)} class weights for {probs.shape[0]} classes")
        w = np.asarray(decision.class_weights, np.float32)[:, None, None]
        labels = np.argmax(probs * w, axis=0).astype(np.uint8)
    else:
        labels = np.argmax(probs, axis=0).astype(np.uint8)
    if decision.min_size or decision.hole_size:
        labels = cleanup(labels, decision.min_size, decision.hole_size)
    return labels


def _mean_iou(
    preds: Sequence[np.ndarray], truths: Sequence[np.ndarray], k: int, priors: np.ndarray | None = None
) -> float:
    cm = sum(confusion_matrix(p, t, k) for p, t in zip(preds, truths)).astype(np.float64)
    if priors is not None:  # each true class's row weighed to its estimated share of the slices
        rows = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0) * priors[:, None]
    return float(scores_from_confusion(cm)["mean_iou"])


def estimate_priors(
    probs: Sequence[np.ndarray], truths: Sequence[np.ndarray], n_classes: int, iterations: int = 200
) -> np.ndarray | None:
    """The classes' shares in the whole slices, when their labels are partial; ``None`` when every
    pixel is labeled (or none is).

    The model's probabilities reflect the shares of the labeled pixels it learnt from (taken here
    as those of the labeled pixels of these slices); the EM of Saerens et al. (2002) adjusts them
    to the shares that make the adjusted probabilities, averaged over every pixel, agree with
    themselves. Uses every 4th pixel of each slice.

    Args:
        probs: per slice, (K, Y, X) probabilities (or (1, Y, X): P(class 1)).
        truths: their (Y, X) class indices, ``UNLABELED`` (255) where not labeled.
        n_classes: K.

    Example:
        >>> p = np.full((2, 4, 4), 0.5, np.float32); t = np.full((4, 4), 255, np.uint8); t[0, :2] = (0, 1)
        >>> estimate_priors([p], [t], 2).round(2).tolist()  # as sure of either class: the shares drawn
        [0.5, 0.5]
    """
    if not truths:
        return None
    labeled = np.concatenate([t[t < n_classes].ravel() for t in truths]).astype(np.int64)
    counts = np.bincount(labeled, minlength=n_classes)[:n_classes]
    if counts.sum() in (0, sum(t.size for t in truths)):
        return None
    drawn = np.maximum(counts / counts.sum(), 1e-6)
    flat = []
    for p in probs:
        p = np.asarray(p, np.float64)
        if p.shape[0] == 1:
            p = np.concatenate([1.0 - p, p])
        flat.append(p.reshape(p.shape[0], -1)[:, ::4])
    post = np.concatenate(flat, axis=1)  # (K, pixels)
    priors = drawn.copy()
    for _ in range(iterations):
        adjusted = post * (priors / drawn)[:, None]
        adjusted /= np.maximum(adjusted.sum(axis=0, keepdims=True), 1e-12)
        new = adjusted.mean(axis=1)
        done = np.abs(new - priors).max() < 1e-6
        priors = new
        if done:
            break
    return priors


def tune_decision(
    probs: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    n_classes: int,
    cleanup_sizes: Sequence[int] = SIZES,
    priors: Sequence[float] | None = None,
) -> tuple[Decision, dict[str, float]]:
    """The decision with the best mean IoU over classes on validation slices.

    The threshold (binary) or the class weights (coordinate search, two rounds) first, then
    ``min_size`` and then ``hole_size`` among ``cleanup_sizes``; a cleanup is kept only when it
    raises the mean IoU by more than 0.001, so noise does not pick it.

    Args:
        probs: per validation slice, (K, Y, X) probabilities (or (1, Y, X): P(class 1)).
        truths: their (Y, X) class indices.
        n_classes: K.
        priors: the classes' shares of the slices (:func:`estimate_priors`, for partial labels):
            the labeled pixels of each true class are weighed to add up to its share, so the mean
            IoU is that of the whole slices, not of the strokes. ``None``: pixels count as they are.

    Returns:
        ``(decision, {"mean_iou_default": ..., "mean_iou_tuned": ...})``.
    """
    if not probs:
        return Decision(), {}
    shares = None if priors is None else np.asarray(priors, np.float64)

    def score(d: Decision) -> float:
        return _mean_iou([apply_decision(p, d) for p in probs], truths, n_classes, shares)

    best = Decision()
    base = best_score = score(best)

    def consider(d: Decision, margin: float) -> None:
        nonlocal best, best_score
        s = score(d)
        if s > best_score + margin:
            best, best_score = d, s

    if n_classes <= 2:  # the best threshold; ties go to the one nearest 0.5
        for t in sorted(THRESHOLDS, key=lambda t: abs(t - 0.5)):
            consider(Decision(threshold=t), 0.0)
    else:
        for _ in range(2):
            for k in range(1, n_classes):
                for w in _WEIGHTS:
                    weights = list(best.class_weights or [1.0] * n_classes)
                    weights[k] = w
                    consider(Decision(class_weights=tuple(weights)), 1e-4)
    for size in (s for s in cleanup_sizes if s):
        consider(Decision(best.threshold, best.class_weights, size, 0), 1e-3)
    for size in (s for s in cleanup_sizes if s):
        consider(Decision(best.threshold, best.class_weights, best.min_size, size), 1e-3)
    return best, {"mean_iou_default": base, "mean_iou_tuned": best_score}
