"""The Predictions page's decisions about one stored prediction, apart from its widgets.

Whether a threshold applies (:func:`adjustable_threshold`), which one re-labels the prediction
(:func:`threshold_override`), in which order the headline
shows the classes (:func:`headline_classes`), and what the slice browser shows of one slice
(:func:`slice_review`): its predicted labels at that threshold, its uncertainty, and whether it is
scored. The "scored" rule is :mod:`core.workflow.review`'s: a slice is scored when a person drew or
imported its mask (status ``labeled`` or ``edited``); an accepted prediction is not independent
truth. The slice's scores are read from the review's one scoring pass
(:func:`core.workflow.review.review_prediction`), so no slice is scored twice per page.

Numpy only (no torch): the page imports it on every run.

Example:
    >>> threshold_override(0.5, 0.5) is None, threshold_override(0.7, 0.5)
    (True, 0.7)
    >>> adjustable_threshold(2, np.zeros((1, 4, 4))), adjustable_threshold(3, np.zeros((1, 4, 4)))
    (True, False)
    >>> headline_classes(2), headline_classes(3)
    ([1, 0], [0, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..predict.probabilities import relabel, uncertainty_map
from ..predict.stored import GROUND_TRUTH_STATUSES, PredictionSummary, prob_path
from .review import PredictionReview

__all__ = [
    "SliceReview",
    "adjustable_threshold",
    "headline_classes",
    "slice_review",
    "status_note",
    "threshold_override",
]

_NOTES = {
    "from-prediction": " · its mask is an accepted prediction: not scored (edit it on the Label page to "
    "make it ground truth)",
    "unlabeled": " · no mask: unlabeled slice, not scored",
}


def adjustable_threshold(n_classes: int, probs: np.ndarray | None) -> bool:
    """Whether the page offers a threshold: a two-class prediction whose probabilities were stored
    re-labels from them; any other shows its stored masks."""
    return int(n_classes) == 2 and probs is not None


def threshold_override(chosen: float, stored: float) -> float | None:
    """The threshold to re-label with: ``None`` (the prediction's own masks) where ``chosen`` is the
    ``stored`` threshold, else ``chosen``."""
    return None if abs(float(chosen) - float(stored)) < 1e-9 else float(chosen)


def headline_classes(n_classes: int) -> list[int]:
    """The order of the classes in the headline: for two classes the foreground first."""
    return [1, 0] if n_classes == 2 else list(range(n_classes))


def status_note(status: str) -> str:
    """What the slice's status means for its scores (empty for ground truth)."""
    return _NOTES.get(status, "")


@dataclass(frozen=True)
class SliceReview:
    """One slice of a prediction as the page shows it.

    Attributes:
        z: the slice.
        status: its mask's status.
        image, mask: the slice and its current mask (``None`` where it has none).
        truth: what a person drew or imported (``None`` where nothing; pixels accepted from a model
            are not truth).
        pred: (Y, X) predicted labels at the review's threshold.
        uncertainty: (Y, X) normalised entropy in [0, 1], ``None`` where no probabilities were stored.
        scored: the slice counts in the scores (ground truth).
        score: its row of the review's scores (``dice``, ``pixel_error``, ...), ``None`` if not scored.
    """

    z: int
    status: str
    image: np.ndarray
    mask: np.ndarray | None
    truth: np.ndarray | None
    pred: np.ndarray
    uncertainty: np.ndarray | None
    scored: bool
    score: dict[str, Any] | None

    @property
    def note(self) -> str:
        return status_note(self.status)


def slice_review(
    ws: Any,
    dataset: str,
    run_id: str,
    z: int,
    threshold: float | None,
    masks: np.ndarray,
    probs: np.ndarray | None,
    summary: PredictionSummary,
    review: PredictionReview,
) -> SliceReview:
    """Slice ``z`` of a stored prediction (``masks, probs, summary`` of
    :func:`core.predict.stored.load_prediction`) at ``threshold`` (``None``: its own masks), with its
    scores taken from ``review`` (computed at the same threshold), not scored again."""
    status = ws.dataset(dataset).statuses[z]
    truth = ws.read_truth(dataset, z)
    pred = relabel(prob_path(ws, dataset, run_id), threshold, z=z) if threshold is not None else np.asarray(masks[z])
    unc = None
    if probs is not None:
        p = np.asarray(probs[z], np.float32) / float(summary.prob_scale)
        unc = uncertainty_map(p[None] if p.ndim == 2 else p)
    scored = truth is not None and status in GROUND_TRUTH_STATUSES
    return SliceReview(
        z=z,
        status=status,
        image=ws.read_slice(dataset, z),
        mask=ws.read_mask(dataset, z),
        truth=truth,
        pred=pred,
        uncertainty=unc,
        scored=scored,
        score=review.slice_score(z) if scored else None,
    )
