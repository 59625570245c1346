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
  and one colour image, else :class:`StackOrColourNeeded` asks; so is an unnamed axis of one after
  Y (``(5, 100, 1)``: :class:`SingletonAxisNeeded`).
- Every page of a TIFF is read: pages written one by one (a series each) are the slices of one
  stack; several series of different shapes are a question (``series=``, else
  :class:`SeriesChoiceNeeded`). See :mod:`core.data.tiffpages`.
- Every refusal is a :class:`ValueError` whose message names the file (``archive.zip:member`` for
  a ZIP member) and never quotes its bytes.
- :func:`check_import_path` limits paths to configured folders (the web page's server import).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import SegDashError
from .files import atomic_write, read_png, write_png, write_tiff
from .limits import (
    IMAGE_SUFFIXES,
    Budget,
    ChannelChoiceNeeded,
    SeriesChoiceNeeded,
    SingletonAxisNeeded,
    StackOrColourNeeded,
    memory_budget,
)
from .readers import member_part, read_one
from .zips import ZIP_MAX_BYTES, ZIP_MAX_MEMBERS, ZipFolder, expand_zip

__all__ = [
    "Stack",
    "ChannelChoiceNeeded",
    "StackOrColourNeeded",
    "SingletonAxisNeeded",
    "SeriesChoiceNeeded",
    "ZipFolder",
    "read_stack",
    "memory_budget",
    "check_import_path",
    "natural_key",
    "write_tiff",
    "write_png",
    "read_png",
    "atomic_write",
    "IMAGE_SUFFIXES",
    "ZIP_MAX_BYTES",
    "ZIP_MAX_MEMBERS",
]


@dataclass
class Stack:
    """An image stack read from a source.

    Attributes:
        data: (Z, Y, X) array in the stored dtype; read-only and memory-mapped for uncompressed TIFFs
            (a ``np.memmap``, or a strided view of one for pages written one by one).
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


def read_stack(
    source: Any,
    *,
    channel: int | None = None,
    mmap: bool = True,
    as_stack: bool | None = None,
    roots: Sequence[str | Path] | None = None,
    progress: Callable[[int, int], None] | None = None,
    reference: bool = False,
    series: int | None = None,
) -> Stack:
    """Read images from ``source`` as one (Z, Y, X) stack.

    Args:
        source: a path (TIFF stack, image file, ZIP, folder, OME-Zarr or Zarr folder); a file-like object with ``.name``
            (such as a Streamlit upload); a ``(name, bytes)`` pair; a :class:`ZipFolder`; or a list
            of any of these.
        channel: channel to keep for multi-channel images (RGB is turned to gray unless given).
        mmap: memory-map uncompressed TIFF files instead of reading them.
        as_stack: how to read a TIFF of 3 or 4 planes stored as planar RGB(A) (as tifffile writes a
            (3, Y, X) array without ``photometric``): ``True`` as that many slices, ``False`` as one
            colour image (turned to gray); ``None`` raises :class:`StackOrColourNeeded`. The same choice
            for an array with an unnamed axis of one after Y, such as ``(5, 100, 1)``: ``True`` reads
            its last two axes as Y and X (5 slices of 100 x 1), ``False`` its pages as stored (one
            5 x 100 image); ``None`` raises :class:`SingletonAxisNeeded`.
        roots: when given, every file read (after resolving links) must lie inside one of these
            folders (see :func:`check_import_path`).
        progress: called as ``progress(done, total)`` after each file read.
        series: which series of a TIFF holding several of different shapes to read (``None``: all of
            a stack written a page at a time, else :class:`SeriesChoiceNeeded`).
        reference: open a Zarr or OME-Zarr folder without reading it: the stack's data is then a
            :class:`~core.data.chunked.Volume` (read on demand); any other source is refused.

    Returns:
        Stack with slices in natural order of their file names (pages of a file keep their order).

    Raises:
        ValueError: unreadable or corrupt files, unsafe ZIPs, images too large for the memory
            budget (:func:`memory_budget`), slices of different shapes; :class:`ChannelChoiceNeeded`
            for hyperstacks without ``channel``; :class:`StackOrColourNeeded` and
            :class:`SingletonAxisNeeded` (see ``as_stack``); :class:`SeriesChoiceNeeded` (``series``).
    """
    if isinstance(source, (str, Path)):  # an OME-Zarr folder is one image
        from .chunked import is_chunked

        path = check_import_path(source, roots) if roots is not None else Path(source)
        if is_chunked(path):  # OME-Zarr or a plain Zarr array
            return _read_zarr_stack(path, channel=channel, roots=roots, reference=reference)
    if reference:
        raise SegDashError(
            f"{_describe(source)}: only a Zarr (format 2 or 3), OME-Zarr or N5 folder is imported by reference; "
            "import this as a copy"
        )
    items = list(_expand(source, roots))
    if not items:
        raise SegDashError(f"{_describe(source)}: no images found (accepted: {', '.join(IMAGE_SUFFIXES)}, .zip)")
    items.sort(key=lambda it: natural_key(it[0]))
    budget = Budget(memory_budget())
    parts: list[tuple[str, np.ndarray, bool, list[str]]] = []
    for k, (name, opener) in enumerate(items):
        arr, multi, notes = read_one(
            name,
            opener,
            channel=channel,
            mmap=mmap and len(items) == 1,
            as_stack=as_stack,
            budget=budget,
            series=series,
        )
        parts.append((name, arr, multi, notes))
        if progress is not None:
            progress(k + 1, len(items))
    return _assemble(parts)


def _read_zarr_stack(path: Path, *, channel: int | None, roots: Sequence[str | Path] | None, reference: bool) -> Stack:
    """An OME-Zarr image, or a plain Zarr array (format 2 or 3), as a :class:`Stack`. Read through
    :func:`core.data.chunked.open_volume` and :func:`~core.data.chunked.as_array`: into memory when
    small, else copied a chunk slab at a time into a memory-mapped temporary TIFF, so a volume of any
    size is imported in bounded memory (the importer keeps the pixel size, see :mod:`core.data.pixelsize`).
    With ``reference``, nothing is read: the stack's data is the :class:`~core.data.chunked.Volume`
    itself, opened at the folder's resolved path (an import by reference records it).
    With ``roots``, every file of the folder (links resolved) must lie inside them."""
    from .chunked import as_array, open_volume  # zarr: imported only for a Zarr folder

    if roots is not None:
        for p in Path(path).rglob("*"):
            check_import_path(p, roots)
    volume = open_volume(Path(path).resolve() if reference else path, channel=channel)
    data = volume if reference else as_array(volume)
    return Stack(data=data, names=[None] * data.shape[0], sources=[Path(path).name] * data.shape[0])


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
    raise SegDashError(
        f"that path is outside the folders this server imports from ({shown}); copy the data "
        "into one of them, or set SEGDASH_IMPORT_ROOTS when starting the server"
    )


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
            yield from expand_zip(Path(zsrc).name, Path(zsrc), folder=source.folder)
        else:
            yield from expand_zip(str(zsrc[0]), bytes(zsrc[1]), folder=source.folder)
    elif isinstance(source, (list, tuple)):
        for s in source:
            yield from _expand(s, roots)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if roots is not None:
            path = check_import_path(path, roots)
        if not path.exists():
            raise SegDashError(f"{source}: no such file or folder")
        if path.is_dir():
            files = [
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
            ]
            for p in files:
                if roots is not None:
                    check_import_path(p, roots)  # a link inside the folder may point anywhere
                yield str(p.relative_to(path)), p
        elif path.suffix.lower() == ".zip":
            yield from expand_zip(path.name, path)
        else:
            _check_suffix(path.name)
            yield path.name, path
    elif hasattr(source, "read") and hasattr(source, "name"):
        data = source.getvalue() if hasattr(source, "getvalue") else source.read()
        yield from _expand_named_bytes(Path(source.name).name, data)
    else:
        raise SegDashError(f"cannot read images from {type(source).__name__}")


def _check_suffix(name: str) -> None:
    if Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        raise SegDashError(f"{name}: not an accepted image type (accepted: {', '.join(IMAGE_SUFFIXES)}, .zip)")


def _expand_named_bytes(name: str, data: bytes) -> Iterable[tuple[str, Any]]:
    if name.lower().endswith(".zip"):
        yield from expand_zip(name, data)
    else:
        _check_suffix(name)
        yield name, data


def _assemble(parts: list[tuple[str, np.ndarray, bool, list[str]]]) -> Stack:
    shapes = {p[1].shape[1:] for p in parts}
    if len(shapes) > 1:
        first = parts[0]
        odd = next(p for p in parts if p[1].shape[1:] != first[1].shape[1:])
        raise SegDashError(
            f"slices differ in shape: {first[0]} is {first[1].shape[1]}x{first[1].shape[2]}, "
            f"{odd[0]} is {odd[1].shape[1]}x{odd[1].shape[2]} (Y x X)"
        )
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
        stem = Path(PurePosixPath(member_part(name)).name).stem
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
        raise SegDashError(f"two files have the same name {dup!r}; rename one so slices can be told apart")
    return Stack(data=data, names=names, sources=sources, notices=notices)


def _first_duplicate(names: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None
