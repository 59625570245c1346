"""Intensity normalisation: the one documented step between stored data and display or network.

Stored stacks keep their original dtype (uint8, uint16, float32). Everything that needs values in
[0, 1] (the network, the canvas background, overlays) goes through these functions, so training and
inference normalise the same way: a percentile window ``(lo, hi)`` measured once per dataset and
stored in the checkpoint.

Example:
    >>> import numpy as np
    >>> normalize(np.array([0, 50, 100], dtype=np.uint16), (0.0, 100.0))
    array([0. , 0.5, 1. ], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from ..errors import SegDashError

__all__ = ["percentile_range", "normalize", "to_uint8"]

_SAMPLE_PIXELS = 2_000_000


def percentile_range(stack: np.ndarray, lower: float = 1.0, upper: float = 99.0) -> tuple[float, float]:
    """Return the ``(lower, upper)`` percentiles of a (Z, Y, X) or (Y, X) array as floats.

    Large stacks are subsampled on a regular grid of slices and pixels, so a memory-mapped 2 GB
    stack is not read whole; a chunked :class:`~core.data.chunked.Volume` (a Zarr dataset imported
    by reference) is measured on :func:`~core.data.chunked.sample_slices` (8 slices, each read alone).
    A constant image returns ``(v, v + 1)`` so that dividing is safe.

    Args:
        stack: image or stack, any real dtype; axis order (Z, Y, X) or (Y, X).
        lower: lower percentile in [0, 100].
        upper: upper percentile in [0, 100], greater than ``lower``.
    """
    if not 0.0 <= lower < upper <= 100.0:
        raise SegDashError(f"percentiles must satisfy 0 <= lower < upper <= 100, got {lower}, {upper}")
    from .chunked import Volume, sample_slices

    if isinstance(stack, Volume):
        stack = sample_slices(stack, 8)
    arr = np.asarray(stack) if not isinstance(stack, np.memmap) else stack
    if arr.ndim == 2:
        arr = arr[None]
    z = arr.shape[0]
    z_step = max(1, z // 16)
    per_slice = max(1, _SAMPLE_PIXELS // max(1, min(z, 16)))
    yx = arr.shape[1] * arr.shape[2]
    px_step = max(1, int(np.sqrt(yx / per_slice)))
    sample = np.asarray(arr[::z_step, ::px_step, ::px_step], dtype=np.float64)
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [lower, upper])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def normalize(image: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map ``image`` linearly so that ``window`` becomes [0, 1], clip, and return float32.

    Args:
        image: any shape, any real dtype.
        window: ``(lo, hi)`` from :func:`percentile_range`.
    """
    lo, hi = float(window[0]), float(window[1])
    out = (np.asarray(image, dtype=np.float32) - lo) / max(hi - lo, 1e-12)
    np.clip(out, 0.0, 1.0, out=out)
    return np.nan_to_num(out, copy=False)


def to_uint8(image: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """Return ``image`` as uint8 for display; uint8 input with no window is returned unchanged.

    Args:
        image: (Y, X) or (Z, Y, X) array.
        window: intensity window; default the image's own 1-99 percentile window.
    """
    if window is None:
        if image.dtype == np.uint8:
            return np.asarray(image)
        window = percentile_range(image)
    return (normalize(image, window) * 255.0 + 0.5).astype(np.uint8)
