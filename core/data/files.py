"""Single files, written atomically: :func:`atomic_write` (temporary file, fsync, rename), PNG and
TIFF writers on top of it, and :func:`is_disk_full` to tell a full disk from other errors."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable

import numpy as np
import tifffile
from PIL import Image

from ..errors import SegDashError

__all__ = ["AtomicFile", "atomic_write", "is_disk_full", "write_png", "read_png", "write_tiff"]


class AtomicFile:
    """A temporary file beside ``path`` that :meth:`commit` fsyncs and moves onto ``path`` with
    ``os.replace``, or :meth:`discard` removes: the one way SegDash replaces a file
    (:func:`atomic_write` is it for a single ``write(fileobj)`` call).

    The file gets the permissions of any new file (``0o666`` less the umask), not ``mkstemp``'s
    private ``0o600``. Its name, ``.<name>.<host>-<pid>.<random>.tmp`` (:attr:`tmp`), says which
    process owns it, so the next workspace open removes it if that process died mid-write.
    """

    def __init__(self, path: str | Path):
        from .owner import Owner

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.{Owner.current().token()}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        except OSError:
            pass
        os.close(fd)  # reopened by name: some writers (tifffile) want a file object with a path name
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        """fsync the temporary file and move it onto ``path``."""
        with open(self.tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(self.tmp, self.path)
        return self.path

    def discard(self) -> None:
        """Remove the temporary file; ``path`` is untouched."""
        self.tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write: Any) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path`` (an :class:`AtomicFile`), fsync,
    then ``os.replace``.

    A crash or error leaves the old file untouched and no partial file behind.
    """
    path = Path(path)
    tmp = AtomicFile(path).tmp
    try:
        with open(tmp, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc):  # a message for the user (a ValueError), the old file untouched
            free = shutil.disk_usage(path.parent).free / 2**20
            raise SegDashError(
                f"not enough space in {path.parent}: {free:.1f} MB free; {path.name} was not "
                "written (the previous version, if any, is kept)"
            ) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def is_disk_full(exc: BaseException) -> bool:
    """``exc`` says the disk (or the quota) is full: ENOSPC / EDQUOT, or numpy's short write
    (``262144 requested and 134912 written``, no errno), which on a regular file means the same."""
    if not isinstance(exc, OSError):
        return False
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return True
    return exc.errno is None and re.search(r"\d+ requested and \d+ written", str(exc)) is not None


def _umask() -> int:
    """The process umask, read from /proc where possible (setting it to read it races other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    value = os.umask(0o022)
    os.umask(value)
    return value


def write_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a (Y, X) uint8 or uint16 image as PNG, atomically."""
    arr = np.ascontiguousarray(image)
    if arr.dtype not in (np.uint8, np.uint16):
        raise SegDashError(f"PNG holds uint8 or uint16, not {arr.dtype}")
    return atomic_write(path, lambda fh: Image.fromarray(arr).save(fh, format="PNG", compress_level=1))


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG (or other single image) as a 2-D array, as stored."""
    with Image.open(path) as im:
        return np.array(im)


def write_tiff(
    path: str | Path | BinaryIO,
    stack: np.ndarray | Iterable[np.ndarray],
    *,
    shape: tuple[int, ...] | None = None,
    dtype: Any = None,
    metadata: dict | None = None,
    compression: str | None = None,
) -> None:
    """Write a (Z, Y, X) stack as a multipage TIFF; atomically when ``path`` is a path.

    ``stack`` may be an iterator of (Y, X) slices (then give ``shape`` and ``dtype``) so a large
    volume is written without holding it in memory.
    """

    def _write(fh: BinaryIO) -> None:
        kwargs: dict[str, Any] = {"photometric": "minisblack", "metadata": metadata or {}}
        if compression:
            kwargs["compression"] = compression
        if isinstance(stack, np.ndarray):
            tifffile.imwrite(fh, stack, **kwargs)
        else:
            tifffile.imwrite(fh, stack, shape=shape, dtype=dtype, **kwargs)

    if isinstance(path, (str, Path)):
        atomic_write(path, _write)
    else:
        _write(path)
