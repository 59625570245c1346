"""Reading and writing image stacks: multipage TIFF, PNG/JPEG/TIFF/BMP files, ZIPs of them, folders.

Two verbs in the spirit of tifffile: :func:`read_stack` turns any accepted source into a
:class:`Stack` of shape (Z, Y, X), and :func:`write_tiff` / :func:`write_png` write arrays atomically.

Rules:
- Files are ordered naturally (``slice2`` before ``slice10``).
- Stored values keep their dtype (uint8, uint16, int16, float32); float64 and wide integers become
  float32, RGB/RGBA become grayscale, each with a notice. Normalisation is a separate step
  (:mod:`core.data.intensity`).
- An uncompressed, contiguous TIFF is memory-mapped, not read: a 2 GB stack opens in little RAM.
- Hyperstacks with a channel axis need ``channel=``; without it :class:`ChannelChoiceNeeded` says
  how many channels there are.
- ZIP members with absolute paths or ``..`` are refused; member count and total uncompressed size are
  capped (:data:`ZIP_MAX_MEMBERS`, :data:`ZIP_MAX_BYTES`, overridable by the environment variables
  ``SEGDASH_ZIP_MAX_MEMBERS`` and ``SEGDASH_ZIP_MAX_BYTES``), and members or whole ZIPs that expand
  like a bomb are refused, all from the central directory before anything is decompressed; members
  are then decompressed one at a time, when their turn comes.
- Every image's size comes from its header (TIFF: tifffile's series metadata) and is checked before
  any pixel is decoded: against :func:`memory_budget`, and against its file size (a file that
  decodes to over 1000 times its size is a decompression bomb).
- A TIFF of 3 or 4 planes stored as planar RGB is ambiguous: ``as_stack=`` chooses between slices
  and one colour image, else :class:`StackOrColourNeeded` asks.
- Every refusal is a :class:`ValueError` whose message names the file (``archive.zip:member`` for
  a ZIP member) and never quotes its bytes.
- :func:`check_import_path` limits paths to configured folders (the web page's server import).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import re
import shutil
import struct
import tempfile
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

__all__ = [
    "Stack", "ChannelChoiceNeeded", "StackOrColourNeeded", "ZipFolder", "read_stack", "memory_budget",
    "check_import_path", "natural_key", "write_tiff", "write_png",
    "read_png", "atomic_write", "IMAGE_SUFFIXES", "ZIP_MAX_BYTES", "ZIP_MAX_MEMBERS",
]

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
ZIP_MAX_BYTES = int(os.environ.get("SEGDASH_ZIP_MAX_BYTES", 8 * 1024**3))
ZIP_MAX_MEMBERS = int(os.environ.get("SEGDASH_ZIP_MAX_MEMBERS", 20_000))
_ZIP_MAX_RATIO = 1000  # uncompressed / compressed, per member: beyond it is a bomb, not an image
_ZIP_TOTAL_RATIO = 500  # the same for a whole ZIP above _ZIP_BOMB_TOTAL bytes uncompressed
_ZIP_BOMB_TOTAL = 512 * 1024**2
_BOMB_MIN_BYTES = 64 * 1024**2  # an image decoding to more than this at over _ZIP_MAX_RATIO-fold is a bomb

Image.MAX_IMAGE_PIXELS = 1_000_000_000  # EM slices are big; PIL's default bomb limit is 89 Mpx


class ChannelChoiceNeeded(ValueError):
    """A multi-channel image or hyperstack was read without ``channel=``.

    Attributes:
        n_channels: how many channels the source has.
        source: the file it came from.
    """

    def __init__(self, source: str, n_channels: int):
        self.source, self.n_channels = source, n_channels
        super().__init__(f"{source}: has {n_channels} channels; choose one (channel 0..{n_channels - 1})")


@dataclass
class Stack:
    """An image stack read from a source.

    Attributes:
        data: (Z, Y, X) array in the stored dtype; a read-only ``np.memmap`` for large TIFFs.
        names: one name per slice: the file stem for single-image files, ``None`` for a slice of a
            multi-slice file (the importer names those ``<dataset>_<zzzz>``).
        sources: the file each slice came from.
        notices: what was converted on the way (RGB to gray, dtype changes), for the user.
    """

    data: np.ndarray
    names: list[str | None]
    sources: list[str]
    notices: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def from_single_stack(self) -> bool:
        """True when every slice comes from one multi-slice file (pairing is then by index)."""
        return all(n is None for n in self.names)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders digits by value: ``slice2`` before ``slice10``.

    >>> sorted(["s10.png", "s2.png", "s1.png"], key=natural_key)
    ['s1.png', 's2.png', 's10.png']
    """
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


# -- reading -----------------------------------------------------------------------------------

def read_stack(source: Any, *, channel: int | None = None, mmap: bool = True, as_stack: bool | None = None,
               roots: Sequence[str | Path] | None = None,
               progress: Callable[[int, int], None] | None = None) -> Stack:
    """Read images from ``source`` as one (Z, Y, X) stack.

    Args:
        source: a path (TIFF stack, image file, ZIP, folder, OME-Zarr folder); a file-like object with ``.name``
            (such as a Streamlit upload); a ``(name, bytes)`` pair; a :class:`ZipFolder`; or a list
            of any of these.
        channel: channel to keep for multi-channel images (RGB is turned to gray unless given).
        mmap: memory-map uncompressed TIFF files instead of reading them.
        as_stack: how to read a TIFF of 3 or 4 planes stored as planar RGB(A) (as tifffile writes a
            (3, Y, X) array without ``photometric``): ``True`` as that many slices, ``False`` as one
            colour image (turned to gray); ``None`` raises :class:`StackOrColourNeeded`.
        roots: when given, every file read (after resolving links) must lie inside one of these
            folders (see :func:`check_import_path`).
        progress: called as ``progress(done, total)`` after each file read.

    Returns:
        Stack with slices in natural order of their file names (pages of a file keep their order).

    Raises:
        ValueError: unreadable or corrupt files, unsafe ZIPs, images too large for the memory
            budget (:func:`memory_budget`), slices of different shapes; :class:`ChannelChoiceNeeded`
            for hyperstacks without ``channel``; :class:`StackOrColourNeeded` (see ``as_stack``).
    """
    if isinstance(source, (str, Path)):  # an OME-Zarr folder is one image
        from .omezarr import is_omezarr, read_omezarr_stack

        path = check_import_path(source, roots) if roots is not None else Path(source)
        if is_omezarr(path):
            return read_omezarr_stack(path, channel=channel, roots=roots)
    items = list(_expand(source, roots))
    if not items:
        raise ValueError(f"{_describe(source)}: no images found (accepted: {', '.join(IMAGE_SUFFIXES)}, .zip)")
    items.sort(key=lambda it: natural_key(it[0]))
    budget = _Budget(memory_budget())
    parts: list[tuple[str, np.ndarray, bool, list[str]]] = []
    for k, (name, opener) in enumerate(items):
        arr, multi, notes = _read_one(name, opener, channel=channel, mmap=mmap and len(items) == 1,
                                      as_stack=as_stack, budget=budget)
        parts.append((name, arr, multi, notes))
        if progress is not None:
            progress(k + 1, len(items))
    return _assemble(parts)


class StackOrColourNeeded(ValueError):
    """A TIFF of 3 or 4 planes may be that many slices or one colour image; ``as_stack=`` decides.

    Attributes:
        source: the file.
        n_planes: how many planes it holds.
    """

    def __init__(self, source: str, n_planes: int):
        self.source, self.n_planes = source, n_planes
        super().__init__(f"{source}: its {n_planes} planes can be read as {n_planes} slices of a stack or "
                         f"as one colour image; choose which")


@dataclass(frozen=True)
class ZipFolder:
    """The members under ``folder/`` of a ZIP given as a path or a ``(name, bytes)`` pair.

    :func:`read_stack` reads them one at a time, with the whole ZIP's safety checks.
    """

    zip: Any
    folder: str


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


class _Budget:
    """Memory an import has claimed so far; refuses a claim beyond :func:`memory_budget`."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0

    def claim(self, name: str, nbytes: int, what: str) -> None:
        if self.used + nbytes > self.limit:
            held = f" (with {_gb(self.used)} of earlier files)" if self.used else ""
            raise ValueError(f"{name}: {what} needs {_gb(nbytes)} of memory to read{held}, more than this "
                             f"machine can spare ({_gb(self.limit)}; SEGDASH_IMPORT_MEMORY sets it); "
                             "nothing was imported")
        self.used += nbytes


def _check_bomb(name: str, decoded: int, stored: int) -> None:
    """Refuse a file whose pixels expand far beyond its size: almost nothing but one value."""
    if decoded > _BOMB_MIN_BYTES and decoded > _ZIP_MAX_RATIO * max(stored, 1):
        raise ValueError(f"{name}: a file of {_gb(stored)} that decodes to {_gb(decoded)} "
                         f"({decoded // max(stored, 1)}-fold) is refused as a decompression bomb")


def _reason(exc: BaseException) -> str:
    """A library's error text without file bytes or object addresses, one line, short."""
    text = " ".join(str(exc).split())
    text = re.sub(r"""b(['"]).*?(?<!\\)\1""", "...", text)
    text = re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", "the data", text)
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return (text[:160] + " ...") if len(text) > 160 else (text or type(exc).__name__)


def check_import_path(path: str | Path, roots: Sequence[str | Path]) -> Path:
    """``path`` resolved (links and ``..`` followed) if it lies inside one of ``roots``.

    Raises:
        ValueError: with one message that tells nothing about the file (whether it exists or not).
    """
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError):
        resolved = None
    for root in roots:
        try:
            r = Path(root).expanduser().resolve()
        except (OSError, RuntimeError):
            continue
        if resolved is not None and (resolved == r or resolved.is_relative_to(r)):
            return resolved
    shown = ", ".join(str(r) for r in roots)
    raise ValueError(f"that path is outside the folders this server imports from ({shown}); copy the data "
                     "into one of them, or set SEGDASH_IMPORT_ROOTS when starting the server")


def _describe(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, ZipFolder):
        return f"{_describe(source.zip)}:{source.folder}/"
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], (bytes, bytearray)):
        return str(source[0])
    if isinstance(source, (list, tuple)):
        if len(source) == 1:
            return _describe(source[0])
        return f"{len(source)} files"
    return str(getattr(source, "name", "input"))


def _expand(source: Any, roots: Sequence[str | Path] | None = None) -> Iterable[tuple[str, Any]]:
    """Yield ``(display name, opener)`` for each image in ``source``; ZIPs and folders unpacked.

    An opener is a :class:`~pathlib.Path`, the file's bytes, or a :class:`_Member` of a ZIP that is
    read only when its turn comes.
    """
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], (bytes, bytearray)):
        yield from _expand_named_bytes(source[0], bytes(source[1]))
    elif isinstance(source, ZipFolder):
        zsrc = source.zip
        if isinstance(zsrc, (str, Path)):
            if roots is not None:
                check_import_path(zsrc, roots)
            yield from _expand_zip(Path(zsrc).name, Path(zsrc), folder=source.folder)
        else:
            yield from _expand_zip(str(zsrc[0]), bytes(zsrc[1]), folder=source.folder)
    elif isinstance(source, (list, tuple)):
        for s in source:
            yield from _expand(s, roots)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if roots is not None:
            path = check_import_path(path, roots)
        if not path.exists():
            raise ValueError(f"{source}: no such file or folder")
        if path.is_dir():
            files = [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                     and not p.name.startswith(".")]
            for p in files:
                if roots is not None:
                    check_import_path(p, roots)  # a link inside the folder may point anywhere
                yield str(p.relative_to(path)), p
        elif path.suffix.lower() == ".zip":
            yield from _expand_zip(path.name, path)
        else:
            _check_suffix(path.name)
            yield path.name, path
    elif hasattr(source, "read") and hasattr(source, "name"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        yield from _expand_named_bytes(Path(source.name).name, data)
    else:
        raise ValueError(f"cannot read images from {type(source).__name__}")


def _check_suffix(name: str) -> None:
    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{name}: not an accepted image type (accepted: {', '.join(IMAGE_SUFFIXES)}, .zip)")


def _expand_named_bytes(name: str, data: bytes) -> Iterable[tuple[str, Any]]:
    if name.lower().endswith(".zip"):
        yield from _expand_zip(name, data)
    else:
        _check_suffix(name)
        yield name, data


class _ZipSource:
    """A ZIP (path or bytes) opened once, on the first member read, and shared by its members."""

    def __init__(self, zip_name: str, src: Path | bytes):
        self.zip_name, self.src = zip_name, src
        self._zf: zipfile.ZipFile | None = None

    def open(self, info: zipfile.ZipInfo):
        if self._zf is None:
            self._zf = _open_zip(self.zip_name, self.src)
        return self._zf.open(info)

    def __del__(self) -> None:
        if self._zf is not None:
            self._zf.close()


@dataclass(frozen=True)
class _Member:
    """One member of a ZIP, decompressed only by :meth:`read` (one at a time, never all at once)."""

    source: _ZipSource
    info: zipfile.ZipInfo

    def read(self) -> bytes:
        with self.source.open(self.info) as src:
            data = src.read(self.info.file_size + 1)  # never trust the header beyond its own claim
        if len(data) > self.info.file_size:
            raise ValueError(f"{self.source.zip_name}:{self.info.filename}: larger than the ZIP's header says")
        return data


def _open_zip(zip_name: str, src: Path | bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(src if isinstance(src, Path) else io.BytesIO(src))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{zip_name}: not a readable ZIP file ({_reason(exc)})") from None


def _expand_zip(zip_name: str, src: Path | bytes, folder: str | None = None) -> Iterable[tuple[str, Any]]:
    """Check a ZIP from its central directory (names, sizes, ratios), then yield its image members.

    Nothing is decompressed here: each member is a :class:`_Member` read when its turn comes.
    ``folder`` keeps only the members under that top folder (case-insensitive).
    """
    with _open_zip(zip_name, src) as zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS:
        raise ValueError(f"{zip_name}: {len(members)} files exceed the limit of {ZIP_MAX_MEMBERS}")
    total = packed = 0
    budget = memory_budget()
    for m in members:
        check_member_name(zip_name, m.filename)
        total += m.file_size
        packed += m.compress_size
        if m.file_size > _ZIP_MAX_RATIO * max(m.compress_size, 1) and m.file_size > 10_000_000:
            raise ValueError(f"{zip_name}: member {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}"
                             "-fold; refused as a ZIP bomb")
        if m.file_size > budget:
            raise ValueError(f"{zip_name}:{m.filename}: {_gb(m.file_size)} uncompressed, more than this machine "
                             f"can hold for an import ({_gb(budget)}; SEGDASH_IMPORT_MEMORY sets it)")
    if total > ZIP_MAX_BYTES:
        raise ValueError(f"{zip_name}: uncompressed size {total / 1e9:.1f} GB exceeds the limit of "
                         f"{ZIP_MAX_BYTES / 1e9:.1f} GB (set SEGDASH_ZIP_MAX_BYTES to raise it)")
    if total > _ZIP_BOMB_TOTAL and total > _ZIP_TOTAL_RATIO * max(packed, 1):
        raise ValueError(f"{zip_name}: {_gb(packed)} of members that expand to {_gb(total)} "
                         f"({total // max(packed, 1)}-fold); refused as a ZIP bomb")
    found = False
    shared = _ZipSource(zip_name, src)
    for m in members:
        path = PurePosixPath(m.filename)
        if folder is not None and (len(path.parts) < 2 or path.parts[0].lower() != folder.lower()):
            continue
        if path.name.startswith(".") or m.filename.startswith("__MACOSX/"):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        found = True
        yield f"{zip_name}:{m.filename}", _Member(shared, m)
    if not found:
        where = f"its folder {folder}/" if folder else "it"
        raise ValueError(f"{zip_name}: {where} holds no images (accepted: {', '.join(IMAGE_SUFFIXES)})")


def check_member_name(zip_name: str, member: str) -> None:
    """Refuse absolute paths, drive letters and ``..`` components in a ZIP member name."""
    norm = member.replace("\\", "/")
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in norm.split("/"):
        raise ValueError(f"{zip_name}: unsafe member name {member!r} (absolute or '..' path); refused")


_KIND = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}


def _read_one(name: str, opener: Any, *, channel: int | None, mmap: bool, as_stack: bool | None = None,
              budget: _Budget | None = None) -> tuple[np.ndarray, bool, list[str]]:
    """Read one file as (Z, Y, X); return the array, whether it had several slices, and notices."""
    suffix = Path(_member_part(name)).suffix.lower()
    kind = _KIND.get(suffix, suffix.lstrip(".").upper())
    budget = budget or _Budget(memory_budget())
    try:
        if isinstance(opener, _Member):
            opener = opener.read()
        if suffix in (".tif", ".tiff"):
            return _read_tiff(name, opener, channel=channel, mmap=mmap, as_stack=as_stack, budget=budget)
        return _read_pil(name, opener, channel=channel, budget=budget)
    except (ChannelChoiceNeeded, StackOrColourNeeded):
        raise
    except tifffile.TiffFileError as exc:  # a ValueError subclass that does not name the file
        raise ValueError(f"{name}: not a valid TIFF image, or a corrupt or truncated one ({_reason(exc)})") from None
    except UnidentifiedImageError:
        raise ValueError(f"{name}: not a valid {kind} image (its content is not a {kind} file)") from None
    except MemoryError:
        raise ValueError(f"{name}: too large to read into this machine's memory") from None
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        raise ValueError(f"{name}: cannot read this {kind} image; it may be corrupt or truncated "
                         f"({_reason(exc)})") from None
    except (OSError, EOFError, KeyError, IndexError, SyntaxError, RuntimeError, TypeError, struct.error,
            zlib.error, zipfile.BadZipFile) as exc:
        raise ValueError(f"{name}: cannot read this {kind} image; it may be corrupt or truncated "
                         f"({_reason(exc)})") from None


def _member_part(name: str) -> str:
    """The member name of ``archive.zip:dir/member.png`` (or ``name`` itself)."""
    low = name.lower()
    cut = low.rfind(".zip:")
    return name[cut + 5:] if cut >= 0 else name


_BYTES_PER_SAMPLE = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I": 4, "F": 4}


def _read_pil(name: str, opener: Any, *, channel: int | None,
              budget: _Budget | None = None) -> tuple[np.ndarray, bool, list[str]]:
    stored = len(opener) if isinstance(opener, (bytes, bytearray)) else Path(opener).stat().st_size
    src = io.BytesIO(opener) if isinstance(opener, (bytes, bytearray)) else opener
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(src)
        except Image.DecompressionBombError as exc:
            counts = [int(n) for n in re.findall(r"\d+", str(exc))]
            claim = f"{counts[0] / 1e6:,.0f} megapixels" if counts else "more pixels than SegDash reads"
            raise ValueError(f"{name}: its header claims {claim}, beyond any microscopy slice; refused as a "
                             "decompression bomb") from None
    with im:
        w, h = im.size
        pixels = int(w) * int(h)
        bands = len(im.getbands())
        decoded = pixels * bands * _BYTES_PER_SAMPLE.get(im.mode, 1)
        _check_bomb(name, decoded, stored)
        # decoded image + its array + a float32 gray copy of colour images
        (budget or _Budget(memory_budget())).claim(
            name, decoded * 2 + (pixels * 4 if bands > 1 else 0), f"a {w} x {h} image")
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


def _read_tiff(name: str, opener: Any, *, channel: int | None, mmap: bool, as_stack: bool | None = None,
               budget: _Budget | None = None) -> tuple[np.ndarray, bool, list[str]]:
    errors = _TiffErrors()
    logger = logging.getLogger("tifffile")
    logger.addHandler(errors)
    try:
        result = _read_tiff_series(name, opener, channel=channel, mmap=mmap, as_stack=as_stack,
                                   budget=budget or _Budget(memory_budget()))
    finally:
        logger.removeHandler(errors)
    if errors.messages:  # e.g. a truncated file: tifffile returns the pages it could read, and logs
        raise ValueError(f"{name}: damaged TIFF, it may be truncated ({_reason(Exception(errors.messages[0]))}); "
                         "nothing was imported")
    return result


def _read_tiff_series(name: str, opener: Any, *, channel: int | None, mmap: bool, as_stack: bool | None,
                      budget: _Budget) -> tuple[np.ndarray, bool, list[str]]:
    src = io.BytesIO(opener) if isinstance(opener, (bytes, bytearray)) else opener
    stored = len(opener) if isinstance(opener, (bytes, bytearray)) else Path(opener).stat().st_size
    with tifffile.TiffFile(src) as tif:
        if not tif.series:
            raise ValueError(f"{name}: TIFF holds no image data")
        series = tif.series[0]
        axes = series.axes.upper()
        shape = series.shape
        dtype = np.dtype(series.dtype)
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize  # from the header: nothing read yet
        planar = axes.startswith("S") and len(shape) == 3 and shape[0] in (3, 4)
        if planar and as_stack is None and channel is None:
            raise StackOrColourNeeded(name, int(shape[0]))
        arr = None
        if mmap and isinstance(opener, Path) and series.dataoffset is not None:
            # contiguous, uncompressed pixel data: map it instead of reading it
            dtype = dtype.newbyteorder(tif.byteorder)
            needed = series.dataoffset + nbytes
            if needed > stored:
                raise ValueError(f"{name}: file is truncated ({stored} bytes, "
                                 f"the header describes {needed}); copy it again")
            arr = np.memmap(opener, dtype=dtype, mode="r", offset=series.dataoffset, shape=shape, order="C")
        if arr is None:
            _check_bomb(name, nbytes, stored)
            dims = " x ".join(str(d) for d in shape)
            budget.claim(name, nbytes * 2, f"a {dims} {dtype} TIFF")
            arr = series.asarray()
    if planar and as_stack:
        axes = "Z" + axes[1:]
    return _to_zyx(name, arr, axes, channel)


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
                    raise ValueError(f"{name}: channel {channel} out of range 0..{n - 1}")
                arr = np.take(arr, channel, axis=i)
                notes.append(f"{name}: kept channel {channel} of {n}")
            axes = axes.replace(ax, "")
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"{name}: TIFF axes {axes!r} have no Y and X")
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
            raise ValueError(f"{name}: channel {channel} out of range 0..{c - 1}")
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
    raise ValueError(f"{name}: unsupported pixel type {dt}")


def _assemble(parts: list[tuple[str, np.ndarray, bool, list[str]]]) -> Stack:
    shapes = {p[1].shape[1:] for p in parts}
    if len(shapes) > 1:
        first = parts[0]
        odd = next(p for p in parts if p[1].shape[1:] != first[1].shape[1:])
        raise ValueError(f"slices differ in shape: {first[0]} is {first[1].shape[1]}x{first[1].shape[2]}, "
                         f"{odd[0]} is {odd[1].shape[1]}x{odd[1].shape[2]} (Y x X)")
    notices = [n for p in parts for n in p[3]]
    dtypes = {p[1].dtype for p in parts}
    if len(dtypes) > 1:
        target = np.result_type(*dtypes)
        if target not in (np.uint8, np.uint16, np.int16, np.float32):
            target = np.float32
        notices.append(f"files have different pixel types {sorted(map(str, dtypes))}; stored as {target}")
    names: list[str | None] = []
    sources: list[str] = []
    for name, arr, multi, _ in parts:
        stem = Path(PurePosixPath(_member_part(name)).name).stem
        if multi or arr.shape[0] > 1:
            names += [None if len(parts) == 1 else f"{stem}_{z:04d}" for z in range(arr.shape[0])]
        else:
            names.append(stem)
        sources += [name] * arr.shape[0]
    if len(parts) == 1:
        data = parts[0][1]
    else:
        data = np.concatenate([p[1].astype(np.result_type(*dtypes), copy=False) for p in parts])
        if data.dtype not in (np.uint8, np.uint16, np.int8, np.int16, np.float32):
            data = data.astype(np.float32)
    dup = _first_duplicate([n for n in names if n is not None])
    if dup:
        raise ValueError(f"two files have the same name {dup!r}; rename one so slices can be told apart")
    return Stack(data=data, names=names, sources=sources, notices=notices)


def _first_duplicate(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


# -- writing -----------------------------------------------------------------------------------

def atomic_write(path: str | Path, write: Any) -> Path:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync, then ``os.replace``.

    A crash or error leaves the old file untouched and no partial file behind. The file gets the
    permissions of any new file (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.
    The temporary name, ``.<name>.<host>-<pid>.<random>.tmp``, says which process owns it, so the
    next workspace open removes it if that process died mid-write.
    """
    from .owner import Owner

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{Owner.current().token()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    except OSError:
        pass
    os.close(fd)  # reopened by name: some writers (tifffile) want a file object with a path name
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
            raise ValueError(f"not enough space in {path.parent}: {free:.1f} MB free; {path.name} was not "
                             "written (the previous version, if any, is kept)") from None
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
        raise ValueError(f"PNG holds uint8 or uint16, not {arr.dtype}")
    return atomic_write(path, lambda fh: Image.fromarray(arr).save(fh, format="PNG", compress_level=1))


def read_png(path: str | Path) -> np.ndarray:
    """Read a PNG (or other single image) as a 2-D array, as stored."""
    with Image.open(path) as im:
        return np.array(im)


def write_tiff(path: str | Path | BinaryIO, stack: np.ndarray | Iterable[np.ndarray], *,
               shape: tuple[int, ...] | None = None, dtype: Any = None,
               metadata: dict | None = None, compression: str | None = None) -> None:
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
