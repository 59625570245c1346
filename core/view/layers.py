"""The saved mask as a layer of its own for the label canvas: the browser keeps the slice's picture and
lays this small RGBA layer over it, so a save sends only the layer (a mostly transparent PNG).

Example:
    >>> import numpy as np
    >>> from core.view.canvas import ZoomWindow
    >>> tint_layer(np.array([[0, 1]], np.uint8), ZoomWindow(0, 0, 1, 2), 0.5)[..., 3].tolist()
    [[0, 128]]
"""

from __future__ import annotations

import numpy as np

from ..data.masks import MAX_CLASSES, UNLABELED
from .canvas import ZoomWindow, canvas_color
from .render import class_color

__all__ = ["tint_layer", "tint_indexed"]


def tint_indexed(mask: np.ndarray | None, window: ZoomWindow, alpha: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    """The saved mask's tint over the shown region as palette indices and their colours: a (h, w)
    uint8 index array (0: transparent) and a (n, 4) uint8 RGBA palette. The page sends this as an
    indexed PNG, a quarter of the RGBA layer's bytes to compress and decode.

    Example:
        >>> idx, pal = tint_indexed(np.array([[0, 1]], np.uint8), ZoomWindow(0, 0, 1, 2), 0.5)
        >>> idx.tolist(), pal[idx][..., 3].tolist()
        ([[0, 1]], [[0, 128]])
    """
    idx = np.zeros((window.height, window.width), np.uint8)
    palette = [(0, 0, 0, 0)]
    if mask is None or alpha <= 0:
        return idx, np.array(palette, np.uint8)
    mask = np.asarray(mask)
    crop = mask[window.slices]
    partial = bool((mask == UNLABELED).any())
    color = canvas_color if partial else class_color
    a = int(round(255 * min(alpha, 1.0)))
    lut = np.zeros(256, np.uint8)
    top = int(crop.max()) if crop.size else 0
    for k in range(0 if partial else 1, MAX_CLASSES if top == UNLABELED else top + 1):  # up to the highest: no sort
        lut[k] = len(palette)
        palette.append((*color(int(k)), a))
    return np.take(lut, crop), np.array(palette, np.uint8)


def tint_layer(mask: np.ndarray | None, window: ZoomWindow, alpha: float = 0.4) -> np.ndarray:
    """The saved mask's tint over the shown region as a (h, w, 4) uint8 RGBA layer, the colours and
    opacity :func:`background` blends in (so the page can send the picture once a slice and only this
    small layer after a save). Transparent where nothing is tinted.
    """
    idx, palette = tint_indexed(mask, window, alpha)
    return palette[idx]
