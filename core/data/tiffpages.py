"""Which pages of a TIFF make the image, decided from tifffile's metadata before any pixel is read.

- A file of one series is that series.
- Pages written one at a time (``tifffile.TiffWriter.write`` per page, ``contiguous=False``) are one
  series each: when every series is one page of the same shape and dtype, they are the slices of one
  stack, memory-mapped together when they are uncompressed and evenly spaced in the file.
- Several series of different shapes (a multi-image OME-TIFF, a thumbnail beside the stack) are a
  question: ``series=`` picks one, else :class:`~core.data.limits.SeriesChoiceNeeded` lists them.
- An unnamed axis of one after the Y axis (an array of shape ``(5, 100, 1)``, which tifffile stores
  as one 5 x 100 page) is a question too (:class:`~core.data.limits.SingletonAxisNeeded`): the last
  two axes as Y and X make 5 slices of 100 x 1. Axes the file names (``ZYX``) are read as named.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegDashError
from .limits import Budget, SeriesChoiceNeeded, SingletonAxisNeeded, _check_bomb

__all__ = ["pick_series", "page_by_page", "singleton_reading", "stack_series"]


def _describe(series: Any) -> str:
    dims = " x ".join(str(n) for n in series.shape)
    return f"{dims} {np.dtype(series.dtype)} ({series.axes})"


def page_by_page(found: list[Any]) -> bool:
    """Every series is one page of the same shape, dtype and axes: a stack written a page at a time."""
    first = found[0]
    return all(
        len(s.pages) == 1 and s.shape == first.shape and s.dtype == first.dtype and s.axes == first.axes for s in found
    )


def pick_series(name: str, tif: Any, series: int | None) -> list[Any]:
    """The series that make the image: the chosen one, the only one, or all of a page-by-page stack.

    Raises:
        SeriesChoiceNeeded: several series of different shapes and no ``series``.
        ValueError: no image data, or ``series`` out of range.
    """
    found = list(tif.series)
    if not found:
        raise SegDashError(f"{name}: TIFF holds no image data")
    if series is not None:
        if not 0 <= series < len(found):
            raise SegDashError(f"{name}: series {series} out of range 0..{len(found) - 1}")
        return [found[series]]
    if len(found) == 1 or page_by_page(found):
        return found
    raise SeriesChoiceNeeded(name, [_describe(s) for s in found])


def singleton_reading(name: str, axes: str, shape: tuple[int, ...], as_stack: bool | None) -> str:
    """The axes to read an array by: ``axes`` as tifffile names them, or, for an unnamed axis of one
    after Y (``YXQ``), the last two axes as Y and X when ``as_stack`` (else as stored).

    Raises:
        SingletonAxisNeeded: such an axis and ``as_stack`` is ``None``.
    """
    if "Y" not in axes or len(axes) != len(shape) or len(shape) < 3:
        return axes
    y = axes.index("Y")
    if not any(a == "Q" and n == 1 for a, n in zip(axes[y + 1 :], shape[y + 1 :])):
        return axes
    if as_stack is None:
        pages = int(np.prod([n for a, n in zip(axes, shape) if a not in "YX"], dtype=np.int64))
        raise SingletonAxisNeeded(name, shape, pages, (shape[y], shape[axes.index("X")]))
    return "Q" * (len(shape) - 2) + "YX" if as_stack else axes


def stack_series(name: str, opener: Any, tif: Any, found: list[Any], *, mmap: bool, stored: int, budget: Budget):
    """The one-page series of a page-by-page stack as one (N, ...) array: memory-mapped when they are
    uncompressed and evenly spaced in the file (no pixel read), else read page by page within ``budget``."""
    first = found[0]
    shape = tuple(int(n) for n in first.shape)
    dtype = np.dtype(first.dtype).newbyteorder(tif.byteorder)
    page_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    offsets = [s.dataoffset for s in found]
    if mmap and isinstance(opener, Path) and None not in offsets:
        steps = {b - a for a, b in zip(offsets, offsets[1:])}
        step = steps.pop() if len(steps) == 1 else 0
        end = offsets[-1] + page_bytes
        if step >= page_bytes and end <= stored:
            base = np.memmap(opener, dtype=np.uint8, mode="r", offset=offsets[0], shape=(end - offsets[0],))
            inner = tuple(int(s) for s in np.empty(shape, dtype).strides)
            return np.ndarray((len(found), *shape), dtype=dtype, buffer=base, strides=(step, *inner))
    total = page_bytes * len(found)
    _check_bomb(name, total, stored)
    dims = " x ".join(str(n) for n in (len(found), *shape))
    budget.claim(name, total * 2, f"a {dims} {np.dtype(first.dtype)} TIFF")
    out = np.empty((len(found), *shape), dtype=np.dtype(first.dtype))
    for i, s in enumerate(found):
        out[i] = s.asarray()
    return out
