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

from ..data.masks import UNLABELED
from .canvas import ZoomWindow, canvas_color
from .render import class_color

__all__ = ["tint_layer"]


def tint_layer(mask: np.ndarray | None, window: ZoomWindow, alpha: float = 0.4) -> np.ndarray:
    """The saved mask's tint over the shown region as a (h, w, 4) uint8 RGBA layer, the colours and
    opacity :func:`background` blends in (so the page can send the picture once a slice and only this
    small layer after a save). Transparent where nothing is tinted.
    """
    out = np.zeros((window.height, window.width, 4), np.uint8)
    if mask is None or alpha <= 0:
        return out
    mask = np.asarray(mask)
    crop = mask[window.slices]
    partial = bool((mask == UNLABELED).any())
    color = canvas_color if partial else class_color
    a = int(round(255 * min(alpha, 1.0)))
    for k in np.unique(crop):
        if k == UNLABELED or (k == 0 and not partial):
            continue
        out[crop == k] = (*color(int(k)), a)
    return out
