"""Masks: turning what users bring ({0,1}, {0,255}, bool, label images) into class labels 0..K-1.

A stored mask is a (Y, X) or (Z, Y, X) uint8 array of class indices, where :data:`UNLABELED` (255)
marks pixels nobody labeled (sparse labels: strokes, not a complete mask). Masks whose values are not a
clean label set (anti-aliased PNG edges, JPEG noise) are never silently rounded: :func:`to_labels`
raises :class:`StrayMaskValues` with a suggested threshold, and the caller asks the user.

Example:
    >>> import numpy as np
    >>> to_labels(np.array([[0, 255], [255, 0]], dtype=np.uint8)).labels.tolist()
    [[0, 1], [1, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SegDashError

__all__ = [
    "StrayMaskValues",
    "GappedMaskValues",
    "ThresholdMergesClasses",
    "MaskLabels",
    "to_labels",
    "default_class_names",
    "to_export_values",
    "UNLABELED",
    "labeled_fraction",
    "coverage",
    "COVERAGES",
]

#: The value of "not labeled" pixels in stored masks and in exports of partial masks (never a class:
#: at most :data:`MAX_CLASSES` classes).
UNLABELED = 255
#: What a slice's mask covers: every pixel, some (strokes), or none.
COVERAGES = ("complete", "partial", "unlabeled")

MAX_CLASSES = 32
_MIN_CLASS_FRACTION = 0.0005  # a value on fewer pixels than this is noise, not a class


class StrayMaskValues(SegDashError):
    """A mask has values that are not a clean class set.

    Attributes:
        values: the distinct values seen (at most 20 shown in the message).
        suggested_threshold: a threshold that splits the values into background/foreground.
    """

    def __init__(self, source: str, values: np.ndarray, suggested_threshold: float):
        self.values, self.suggested_threshold = values, suggested_threshold
        shown = ", ".join(f"{v:g}" for v in values[:20]) + (" ..." if len(values) > 20 else "")
        super().__init__(
            f"{source}: mask has {len(values)} distinct values ({shown}), not a clean set of classes "
            f"(anti-aliased or JPEG-compressed?). Threshold it (e.g. at {suggested_threshold:g}: "
            "values above become class 1) or fix the mask file."
        )


class GappedMaskValues(SegDashError):
    """Integer mask values with gaps ({0, 1, 2, 7}): classes 3..6 would be empty.

    Attributes:
        values: the distinct values found, sorted.
    """

    def __init__(self, source: str, values: list[int]):
        self.values = values
        shown = ", ".join(str(v) for v in values)
        missing = sorted(set(range(max(values) + 1)) - set(values))
        gaps = ", ".join(str(v) for v in missing[:10]) + (" ..." if len(missing) > 10 else "")
        super().__init__(
            f"{source}: mask values {{{shown}}} leave gaps ({gaps} never occur), which would be "
            f"{len(missing)} empty classes; remap the {len(values)} values to classes 0..{len(values) - 1} "
            "in sorted order, or fix the masks"
        )


class ThresholdMergesClasses(SegDashError):
    """A threshold was asked for masks that hold several clean classes: it would merge them.

    Attributes:
        values: the class values found.
    """

    def __init__(self, source: str, values: list[float], threshold: float):
        self.values = values
        shown = ", ".join(f"{v:g}" for v in values)
        super().__init__(
            f"{source}: the masks hold {len(values)} classes (values {shown}); a threshold at {threshold:g} "
            "merges every class above it into one foreground class. Confirm the merge, or import without "
            "a threshold to keep the classes"
        )


@dataclass
class MaskLabels:
    """Labels from :func:`to_labels`.

    Attributes:
        labels: uint8 class indices, same shape as the input.
        n_classes: number of classes (at least 2).
        value_of_class: the original value of each class index (for export back to the same values).
        notice: what was done, for the user, or ``""``.
    """

    labels: np.ndarray
    n_classes: int
    value_of_class: tuple[float, ...]
    notice: str = ""


def to_labels(
    mask: np.ndarray,
    *,
    threshold: float | None = None,
    source: str = "mask",
    remap: bool = False,
    merge: bool = False,
    n_classes: int | None = None,
    unlabeled_value: float | None = None,
) -> MaskLabels:
    """Convert a mask (any shape, any dtype) to class indices.

    Accepted without question: bool, {0, 1}, {0, 255}, and integer label images 0..K-1 (K <= 32).
    A small set of other distinct values each covering a real share of pixels (e.g. {0, 85, 170,
    255}) is mapped in sorted order to 0..K-1 with a notice. Integer labels with gaps ({0, 1, 2, 7})
    raise :class:`GappedMaskValues` unless ``remap`` (or ``n_classes`` covers them). Anything else
    raises :class:`StrayMaskValues` unless ``threshold`` is given (then ``mask > threshold`` is
    class 1); a threshold over masks that hold three or more clean classes raises
    :class:`ThresholdMergesClasses` unless ``merge``.

    Args:
        mask: (Y, X) or (Z, Y, X) array.
        threshold: binarise at this value instead of interpreting values as classes.
        source: file name used in messages.
        remap: map gapped integer labels in sorted order to 0..K-1.
        merge: allow a threshold to merge several classes into one.
        n_classes: the number of classes the masks are known to have (a SegDash export): integer
            values below it are class indices as they are, gaps allowed.
        unlabeled_value: pixels of this value are "not labeled" (sparse labels made elsewhere): they
            become :data:`UNLABELED` and take no part in reading the classes.

    Example:
        >>> to_labels(np.array([[0, 7], [1, 7]]), unlabeled_value=7).labels.tolist()
        [[0, 255], [1, 255]]
    """
    arr = np.asarray(mask)
    if unlabeled_value is not None:
        hole = arr == unlabeled_value
        if hole.any():
            return _with_holes(arr, hole, unlabeled_value, source, n_classes, **_options(threshold, remap, merge))
    if arr.dtype == np.bool_:
        return MaskLabels(arr.astype(np.uint8), 2, (0, 1))
    if threshold is not None:
        if not merge:
            try:
                clean = to_labels(arr, source=source, remap=True)
            except ValueError:
                clean = None
            if clean is not None and clean.n_classes > 2:
                raise ThresholdMergesClasses(source, list(clean.value_of_class), threshold)
        return MaskLabels((arr > threshold).astype(np.uint8), 2, (0, 255), f"{source}: thresholded at {threshold:g}")
    values, counts = _unique_counts(arr)
    if np.any(~np.isfinite(values)):
        raise SegDashError(f"{source}: mask contains NaN or infinite values")
    if set(values.tolist()) <= {0, 1}:
        return MaskLabels(arr.astype(np.uint8), 2, (0, 1))
    if set(values.tolist()) <= {0, 255}:
        return MaskLabels((arr == 255).astype(np.uint8), 2, (0, 255))
    is_int = np.all(values == np.round(values))
    if is_int and values.min() >= 0 and values.max() < MAX_CLASSES:
        k = int(values.max()) + 1
        if n_classes is not None and k <= n_classes:
            return MaskLabels(arr.astype(np.uint8), max(n_classes, 2), tuple(range(max(n_classes, 2))))
        if len(values) == k:
            return MaskLabels(arr.astype(np.uint8), max(k, 2), tuple(range(max(k, 2))))
        found = [int(v) for v in values]
        if not remap:
            raise GappedMaskValues(source, found)
        lut = np.zeros(k, np.uint8)
        lut[found] = np.arange(len(found), dtype=np.uint8)
        return MaskLabels(
            lut[arr.astype(np.intp)],
            max(len(found), 2),
            tuple(found),
            f"{source}: mask values {', '.join(map(str, found))} remapped to classes 0..{len(found) - 1}",
        )
    frac = counts / counts.sum()
    if (
        len(values) <= MAX_CLASSES
        and frac.min() >= _MIN_CLASS_FRACTION
        and _spread(values)
        and _are_regions(arr, values)
    ):
        lut = {v: i for i, v in enumerate(values.tolist())}
        out = np.zeros(arr.shape, np.uint8)
        for v, i in lut.items():
            out[arr == v] = i
        return MaskLabels(
            out,
            len(values),
            tuple(values.tolist()),
            f"{source}: mask values {', '.join(f'{v:g}' for v in values)} read as classes 0..{len(values) - 1}",
        )
    lo, hi = float(values.min()), float(values.max())
    raise StrayMaskValues(source, values, float(np.floor((lo + hi) / 2)))


def _options(threshold: float | None, remap: bool, merge: bool) -> dict:
    return {"threshold": threshold, "remap": remap, "merge": merge}


def _with_holes(
    arr: np.ndarray, hole: np.ndarray, value: float, source: str, n_classes: int | None, **opts
) -> MaskLabels:
    """:func:`to_labels` of the labeled pixels of ``arr``; the pixels of ``hole`` become :data:`UNLABELED`."""
    rest = arr[~hole]
    if rest.size:
        filled = np.where(hole, rest.flat[0], arr)  # a value the labeled pixels hold: reads no new class
        out = to_labels(filled, source=source, n_classes=n_classes, **opts)
    else:
        k = max(n_classes or 2, 2)
        out = MaskLabels(np.zeros(arr.shape, np.uint8), k, tuple(range(k)))
    labels = out.labels.copy()
    labels[hole] = UNLABELED
    note = f"{source}: {int(hole.sum())} pixels of value {value:g} read as not labeled"
    return MaskLabels(labels, out.n_classes, out.value_of_class, "; ".join(filter(None, (out.notice, note))))


def labeled_fraction(mask: np.ndarray | None) -> float:
    """The share of pixels of ``mask`` that hold a class (not :data:`UNLABELED`); 0 for ``None``."""
    if mask is None or np.size(mask) == 0:
        return 0.0
    return float(np.count_nonzero(np.asarray(mask) != UNLABELED)) / np.size(mask)


def coverage(fraction: float | None) -> str:
    """``complete``, ``partial`` or ``unlabeled`` for a labeled fraction (``None``: a mask saved before
    sparse labels, complete).

    Example:
        >>> coverage(None), coverage(0.02), coverage(0.0)
        ('complete', 'partial', 'unlabeled')
    """
    if fraction is None or fraction >= 1.0:
        return "complete"
    return "partial" if fraction > 0 else "unlabeled"


def _unique_counts(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if arr.dtype == np.uint8:
        counts = np.bincount(arr.ravel(), minlength=256)
        values = np.nonzero(counts)[0]
        return values.astype(np.float64), counts[values]
    values, counts = np.unique(arr, return_counts=True)
    return values.astype(np.float64), counts


def _spread(values: np.ndarray) -> bool:
    """Class values are far apart; anti-aliasing leaves runs of neighbouring values."""
    gaps = np.diff(values)
    return bool(len(gaps) == 0 or gaps.min() > 1)


def _are_regions(arr: np.ndarray, values: np.ndarray, min_interior: float = 0.25) -> bool:
    """Every value forms regions, not one-pixel lines: anti-aliasing leaves values only on edges.

    A pixel is interior when its four neighbours (in Y and X) have its value; a class value with
    fewer than ``min_interior`` of its pixels interior is an edge artefact.
    """
    a = arr if arr.ndim == 3 else arr[None]
    interior = np.ones(a.shape, bool)
    interior[:, 1:, :] &= a[:, 1:, :] == a[:, :-1, :]
    interior[:, :-1, :] &= a[:, :-1, :] == a[:, 1:, :]
    interior[:, :, 1:] &= a[:, :, 1:] == a[:, :, :-1]
    interior[:, :, :-1] &= a[:, :, :-1] == a[:, :, 1:]
    for v in values:
        sel = a == v
        if interior[sel].mean() < min_interior:
            return False
    return True


def default_class_names(n_classes: int) -> list[str]:
    """``['background', 'foreground']`` for two classes, else ``['background', 'class 1', ...]``."""
    if n_classes == 2:
        return ["background", "foreground"]
    return ["background"] + [f"class {i}" for i in range(1, n_classes)]


def to_export_values(labels: np.ndarray, n_classes: int, sparse: bool = False) -> np.ndarray:
    """Class indices as written to PNG/TIFF files: binary masks as 0/255, multi-class as 0..K-1.

    ``sparse`` (a dataset with partial masks): every mask as class indices 0..K-1 and not-labeled
    pixels as :data:`UNLABELED`, binary ones too (0/255 would mix foreground with not labeled).
    """
    if sparse:
        return labels.astype(np.uint8)
    if n_classes == 2:
        return ((labels > 0) & (labels != UNLABELED)).astype(np.uint8) * 255
    return labels.astype(np.uint8)
