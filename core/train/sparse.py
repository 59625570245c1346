"""Training on sparse labels: patches placed where pixels are labeled.

Masks are (Y, X) class indices with :data:`~core.data.masks.UNLABELED` (255) where nobody labeled
(strokes instead of a complete mask). The loss ignores those pixels (:class:`core.nn.losses.Loss`,
through the smp losses' ``ignore_index``) and validation scores count labeled pixels only
(:func:`core.nn.metrics.confusion_matrix`); here patches of partial slices are placed so that each
holds labeled pixels, since a random patch of a slice with a few strokes is mostly not labeled.

Example:
    >>> import numpy as np
    >>> m = np.full((64, 64), 255, np.uint8); m[40, 50] = 1
    >>> rows = labeled_patch_coords([m], 16, 5, np.random.default_rng(0), skip_empty=False)
    >>> bool(all(y <= 40 < y + 16 and x <= 50 < x + 16 for _, y, x in rows))
    True
"""

from __future__ import annotations

import numpy as np

from ..data.masks import UNLABELED
from .data import patch_coords

__all__ = ["labeled_patch_coords", "is_partial", "simulate_strokes"]


def is_partial(mask: np.ndarray) -> bool:
    """``mask`` leaves some pixels not labeled."""
    return bool((np.asarray(mask) == UNLABELED).any())


def labeled_patch_coords(
    masks: list[np.ndarray], patch: int, n: int, rng: np.random.Generator, skip_empty: bool
) -> np.ndarray:
    """(n, 3) rows of (slice, y, x) like :func:`~core.train.data.patch_coords`; a patch drawn on a
    partial slice is moved to hold a labeled pixel chosen at random (at a random place in the patch).

    Slices with no labeled pixel are never drawn.
    """
    keep = [i for i, m in enumerate(masks) if (np.asarray(m) != UNLABELED).any()]
    if not keep:
        return patch_coords(masks, patch, n, rng, skip_empty)
    sub = [masks[i] for i in keep]
    # skip_empty on partial masks would count 255 as foreground: it applies to complete slices only
    out = patch_coords(sub, patch, n, rng, skip_empty and not any(is_partial(m) for m in sub))
    labeled: dict[int, np.ndarray] = {}
    for row in out:
        s = int(row[0])
        m = sub[s]
        if s not in labeled:
            labeled[s] = np.flatnonzero(m != UNLABELED) if is_partial(m) else np.empty(0, np.int64)
        if not labeled[s].size:
            continue
        h, w = m.shape
        py, px = divmod(int(labeled[s][rng.integers(labeled[s].size)]), w)
        row[1] = int(np.clip(py - rng.integers(0, patch), 0, h - patch))
        row[2] = int(np.clip(px - rng.integers(0, patch), 0, w - patch))
    out[:, 0] = np.asarray(keep)[out[:, 0]]
    return out


def _erode(a: np.ndarray, r: int) -> np.ndarray:
    out = a.copy()
    for _ in range(r):
        inner = out.copy()
        inner[1:] &= out[:-1]
        inner[:-1] &= out[1:]
        inner[:, 1:] &= out[:, :-1]
        inner[:, :-1] &= out[:, 1:]
        out = inner
    return out


def simulate_strokes(
    truth: np.ndarray,
    fraction: float,
    rng: np.random.Generator,
    width: int = 3,
    length: int = 40,
    margin: int = 2,
) -> np.ndarray:
    """What a user might draw on a slice whose complete mask is ``truth``: straight strokes per class.

    Each class gets an equal share of ``fraction`` of the pixels, as strokes ``width`` px wide and at
    most ``length`` px long that start inside the class at least ``margin`` px from its border and
    end where they would leave it (as a user keeps a stroke inside what it labels).

    Args:
        truth: (Y, X) class indices (complete).
        fraction: share of pixels to label, in (0, 1]; 1 gives ``truth`` itself.

    Returns:
        (Y, X) uint8: classes on the strokes, :data:`~core.data.masks.UNLABELED` elsewhere.

    Example:
        >>> t = np.zeros((64, 64), np.uint8); t[:, 32:] = 1
        >>> s = simulate_strokes(t, 0.05, np.random.default_rng(0))
        >>> bool(((s == t) | (s == 255)).all()), bool(0.02 < (s != 255).mean() <= 0.06)
        (True, True)
    """
    truth = np.asarray(truth)
    if fraction >= 1:
        return truth.astype(np.uint8)
    out = np.full(truth.shape, UNLABELED, np.uint8)
    h, w = truth.shape
    classes = np.unique(truth)
    budget = fraction * truth.size / max(len(classes), 1)
    r = width // 2
    for k in classes:
        region = truth == k
        inner = _erode(region, margin + r)
        starts = np.flatnonzero(inner if inner.any() else region)
        drawn = 0
        for _ in range(10_000):
            if drawn >= budget:
                break
            y0, x0 = divmod(int(starts[rng.integers(starts.size)]), w)
            angle = rng.uniform(0, 2 * np.pi)
            for t in range(int(rng.integers(length // 2, length + 1))):
                y, x = int(round(y0 + t * np.sin(angle))), int(round(x0 + t * np.cos(angle)))
                if not (0 <= y < h and 0 <= x < w) or not region[y, x] or drawn >= budget:
                    break
                ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
                new = region[ys, xs] & (out[ys, xs] == UNLABELED)
                out[ys, xs][new] = k
                drawn += int(new.sum())
    return out
