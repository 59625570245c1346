"""What SegDash accepts when it reads images: file suffixes, the memory budget, decompression-bomb
ratios, and the refusals that ask the user to choose (:class:`ChannelChoiceNeeded`,
:class:`StackOrColourNeeded`)."""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import SegDashError

__all__ = [
    "IMAGE_SUFFIXES",
    "memory_budget",
    "ChannelChoiceNeeded",
    "StackOrColourNeeded",
    "SingletonAxisNeeded",
    "SeriesChoiceNeeded",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
_ZIP_MAX_RATIO = 1000  # uncompressed / compressed, per member: beyond it is a bomb, not an image
_BOMB_MIN_BYTES = 64 * 1024**2  # an image decoding to more than this at over _ZIP_MAX_RATIO-fold is a bomb


class ChannelChoiceNeeded(SegDashError):
    """A multi-channel image or hyperstack was read without ``channel=``.

    Attributes:
        n_channels: how many channels the source has.
        source: the file it came from.
    """

    def __init__(self, source: str, n_channels: int):
        self.source, self.n_channels = source, n_channels
        super().__init__(f"{source}: has {n_channels} channels; choose one (channel 0..{n_channels - 1})")


class StackOrColourNeeded(SegDashError):
    """A TIFF of 3 or 4 planes may be that many slices or one colour image; ``as_stack=`` decides.

    Attributes:
        source: the file.
        n_planes: how many planes it holds.
    """

    #: how the two readings are named to the user (``as_stack=True`` and ``as_stack=False``)
    stack_reading, image_reading = "{n} slices of a stack", "one colour image (imported as gray)"

    def __init__(self, source: str, n_planes: int, text: str = ""):
        self.source, self.n_planes = source, n_planes
        self.stack_reading = self.stack_reading.format(n=n_planes)
        super().__init__(
            text
            or f"{source}: its {n_planes} planes can be read as {n_planes} slices of a stack or "
            f"as one colour image; choose which"
        )


class SingletonAxisNeeded(StackOrColourNeeded):
    """A TIFF whose array has an unnamed axis of one after its Y axis, as ``(5, 100, 1)``: ``5``
    slices of ``100 x 1`` (its last two axes as Y and X, ``as_stack=True``) or one ``5 x 100`` image
    (its pages as stored, ``as_stack=False``). Asked only when the file's axes metadata does not say.

    Attributes:
        source: the file.
        shape: the array's shape as its metadata gives it.
        n_planes: how many slices the stack reading makes.
    """

    def __init__(self, source: str, shape: tuple[int, ...], pages: int, page: tuple[int, int]):
        self.shape = tuple(int(n) for n in shape)
        n = int(np.prod(self.shape[:-2], dtype=np.int64))
        self.stack_reading = f"{n} slices of {self.shape[-2]} x {self.shape[-1]}"
        self.image_reading = (
            f"one {page[0]} x {page[1]} image" if pages == 1 else f"{pages} slices of {page[0]} x {page[1]}"
        )
        super().__init__(
            source,
            n,
            f"{source}: its array of shape {self.shape} has an axis of one that its metadata does not name; "
            f"it can be read as {self.stack_reading} or as {self.image_reading}; choose which",
        )


class SeriesChoiceNeeded(SegDashError):
    """A TIFF holds several image series of different shapes (a multi-image OME-TIFF, a thumbnail
    beside the stack, pages written one by one with different shapes); ``series=`` picks one.

    Attributes:
        source: the file.
        series: one description per series (shape, dtype, axes).
    """

    def __init__(self, source: str, series: list[str]):
        self.source, self.series = source, list(series)
        self.n_series = len(self.series)
        listed = "; ".join(f"{i}: {d}" for i, d in enumerate(self.series[:6]))
        more = f"; and {self.n_series - 6} more" if self.n_series > 6 else ""
        super().__init__(
            f"{source}: holds {self.n_series} image series of different shapes ({listed}{more}); "
            f"choose which to import (series 0..{self.n_series - 1})"
        )


def memory_budget() -> int:
    """Bytes one import may hold in memory: ``$SEGDASH_IMPORT_MEMORY``, else half the available memory.

    Images are checked against it from their headers, before any pixel is decoded.
    """
    env = os.environ.get("SEGDASH_IMPORT_MEMORY")
    if env:
        return int(float(env))
    try:
        import psutil

        available = int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - no psutil or no /proc: assume a small machine
        available = 2 * 1024**3
    return max(256 * 1024**2, available // 2)


def _gb(n: float) -> str:
    """``1.5 GB``, ``0.9 MB``, ``12 KB``: a size for a message."""
    if n >= 1e8:
        return f"{n / 1e9:.1f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{max(n, 1) / 1e3:.0f} KB" if n >= 1e3 else f"{int(n)} bytes"


class Budget:
    """Memory an import has claimed so far; refuses a claim beyond :func:`memory_budget`."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def claim(self, name: str, nbytes: int, what: str) -> None:
        if self.used + nbytes > self.limit:
            held = f" (with {_gb(self.used)} of earlier files)" if self.used else ""
            raise SegDashError(
                f"{name}: {what} needs {_gb(nbytes)} of memory to read{held}, more than this "
                f"machine can spare ({_gb(self.limit)}; SEGDASH_IMPORT_MEMORY sets it); "
                "nothing was imported"
            )
        self.used += nbytes


def _check_bomb(name: str, decoded: int, stored: int) -> None:
    """Refuse a file whose pixels expand far beyond its size: almost nothing but one value."""
    if decoded > _BOMB_MIN_BYTES and decoded > _ZIP_MAX_RATIO * max(stored, 1):
        raise SegDashError(
            f"{name}: a file of {_gb(stored)} that decodes to {_gb(decoded)} "
            f"({decoded // max(stored, 1)}-fold) is refused as a decompression bomb"
        )


def _reason(exc: BaseException) -> str:
    """A library's error text without file bytes or object addresses, one line, short."""
    text = " ".join(str(exc).split())
    text = re.sub(r"""b(['"]).*?(?<!\\)\1""", "...", text)
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", text)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return (text[:160] + " ...") if len(text) > 160 else (text or type(exc).__name__)
