"""Pictures for people: mask overlays, per-pixel error maps and uncertainty heat maps, as RGB uint8.

Numpy in, numpy out: (Y, X) inputs, (Y, X, 3) uint8 outputs. Colours are fixed and named so the
legend on the page and the picture agree (:data:`ERROR_COLORS`).

Example:
    >>> import numpy as np
    >>> img = np.zeros((2, 2), np.uint8)
    >>> # pixel (1, 0): predicted 1, truth 0, a false positive
    >>> error_map(img, np.array([[1, 0], [1, 1]]), np.array([[1, 1], [0, 1]]), alpha=1.0)[1, 0].tolist()
    [255, 0, 255]
"""

from __future__ import annotations

import numpy as np

from ..data.intensity import to_uint8
from ..data.masks import UNLABELED
from ..errors import SegDashError

__all__ = ["CLASS_COLORS", "ERROR_COLORS", "class_color", "overlay", "tint", "error_map", "heatmap", "gray_rgb"]

# class 0 is usually background: it gets no tint in overlays unless asked for
CLASS_COLORS = (
    (0, 0, 0),
    (255, 200, 0),
    (0, 170, 255),
    (255, 60, 60),
    (60, 220, 90),
    (190, 90, 255),
    (255, 130, 200),
    (0, 200, 190),
    (160, 120, 60),
    (120, 120, 255),
)
ERROR_COLORS = {"false positive": (255, 0, 255), "false negative": (0, 255, 255), "wrong class": (255, 140, 0)}


def class_color(k: int) -> tuple[int, int, int]:
    """RGB colour of class ``k`` (cycles after ten classes)."""
    return CLASS_COLORS[k % len(CLASS_COLORS)] if k < len(CLASS_COLORS) else CLASS_COLORS[1 + k % 9]


def gray_rgb(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """A (Y, X) image of any dtype as (Y, X, 3) uint8 gray, percentile-windowed."""
    g = to_uint8(np.asarray(image), window)
    return np.repeat(g[..., None], 3, axis=2)


def overlay(
    image: np.ndarray,
    labels: np.ndarray | None,
    alpha: float = 0.4,
    window: tuple[float, float] | None = None,
    skip_background: bool = True,
) -> np.ndarray:
    """Tint ``image`` with the class colours of ``labels``.

    Args:
        image: (Y, X) any dtype.
        labels: (Y, X) class indices, or ``None`` for the plain image.
        alpha: opacity of the tint in [0, 1].
        skip_background: leave class 0 untinted.
    """
    rgb = gray_rgb(image, window)
    return rgb if labels is None else tint(rgb, labels, alpha, skip_background)


def tint(
    rgb: np.ndarray, labels: np.ndarray, alpha: float, skip_background: bool = True, color=class_color
) -> np.ndarray:
    """A copy of (Y, X, 3) uint8 ``rgb`` tinted with ``color(k)`` where ``labels`` is ``k``; pixels not
    labeled (:data:`~core.data.masks.UNLABELED`) and, with ``skip_background``, class 0 keep their colour."""
    out = np.asarray(rgb, np.float32).copy()
    labels = np.asarray(labels)
    for k in np.unique(labels):
        if (skip_background and k == 0) or k == UNLABELED:
            continue
        sel = labels == k
        out[sel] = (1 - alpha) * out[sel] + alpha * np.array(color(int(k)), np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def error_map(
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray,
    alpha: float = 0.7,
    window: tuple[float, float] | None = None,
) -> np.ndarray:
    """Per-pixel errors over the image: false positives magenta, false negatives cyan.

    For binary masks (classes 0/1) a false positive is predicted 1 where the truth is 0, a false
    negative the reverse; pixels the truth leaves not labeled (:data:`~core.data.masks.UNLABELED`) are
    no error. For multi-class masks, pixels of the wrong non-background class are
    orange; predicted background on a true class is a false negative, and the reverse a false
    positive. Correct pixels show the plain image.
    """
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise SegDashError(f"prediction {pred.shape} and ground truth {truth.shape} differ in shape")
    rgb = gray_rgb(image, window).astype(np.float32)
    wrong = (pred != truth) & (truth != UNLABELED)  # pixels nobody labeled are no error
    fp = wrong & (truth == 0)
    fn = wrong & (pred == 0)
    wrong = wrong & ~fp & ~fn
    for sel, name in ((fp, "false positive"), (fn, "false negative"), (wrong, "wrong class")):
        rgb[sel] = (1 - alpha) * rgb[sel] + alpha * np.array(ERROR_COLORS[name], np.float32)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def heatmap(values: np.ndarray, image: np.ndarray | None = None, alpha: float = 0.6) -> np.ndarray:
    """A [0, 1] map (e.g. uncertainty) as a black-red-yellow-white heat map, over ``image`` if given."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float32)), 0.0, 1.0)
    heat = np.stack([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=-1) * 255
    if image is None:
        return (heat + 0.5).astype(np.uint8)
    base = gray_rgb(image).astype(np.float32)
    a = alpha * v[..., None]
    return np.clip((1 - a) * base + a * heat + 0.5, 0, 255).astype(np.uint8)
