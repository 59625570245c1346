"""Disk space: checking before a write, one message for a full disk (``not enough space in ...``), and
the image stack written with its space reserved first (:func:`write_stack`)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile

from ..data.files import is_disk_full
from .catalog import WorkspaceError

__all__ = ["human_bytes", "disk_full_error", "reserve", "space_for", "write_stack"]

_SPACE_MARGIN = 64 << 10  # bytes kept free beyond what a write needs (catalog rows, the WAL)


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def disk_full_error(folder: str | Path, needed: int | None = None) -> WorkspaceError:
    """The message for a full disk: ``not enough space in FOLDER: needs X, Y free``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    needs = f"needs {human_bytes(needed)}, " if needed else ""
    return WorkspaceError(
        f"not enough space in {folder}: {needs}{human_bytes(free)} free; free some space "
        "(or choose another workspace) and try again"
    )


def reserve(fh, nbytes: int) -> None:
    """Allocate ``nbytes`` for the open file ``fh`` now, so a full disk fails here with ENOSPC
    (where the file system can allocate ahead; elsewhere the writes themselves will say it)."""
    if nbytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fh.fileno(), 0, nbytes)
    except OSError as exc:
        if is_disk_full(exc):
            raise
    fh.seek(0)


@contextmanager
def space_for(root: Path, needed: int = 0) -> Iterator[None]:
    """Check that ``needed`` bytes are free in ``root`` first, and turn a full disk met while writing
    into :class:`~core.store.catalog.WorkspaceError` (``not enough space in ...``)."""
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = None
    if needed and free is not None and free < needed + _SPACE_MARGIN:
        raise disk_full_error(root, needed + _SPACE_MARGIN)
    try:
        yield
    except (OSError, ValueError) as exc:  # ValueError: core.data.files.atomic_write's own message
        if is_disk_full(exc) or str(exc).startswith("not enough space"):
            raise disk_full_error(root, needed or None) from None
        raise


def write_stack(path: Path, images: np.ndarray, nbytes: int) -> None:
    """``images`` (Z, Y, X) as an uncompressed TIFF at ``path``, a slice at a time, with plain file writes,
    not a memory map: a full disk then raises ENOSPC instead of killing the process with SIGBUS."""
    with open(path, "wb") as fh:
        reserve(fh, nbytes)
        tifffile.imwrite(
            fh,
            (np.asarray(images[i]) for i in range(images.shape[0])),
            shape=tuple(images.shape),
            dtype=images.dtype,
            photometric="minisblack",
        )
        fh.truncate(fh.tell())
        fh.flush()
        os.fsync(fh.fileno())
