"""Decoding one image file (TIFF through tifffile, PNG/JPEG/BMP through Pillow) into (Z, Y, X) planes,
each image's size checked from its header against :func:`memory_budget` and its file size before any
pixel is decoded (a file that decodes to over 1000 times its size is a decompression bomb)."""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from ..errors import SegDashError
from .limits import (
    Budget,
    ChannelChoiceNeeded,
    SeriesChoiceNeeded,
    StackOrColourNeeded,
    _check_bomb,
    _reason,
    memory_budget,
)
from .tiffpages import pick_series, singleton_reading, stack_series
from .zips import _Member

__all__ = ["memory_budget"]


_KIND = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def read_one(
    name: str,
    opener: Any,
    *,
    channel: int | None,
    mmap: bool,
    as_stack: bool | None = None,
    budget: Budget | None = None,
    series: int | None = None,
) -> tuple[np.ndarray, bool, list[str]]:
    """Read one file as (Z, Y, X); return the array, whether it had several slices, and notices."""
    suffix = Path(member_part(name)).suffix.lower()
    kind = _KIND.get(suffix, suffix.lstrip(".").upper())
    budget = budget or Budget(memory_budget())
    try:
        if isinstance(opener, _Member):
            opener = opener.read()
        if suffix in (".tif", ".tiff"):
            return _read_tiff(name, opener, channel=channel, mmap=mmap, as_stack=as_stack, series=series, budget=budget)
        return _read_pil(name, opener, channel=channel, budget=budget)
    except (ChannelChoiceNeeded, StackOrColourNeeded, SeriesChoiceNeeded):
        raise
    except tifffile.TiffFileError as exc:  # a ValueError subclass that does not name the file
        raise SegDashError(f"{name}: not a valid TIFF image, or a corrupt or truncated one ({_reason(exc)})") from None
    except UnidentifiedImageError:
        raise SegDashError(f"{name}: not a valid {kind} image (its content is not a {kind} file)") from None
    except MemoryError:
        raise SegDashError(f"{name}: too large to read into this machine's memory") from None
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        raise SegDashError(
            f"{name}: cannot read this {kind} image; it may be corrupt or truncated ({_reason(exc)})"
        ) from None
    except (
        OSError,
        EOFError,
        KeyError,
        IndexError,
        SyntaxError,
        RuntimeError,
        TypeError,
        struct.error,
        zlib.error,
        zipfile.BadZipFile,
    ) as exc:
        raise SegDashError(
            f"{name}: cannot read this {kind} image; it may be corrupt or truncated ({_reason(exc)})"
        ) from None


def member_part(name: str) -> str:
    """The member name of ``archive.zip:dir/member.png`` (or ``name`` itself)."""
    low = name.lower()
    cut = low.rfind(".zip:")
    return name[cut + 5 :] if cut >= 0 else name


_BYTES_PER_SAMPLE = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def _read_pil(
    name: str, opener: Any, *, channel: int | None, budget: Budget | None = None
) -> tuple[np.ndarray, bool, list[str]]:
    stored = len(opener) if isinstance(opener, (bytes, bytearray)) else Path(opener).stat().st_size
    src = io.BytesIO(opener) if isinstance(opener, (bytes, bytearray)) else opener
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(src)
        except Image.DecompressionBombError as exc:
            counts = [int(n) for n in re.findall(r"\d+", str(exc))]
            claim = f"{counts[0] / 1e6:,.0f} megapixels" if counts else "more pixels than SegDash reads"
            raise SegDashError(
                f"{name}: its header claims {claim}, beyond any microscopy slice; refused as a decompression bomb"
            ) from None
    with im:
        w, h = im.size
        pixels = int(w) * int(h)
        bands = len(im.getbands())
        decoded = pixels * bands * _BYTES_PER_SAMPLE.get(im.mode, 1)
        _check_bomb(name, decoded, stored)
        # decoded image + its array + a float32 gray copy of colour images
        (budget or Budget(memory_budget())).claim(
            name, decoded * 2 + (pixels * 4 if bands > 1 else 0), f"a {w} x {h} image"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im.load()
        notes: list[str] = []
        if im.mode in ("1", "L", "I;16", "I;16B", "I;16L", "I", "F", "P"):
            arr = np.array(im)
        else:
            arr = np.array(im.convert("RGBA" if "A" in im.mode else "RGB"))
    if im.mode == "I":
        arr = arr.astype(np.float32) if arr.max(initial=0) > 65535 or arr.min(initial=0) < 0 else arr.astype(np.uint16)
    if arr.ndim == 3:
        arr, note = _to_gray(name, arr, channel)
        if note:
            notes.append(note)
    arr, note = _settle_dtype(name, arr)
    if note:
        notes.append(note)
    return arr[None], False, notes


class _TiffErrors(logging.Handler):
    """Collects the errors tifffile logs while it carries on with a partial read."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _read_tiff(
    name: str, opener: Any, *, budget: Budget | None = None, **options: Any
) -> tuple[np.ndarray, bool, list[str]]:
    """:func:`_read_tiff_series` (``channel``, ``mmap``, ``as_stack`` as in :func:`read_one`), with
    what tifffile logs about a damaged file turned into a refusal."""
    errors = _TiffErrors()
    logger = logging.getLogger("tifffile")
    logger.addHandler(errors)
    try:
        result = _read_tiff_series(name, opener, budget=budget or Budget(memory_budget()), **options)
    finally:
        logger.removeHandler(errors)
    if errors.messages:  # e.g. a truncated file: tifffile returns the pages it could read, and logs
        raise SegDashError(
            f"{name}: damaged TIFF, it may be truncated ({_reason(Exception(errors.messages[0]))}); "
            "nothing was imported"
        )
    return result


def _read_tiff_series(
    name: str,
    opener: Any,
    *,
    channel: int | None,
    mmap: bool,
    as_stack: bool | None = None,
    series: int | None = None,
    budget: Budget,
) -> tuple[np.ndarray, bool, list[str]]:
    src = io.BytesIO(opener) if isinstance(opener, (bytes, bytearray)) else opener
    stored = len(opener) if isinstance(opener, (bytes, bytearray)) else Path(opener).stat().st_size
    notes: list[str] = []
    with tifffile.TiffFile(src) as tif:
        found = pick_series(name, tif, series)  # every series counted from the pages' headers, none decoded
        if len(found) > 1:  # a stack written a page at a time: one series per page
            arr = stack_series(name, opener, tif, found, mmap=mmap, stored=stored, budget=budget)
            notes.append(
                f"{name}: its {len(found)} pages, each a series of its own (written one by one), read as slices"
            )
            zyx, multi, more = _to_zyx(name, arr, "Z" + found[0].axes.upper(), channel)
            return zyx, multi, notes + more
        chosen = found[0]
        if series is not None and len(tif.series) > 1:
            notes.append(f"{name}: kept series {series} of {len(tif.series)}")
        axes = chosen.axes.upper()
        shape = chosen.shape
        dtype = np.dtype(chosen.dtype)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize  # from the header: nothing read yet
        planar = axes.startswith("S") and len(shape) == 3 and shape[0] in (3, 4)
        if planar and as_stack is None and channel is None:
            raise StackOrColourNeeded(name, int(shape[0]))
        axes = singleton_reading(name, axes, tuple(shape), as_stack)
        arr = None
        if mmap and isinstance(opener, Path) and chosen.dataoffset is not None:
            # contiguous, uncompressed pixel data: map it instead of reading it
            dtype = dtype.newbyteorder(tif.byteorder)
            needed = chosen.dataoffset + nbytes
            if needed > stored:
                raise SegDashError(
                    f"{name}: file is truncated ({stored} bytes, the header describes {needed}); copy it again"
                )
            arr = np.memmap(opener, dtype=dtype, mode="r", offset=chosen.dataoffset, shape=shape, order="C")
        if arr is None:
            _check_bomb(name, nbytes, stored)
            dims = " x ".join(str(d) for d in shape)
            budget.claim(name, nbytes * 2, f"a {dims} {dtype} TIFF")
            arr = chosen.asarray()
    if planar and as_stack:
        axes = "Z" + axes[1:]
    zyx, multi, more = _to_zyx(name, arr, axes, channel)
    return zyx, multi, notes + more


def _to_zyx(name: str, arr: np.ndarray, axes: str, channel: int | None) -> tuple[np.ndarray, bool, list[str]]:
    """Bring an array with tifffile ``axes`` to (Z, Y, X); returns (array, multi-slice, notices)."""
    notes: list[str] = []
    if len(axes) != arr.ndim:
        axes = "Q" * (arr.ndim - 2) + "YX"
    # samples (RGB) and channels
    for ax in ("S", "C"):
        if ax in axes:
            i = axes.index(ax)
            n = arr.shape[i]
            if n == 1:
                arr = np.take(arr, 0, axis=i)
            elif ax == "S" and n in (3, 4) and channel is None:
                arr = np.moveaxis(arr, i, -1)
                arr, note = _to_gray(name, np.asarray(arr), None)
                notes.append(note or "")
            else:
                if channel is None:
                    raise ChannelChoiceNeeded(name, n)
                if not 0 <= channel < n:
                    raise SegDashError(f"{name}: channel {channel} out of range 0..{n - 1}")
                arr = np.take(arr, channel, axis=i)
                notes.append(f"{name}: kept channel {channel} of {n}")
            axes = axes.replace(ax, "")
    if "Y" not in axes or "X" not in axes:
        raise SegDashError(f"{name}: TIFF axes {axes!r} have no Y and X")
    others = [i for i, a in enumerate(axes) if a not in "YX"]
    order = others + [axes.index("Y"), axes.index("X")]
    if order != list(range(arr.ndim)):
        arr = np.transpose(arr, order)
    big = [axes[i] for i in others if arr.shape[others.index(i)] > 1]
    if len(big) > 1:
        notes.append(f"{name}: axes {''.join(big)} flattened into one slice axis")
    arr = arr.reshape((-1,) + arr.shape[-2:])
    arr, note = _settle_dtype(name, arr)
    if note:
        notes.append(note)
    return arr, arr.shape[0] > 1 or bool(others), [n for n in notes if n]


def _to_gray(name: str, arr: np.ndarray, channel: int | None) -> tuple[np.ndarray, str | None]:
    """(Y, X, C) to (Y, X): the chosen channel, or luminance of RGB(A) with a notice."""
    c = arr.shape[-1]
    if channel is not None:
        if not 0 <= channel < c:
            raise SegDashError(f"{name}: channel {channel} out of range 0..{c - 1}")
        return np.ascontiguousarray(arr[..., channel]), f"{name}: kept channel {channel} of {c}"
    if c == 2:  # gray + alpha
        return np.ascontiguousarray(arr[..., 0]), f"{name}: alpha channel dropped"
    if c not in (3, 4):
        raise ChannelChoiceNeeded(name, c)
    rgb = arr[..., :3]
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0]), None
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    if np.issubdtype(arr.dtype, np.integer):
        gray = np.clip(np.rint(gray), 0, np.iinfo(arr.dtype).max).astype(arr.dtype)
    return gray, f"{name}: colour image converted to grayscale (luminance)"


def _settle_dtype(name: str, arr: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Keep uint8/uint16/int8/int16/float32; map others to the nearest kept type, with a notice."""
    dt = arr.dtype
    if not dt.isnative:
        dt = dt.newbyteorder("=")
        arr = arr.astype(dt)
    if dt in (np.uint8, np.uint16, np.int8, np.int16, np.float32):
        return arr, None
    if dt == np.bool_:
        return arr.astype(np.uint8), None
    if np.issubdtype(dt, np.floating) or np.issubdtype(dt, np.integer):
        return arr.astype(np.float32), f"{name}: {dt} data stored as float32"
    raise SegDashError(f"{name}: unsupported pixel type {dt}")
