"""Probabilities as numpy: labels, uncertainty, and the stored probability TIFFs (no torch).

Probabilities are (K, Y, X) float32 with one channel per class (two for a binary model:
background, foreground). Stored (:func:`~core.predict.stack.predict_stack`): binary models keep one
channel, P(class 1), as (Z, Y, X); K-class models (Z, K, Y, X); uint8 scaled so that 255 is
probability 1 (default), or float16. Masks are computed from the stored (quantised) probabilities,
so :func:`relabel` at the prediction's threshold gives back exactly the masks: a threshold slider
re-labels from the stored map and never re-runs the network.

Uncertainty (:func:`uncertainty_map`) is the entropy of the class probabilities divided by
``log(K)``: 0 where the model is sure, 1 where all classes are equally likely. With TTA it is the
entropy of the flip-averaged probabilities, which also grows where the flips disagree.

Example:
    >>> import numpy as np
    >>> probs = np.array([[[0.9, 0.5]], [[0.1, 0.5]]], dtype=np.float32)  # (K=2, Y=1, X=2)
    >>> labels_from_probs(probs).tolist()
    [[0, 0]]
    >>> [round(float(u), 3) for u in uncertainty_map(probs)[0]]
    [0.469, 1.0]
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile

from ..errors import SegDashError
from ..nn.decision import Decision, cleanup
from .hyperstack import read_info

__all__ = [
    "labels_from_probs",
    "uncertainty_map",
    "slice_uncertainty",
    "quantize",
    "labels_from_stored",
    "read_prediction_tiff",
    "relabel",
    "PROB_DTYPES",
]

PROB_DTYPES = {"uint8": 255.0, "float16": 1.0}  # stored dtype -> value that means probability 1


def labels_from_probs(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """(K, Y, X) probabilities to (Y, X) uint8 class indices.

    Binary (K = 2, or K = 1 holding P(class 1) only): ``P(class 1) > threshold``. More classes:
    arg-max (``threshold`` is ignored).
    """
    probs = np.asarray(probs)
    if probs.ndim != 3:
        raise SegDashError(f"expected (K, Y, X) probabilities, got shape {probs.shape}")
    if probs.shape[0] <= 2:
        return (probs[-1] > threshold).astype(np.uint8)
    return np.argmax(probs, axis=0).astype(np.uint8)


def uncertainty_map(probs: np.ndarray) -> np.ndarray:
    """Per-pixel normalised entropy ``-sum_k p_k log p_k / log K`` of (K, Y, X) probabilities.

    Returns (Y, X) float32 in [0, 1]: 0 where one class has probability 1, 1 where all K classes
    are equally likely. A (1, Y, X) input is read as P(class 1) of a binary model.
    """
    p = np.asarray(probs, dtype=np.float32)
    if p.ndim != 3:
        raise SegDashError(f"expected (K, Y, X) probabilities, got shape {p.shape}")
    if p.shape[0] == 1:
        p = np.concatenate([1.0 - p, p])
    k = p.shape[0]
    q = np.clip(p, 1e-7, 1.0)
    ent = -(p * np.log(q)).sum(axis=0) / math.log(k)
    return np.clip(ent, 0.0, 1.0).astype(np.float32)


def slice_uncertainty(probs: np.ndarray) -> float:
    """One number per slice: the mean of :func:`uncertainty_map` over all its pixels, in [0, 1].

    A mean, not a maximum: boundaries are always somewhat uncertain, so a slice ranks high when
    much of it is uncertain (a region the model has not learned), not because it has many edges.
    """
    return float(uncertainty_map(probs).mean(dtype=np.float64))


def quantize(probs: np.ndarray, prob_dtype: str) -> np.ndarray:
    """(K, Y, X) float probabilities to what is stored: P(class 1) only for K = 2."""
    p = probs[1] if probs.shape[0] == 2 else probs
    if prob_dtype == "uint8":
        return (np.clip(p, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return p.astype(np.float16)


def labels_from_stored(
    stored: np.ndarray, threshold: float, binary: bool, decision: Decision | None = None
) -> np.ndarray:
    """Class indices from stored probabilities ((Y, X) P(class 1) if binary, else (K, Y, X)).

    ``decision`` (:class:`~core.nn.decision.Decision`, its threshold ignored for ``threshold``) adds
    the class weights of a multi-class model and the cleanup of small objects and holes.
    """
    if binary:
        scale = 255.0 if stored.dtype == np.uint8 else 1.0
        labels = (stored.astype(np.float32) > np.float32(threshold * scale)).astype(np.uint8)
    elif decision is not None and decision.class_weights:
        w = np.asarray(decision.class_weights, np.float32)[:, None, None]
        labels = np.argmax(stored.astype(np.float32) * w, axis=0).astype(np.uint8)
    else:
        labels = np.argmax(stored, axis=0).astype(np.uint8)
    if decision is not None and (decision.min_size or decision.hole_size):
        labels = cleanup(labels, decision.min_size, decision.hole_size)
    return labels


def read_prediction_tiff(path: str | Path) -> np.ndarray:
    """A masks or probability TIFF written by :func:`~core.predict.stack.predict_stack`, memory-mapped when possible.

    Returns (Z, Y, X) for masks and binary probabilities, (Z, K, Y, X) for K-class probabilities,
    also when Z = 1 (the TIFF alone would drop that axis).
    """
    path = Path(path)
    if not path.exists():
        raise SegDashError(f"{path}: no such prediction file")
    try:
        with tifffile.TiffFile(path) as tif:
            meta = read_info(tif)
        try:
            arr = tifffile.memmap(path, mode="r")
        except ValueError:  # compressed or not contiguous: read it
            arr = tifffile.imread(path)
    except (OSError, tifffile.TiffFileError) as exc:
        raise SegDashError(f"{path}: cannot read the prediction ({exc})") from None
    k = int(meta.get("classes", 2))
    if meta.get("segdash") == "prob" and k > 2:
        return arr.reshape((-1, k) + arr.shape[-2:])
    return arr.reshape((-1,) + arr.shape[-2:])


def relabel(prob_path: str | Path, threshold: float = 0.5, z: int | None = None) -> np.ndarray:
    """Masks from a stored probability TIFF at a new threshold, without running the network.

    Args:
        prob_path: probability TIFF from :func:`~core.predict.stack.predict_stack` /
            :func:`~core.predict.dataset.predict_dataset`.
        threshold: binary models: foreground where P(class 1) > ``threshold``; ignored (arg-max)
            for more classes.
        z: one slice (returns (Y, X)); ``None``: all (returns (Z, Y, X)), computed slice by slice.

    Returns:
        uint8 class indices. At the threshold of the prediction they equal the stored masks.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise SegDashError(f"threshold must be in [0, 1], got {threshold}")
    prob = read_prediction_tiff(prob_path)
    binary = prob.ndim == 3
    if z is not None:
        if not 0 <= z < prob.shape[0]:
            raise SegDashError(f"slice {z} out of range 0..{prob.shape[0] - 1}")
        return labels_from_stored(np.asarray(prob[z]), threshold, binary)
    out = np.empty((prob.shape[0],) + prob.shape[-2:], np.uint8)
    for i in range(prob.shape[0]):
        out[i] = labels_from_stored(np.asarray(prob[i]), threshold, binary)
    return out
