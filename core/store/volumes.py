"""Datasets imported by reference: their images stay in a Zarr / OME-Zarr volume outside the
workspace, which the catalog records as its path and channel (no ``images.tif``, nothing copied).

Opening one checks that the volume is still there and still the one imported (its (Z, Y, X) shape
and dtype), with a message that says what to do when it moved. Masks live in the workspace as for
any dataset: a missing volume stops what needs the images, never touches the masks. No link
inside the volume is followed at any read (:mod:`core.data.nolinks`): a chunk replaced after the
import by a link to another file is refused, not shown as pixels, and so is a volume folder (or a
folder above it) that has become a link since the import (the catalog holds the resolved path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.chunked import Volume, is_chunked, open_volume
from ..errors import SegDashError

__all__ = ["open_referenced"]


def open_referenced(
    dataset: str, path: str, channel: int | None, shape: tuple[int, int, int], dtype: str | np.dtype
) -> Volume:
    """The volume of ``dataset`` (imported by reference from ``path``) as a read-only (Z, Y, X)
    :class:`~core.data.chunked.Volume`, read on demand.

    Raises:
        ValueError: the volume is missing, moved, unreadable, or not of the imported shape and dtype.
    """
    keep = f"its masks are kept in the workspace; put the volume back at {path} (or import it again, as another name)"
    if not is_chunked(Path(path)):
        raise SegDashError(f"dataset {dataset!r} reads its images from {path}, which is missing or moved: {keep}")
    try:
        linked = Path(path).resolve() != Path(path)  # recorded resolved at import: now reached through a link
    except (OSError, RuntimeError):
        linked = True
    if linked:
        raise SegDashError(
            f"dataset {dataset!r} reads its images from {path}, which is now a link (or inside one) to another "
            f"folder; a volume read by reference is not followed through links: {keep}"
        )
    try:
        volume = open_volume(path, channel=channel)
    except SegDashError as exc:
        raise SegDashError(f"dataset {dataset!r} cannot read its images ({str(exc).rstrip('.')}): {keep}") from None
    if tuple(volume.shape) != tuple(shape) or volume.dtype != np.dtype(dtype):
        raise SegDashError(
            f"dataset {dataset!r} was imported from {path} as {tuple(shape)} {np.dtype(dtype)}, which now holds "
            f"{volume.shape} {volume.dtype}: was it replaced? {keep[0].upper()}{keep[1:]}"
        )
    return volume
