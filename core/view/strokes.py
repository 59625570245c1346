"""Paint layers (unsaved strokes at full image resolution) and the Label page's view arithmetic.

A paint layer is a (Y, X) int16 array: the class painted at each pixel, ``-1`` where nothing was
drawn (:func:`core.view.canvas.paint_layer` makes one from a canvas drawing). Painting
:data:`~core.data.masks.UNLABELED` (the scribble-mode eraser) returns pixels to "not labeled".

Example:
    >>> import numpy as np
    >>> paint = np.array([[-1, 1], [255, -1]], np.int16)
    >>> apply_paint(None, paint, fill=255).tolist()
    [[255, 1], [255, 255]]
    >>> next_brush(8, bigger=True), next_zoom(2, (1, 2, 4, 8), +1)
    (10, 4)
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SegDashError

__all__ = ["merge_paint", "apply_paint", "next_brush", "next_zoom", "pan_center"]


def merge_paint(under: np.ndarray | None, over: np.ndarray) -> np.ndarray:
    """Paint layer ``over`` on top of ``under`` (later strokes win where both painted)."""
    if under is None:
        return over.copy()
    out = under.copy()
    hit = over >= 0
    out[hit] = over[hit]
    return out


def apply_paint(
    mask: np.ndarray | None, paint: np.ndarray | None, shape: Sequence[int] | None = None, fill: int = 0
) -> np.ndarray:
    """A new uint8 mask: ``mask`` (or, for a slice without one, ``fill`` everywhere: 0 = background,
    :data:`~core.data.masks.UNLABELED` in scribble mode) with the painted pixels set."""
    if mask is None:
        base_shape = paint.shape if paint is not None else shape
        if base_shape is None:
            raise SegDashError("give the image shape for a slice without a mask")
        mask = np.full(tuple(int(v) for v in base_shape[-2:]), fill, np.uint8)
    out = np.array(mask, dtype=np.uint8, copy=True)
    if paint is not None:
        if paint.shape != out.shape:
            raise SegDashError(f"unsaved strokes are {paint.shape}, the mask is {out.shape}")
        hit = paint >= 0
        out[hit] = paint[hit]
    return out


def next_brush(size: int, bigger: bool, lo: int = 1, hi: int = 64) -> int:
    """The brush size one step (a quarter, at least 1 px) bigger or smaller, within ``lo .. hi``."""
    step = max(1, round(size * 0.25))
    return int(min(hi, size + step) if bigger else max(lo, size - step))


def next_zoom(zoom: float, zooms: Sequence[float], step: int) -> float:
    """The zoom ``step`` places along ``zooms`` (kept at its ends); an unknown zoom counts as the first."""
    i = (list(zooms).index(zoom) if zoom in zooms else 0) + step
    return zooms[min(max(i, 0), len(zooms) - 1)]


def pan_center(
    center: Sequence[int], dy: float, dx: float, window_hw: Sequence[int], shape: Sequence[int]
) -> tuple[int, int]:
    """The (row, col) centre moved by ``dy``, ``dx`` window heights/widths, kept inside ``shape`` (Y, X)."""
    cy = int(min(max(center[0] + dy * window_hw[0], 0), shape[0] - 1))
    cx = int(min(max(center[1] + dx * window_hw[1], 0), shape[1] - 1))
    return cy, cx
