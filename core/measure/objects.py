"""Objects of a segmentation: connected components of each foreground class.

Two modes:

- ``"2d"``: each slice on its own (objects never continue to the next slice); 8-connectivity in
  the plane by default (``connectivity=2``; ``1`` for 4-connectivity).
- ``"3d"``: through the stack, for consecutive sections; 26-connectivity by default
  (``connectivity=3``; ``1`` for 6, ``2`` for 18).

Labeling is ``scipy.ndimage.label`` with the structure ``scipy.ndimage.generate_binary_structure``
gives; in 2D mode a whole stack is labeled in one call with a structure that has no neighbours in z.
Touching objects are split, on request, by ``skimage.segmentation.watershed`` on the distance
transform (or on the model's foreground probability), seeded at its maxima at least
``min_distance`` pixels apart.

Example:
    >>> import numpy as np
    >>> m = np.zeros((2, 5, 5), np.uint8); m[0, 1:3, 1:3] = 1; m[1, 1:3, 1:3] = 1
    >>> int(label_class(m == 1, "2d").max()), int(label_class(m == 1, "3d").max())
    (2, 1)
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from ..errors import SegDashError

__all__ = ["MODES", "label_class", "split_touching", "structure"]

MODES = ("2d", "3d")
Mode = Literal["2d", "3d"]


def structure(mode: str, connectivity: int | None = None) -> np.ndarray:
    """The (3, 3, 3) neighbourhood of ``mode``: in 2D only the middle plane (nothing across slices).

    ``connectivity``: 1 (faces) .. 2 (2D, default) or 3 (3D, default), as
    ``scipy.ndimage.generate_binary_structure`` counts it.
    """
    if mode not in MODES:
        raise SegDashError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    top = 2 if mode == "2d" else 3
    c = top if connectivity is None else int(connectivity)
    if not 1 <= c <= top:
        raise SegDashError(f"connectivity in {mode} is 1..{top}, not {connectivity}")
    if mode == "3d":
        return ndi.generate_binary_structure(3, c)
    s = np.zeros((3, 3, 3), bool)
    s[1] = ndi.generate_binary_structure(2, c)
    return s


def label_class(
    binary: np.ndarray, mode: str = "2d", connectivity: int | None = None, out_dtype: type = np.int32
) -> np.ndarray:
    """Connected components of a (Z, Y, X) (or (Y, X)) boolean array: ``(Z, Y, X)`` labels 1..N, 0 background.

    In 2D mode the labels are numbered slice by slice (all of slice 0's objects first).
    """
    b = np.asarray(binary, bool)
    if b.ndim == 2:
        b = b[None]
    if b.ndim != 3:
        raise SegDashError(f"masks must be (Z, Y, X) or (Y, X), got shape {b.shape}")
    out = np.zeros(b.shape, out_dtype)
    ndi.label(b, structure=structure(mode, connectivity), output=out)
    return out


def split_touching(
    labels: np.ndarray,
    mode: str = "2d",
    min_distance: int = 5,
    probability: np.ndarray | None = None,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    connectivity: int | None = None,
) -> np.ndarray:
    """Split touching objects of a (Z, Y, X) label image (of one class) by a watershed.

    Args:
        labels: objects as :func:`label_class` numbers them (their union is the mask).
        mode: ``"2d"`` splits each slice on its own, ``"3d"`` the volume.
        min_distance: seeds (maxima of the distance transform, or of the probability) at least this
            many pixels apart; the one setting: about the radius of the smallest object to keep whole.
        probability: the model's foreground probability (same shape, any scale): flooded instead of
            the distance transform, when given.
        spacing: voxel size (z, y, x) for the 3D distance transform (anisotropic sections).

    Returns:
        a new label image, objects numbered 1..N; each old object that held one seed keeps its pixels.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, np.int32)
    mask = labels > 0
    if not mask.any():
        return out
    if mode == "2d":
        next_id = 0
        for z in range(labels.shape[0]):
            if not mask[z].any():
                continue
            prob = None if probability is None else probability[z]
            part = _split(labels[z], mask[z], min_distance, prob, spacing[1:], connectivity or 2)
            part[part > 0] += next_id
            out[z] = part
            next_id = int(out[z].max()) if part.any() else next_id
        return out
    return _split(labels, mask, min_distance, probability, spacing, connectivity or 3)


def _split(labels, mask, min_distance, probability, spacing, connectivity) -> np.ndarray:
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    height = (
        ndi.distance_transform_edt(mask, sampling=spacing)
        if probability is None
        else np.asarray(probability, np.float32)
    )
    peaks = peak_local_max(height, min_distance=max(1, int(min_distance)), labels=labels, exclude_border=False)
    markers = np.zeros(labels.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # an object without a seed (flat, or smaller than min_distance) keeps one: its own label
    seeded = np.unique(labels[markers > 0])
    unseeded = np.setdiff1d(np.unique(labels[mask]), seeded)
    if len(unseeded):
        centres = ndi.maximum_position(height, labels, unseeded)
        for i, c in enumerate(centres):
            markers[tuple(int(v) for v in c)] = len(peaks) + 1 + i
    conn = ndi.generate_binary_structure(labels.ndim, min(connectivity, labels.ndim))
    return watershed(-height, markers, mask=mask, connectivity=conn).astype(np.int32)
