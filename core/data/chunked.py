"""Chunked volumes: Zarr arrays (format 2 and 3), OME-Zarr images and N5 datasets opened by
reference, read a block at a time, and Zarr outputs written a chunk at a time, so memory is a few
chunks whatever the volume's size. zarr-python (Zarr) and TensorStore (N5: zarr-python 3 dropped its
N5 store) do the chunking and the codecs; nothing here decodes a chunk.

A volume is (Z, Y, X): an OME-Zarr image's full resolution level with one time point and one
channel chosen, a plain Zarr array of 2 or 3 dimensions (a 2-D array is one slice), or an N5 dataset
(N5 lists its dimensions fastest first, x, y, z, as BigDataViewer and n5-imglib2 write them; they
are reversed here to (Z, Y, X)). A group of N5 datasets is opened at its one dataset, or at its
full-resolution ``s0`` (BigDataViewer's ``setup0/timepoint0/s0``; :mod:`core.data.n5`).

No link inside a volume is followed (:mod:`core.data.nolinks`): a Zarr is read through a store that
opens every key a component at a time without following links, an N5 read first checks the chunk
files it touches; a link is refused with the volume's path and the linked key.

Example:
    >>> vol = open_volume("brain.zarr")                         # doctest: +SKIP
    >>> vol.shape, vol.chunks                                   # doctest: +SKIP
    ((400, 1024, 1024), (16, 256, 256))
    >>> block = vol.read(slice(0, 16), slice(0, 256), slice(0, 256))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import SegDashError
from .n5 import is_n5, n5_attributes, n5_dataset, n5_resolution, open_n5
from .omezarr import axis_index, is_omezarr, read_omezarr_metadata

__all__ = ["Volume", "is_chunked", "open_volume", "create_volume", "blocks", "sample_slices", "as_array"]

_SAMPLE_SIDE = 512  # sample_slices: at most this many pixels a side per sampled slice
IN_MEMORY_BYTES = 256 << 20  # as_array: volumes up to this size are read into memory


def is_chunked(path: str | Path) -> bool:
    """True for a folder holding a Zarr array or group (format 2 or 3), or an N5 container or dataset."""
    p = Path(path)
    return p.is_dir() and (_is_zarr(p) or is_n5(p))


def _is_zarr(path: Path) -> bool:
    return any((path / f).is_file() for f in ("zarr.json", ".zarray", ".zgroup"))


@dataclass(frozen=True)
class Volume:
    """A (Z, Y, X) view of a chunked array, read on demand.

    Attributes:
        array: the zarr array (or any array with numpy indexing, e.g. a ``np.memmap``).
        index: how the stored axes map to (Z, Y, X): an int picks a time point or channel, ``None``
            keeps the axis, ``"new"`` adds a Z axis of one (2-D arrays).
        shape, chunks: (Z, Y, X) shape and chunk shape.
        dtype: the stored dtype.
        path: where it was opened (``""`` for an in-memory array).
        pixel_size: ``(z, y, x)`` from OME-Zarr metadata, or ``None``.
        channel: the channel chosen when opened (``None``: the image has one).

    It also reads like a read-only (Z, Y, X) numpy array, so what takes a stack (a memory-mapped
    TIFF) takes a volume: ``shape``, ``dtype``, ``ndim``, ``len()`` and indexing with ints, slices
    (and a list of z) read only the chunks the selection touches; ``np.asarray(volume)`` reads it all.

    Example:
        >>> vol = Volume.from_array(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
        >>> vol[1, 2].tolist(), vol[:, 0, ::3].tolist(), len(vol), vol.ndim
        ([20, 21, 22, 23], [[0, 3], [12, 15]], 2, 3)
    """

    array: Any
    index: tuple[Any, ...]
    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    dtype: np.dtype
    path: str = ""
    pixel_size: tuple[float, float, float] | None = None
    channel: int | None = None

    @classmethod
    def from_array(cls, array: Any, chunks: tuple[int, int, int] | None = None) -> Volume:
        """A (Z, Y, X) numpy array or memmap as a volume (chunks: one slice by default)."""
        if array.ndim != 3:
            raise SegDashError(f"expected a (Z, Y, X) stack, got shape {array.shape}")
        shape = tuple(int(n) for n in array.shape)
        return cls(array, (None, None, None), shape, chunks or (1, shape[1], shape[2]), np.dtype(array.dtype))

    def read(self, z: slice, y: slice, x: slice) -> np.ndarray:
        """The (Z, Y, X) block ``[z, y, x]`` (slices with steps allowed) as a numpy array; only the
        chunks it touches are read."""
        if self.index[-1] == "new":  # a 2-D array: Z is an added axis of one
            return np.asarray(self.array[y, x])[None][z]
        wanted = iter((z, y, x))
        return np.asarray(self.array[tuple(next(wanted) if i is None else i for i in self.index)])

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        everything = slice(None)
        out = self.read(everything, everything, everything)
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        """numpy indexing with ints and slices on each axis (a list or array of z on the first), read
        on demand; an int drops its axis as numpy does."""
        key = _full_key(key if isinstance(key, tuple) else (key,))
        if not isinstance(key[0], (int, np.integer, slice)):  # several z: one read each
            zs = np.arange(self.shape[0])[key[0]]
            if zs.ndim != 1:
                raise IndexError(f"z index of shape {zs.shape}: give a list of slice numbers")
            if not len(zs):
                return np.asarray(self.read(slice(0, 0), slice(None), slice(None))[(slice(None), *key[1:])])
            return np.stack([self[(int(z), *key[1:])] for z in zs])
        picks, dropped = [], []
        for axis, (k, n) in enumerate(zip(key, self.shape)):
            if isinstance(k, slice):
                picks.append(k)
                continue
            if not isinstance(k, (int, np.integer)):
                raise IndexError(f"a volume takes ints and slices on axis {axis}, got {type(k).__name__}")
            i = int(k) + n if k < 0 else int(k)
            if not 0 <= i < n:
                raise IndexError(f"index {int(k)} is out of bounds for axis {axis} with size {n}")
            picks.append(slice(i, i + 1))
            dropped.append(axis)
        out = self.read(*picks)
        return out[tuple(0 if axis in dropped else slice(None) for axis in range(3))]


def _full_key(key: tuple[Any, ...]) -> tuple[Any, Any, Any]:
    """An index tuple of up to 3 entries (an ``...`` allowed) as exactly (z, y, x)."""
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (4 - len(key)) + key[i + 1 :]
    if len(key) > 3:
        raise IndexError(f"too many indices for a (Z, Y, X) volume: {len(key)}")
    return tuple(key) + (slice(None),) * (3 - len(key))  # type: ignore[return-value]


def _array_of_group(path: Path) -> tuple[Any, list[str], tuple[float, float, float] | None]:
    """The full-resolution array of an OME-Zarr image (or the single array of a plain group), its
    axis names and the pixel size."""
    import zarr

    from .nolinks import NoLinkStore

    group = zarr.open_group(store=NoLinkStore(path), mode="r")
    if is_omezarr(path):
        attrs = dict(group.attrs)
        ms = (attrs.get("ome", attrs).get("multiscales") or [{}])[0]
        level = (ms.get("datasets") or [{}])[0].get("path", "0")
        meta = read_omezarr_metadata(path)
        return group[level], meta["axes"], meta["pixel_size"]
    arrays = sorted(name for name, _ in group.arrays())
    if len(arrays) != 1:
        raise SegDashError(
            f"{path}: a Zarr group of {len(arrays)} arrays ({', '.join(arrays[:5]) or 'none'}) without OME "
            "metadata; give the array's own folder"
        )
    return group[arrays[0]], [], None


def open_volume(path: str | Path, *, channel: int | None = None) -> Volume:
    """Open a Zarr array, a Zarr group of one array, or an OME-Zarr image as a (Z, Y, X) :class:`Volume`
    without reading its pixels.

    Args:
        path: the folder (``.zarr``; format 2 or 3).
        channel: channel to keep when the image has a ``c`` axis of several channels.

    Raises:
        ValueError: not Zarr or N5, several time points, several channels without ``channel``,
            or a shape that is not (Z, Y, X).
    """
    import zarr

    from .nolinks import NoLinkStore

    path = Path(path)
    if not is_chunked(path):
        raise SegDashError(f"{path}: not a Zarr or N5 folder (no zarr.json, .zarray, .zgroup, or N5 attributes.json)")
    if not _is_zarr(path):
        return _volume(path, *open_n5(path), channel)
    try:
        kind = _node_kind(path)
        if kind == "array":
            arr, axes, pixel_size = zarr.open_array(store=NoLinkStore(path), mode="r"), [], None
        else:
            arr, axes, pixel_size = _array_of_group(path)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, SegDashError):
            raise
        raise SegDashError(f"{path}: cannot open the Zarr ({type(exc).__name__}: {exc})") from None
    return _volume(path, arr, axes, pixel_size, channel)


def _volume(
    path: Path, arr: Any, axes: list[str], pixel_size: tuple[float, float, float] | None, channel: int | None
) -> Volume:
    """The (Z, Y, X) :class:`Volume` of an opened array with C-order ``shape`` and ``chunks`` and its
    axis names (none: z, y, x by the number of dimensions)."""
    if not axes:
        axes = ["z", "y", "x"][-arr.ndim :] if arr.ndim in (2, 3) else []
    if len(axes) != arr.ndim:
        raise SegDashError(f"{path}: an array of shape {arr.shape} without axis names; expected (Z, Y, X)")
    index: list[Any] = axis_index(path, axes, arr.shape, channel, "volume")
    kept = [ax for ax, i in zip(axes, index) if i is None]
    sizes = {ax: int(n) for ax, n, i in zip(axes, arr.shape, index) if i is None}
    chunk = {ax: int(c) for ax, c, i in zip(axes, arr.chunks, index) if i is None}
    if kept == ["y", "x"]:
        index.append("new")
        sizes["z"], chunk["z"] = 1, 1
    elif kept != ["z", "y", "x"]:
        raise SegDashError(f"{path}: axes {axes} do not make a (Z, Y, X) volume")
    return Volume(
        arr,
        tuple(index),
        (sizes["z"], sizes["y"], sizes["x"]),
        (chunk["z"], chunk["y"], chunk["x"]),
        np.dtype(arr.dtype),
        str(path),
        pixel_size,
        channel,
    )


def n5_pixel_size(path: str | Path) -> tuple[tuple[float, float, float] | None, str | None]:
    """:func:`n5_resolution` of the N5 dataset that :func:`open_volume` opens at ``path``;
    ``(None, None)`` where it opens no N5 (a Zarr folder, or no volume)."""
    path = Path(path)
    if not path.is_dir() or _is_zarr(path) or not is_n5(path):
        return None, None
    dataset = n5_dataset(path)
    attrs = n5_attributes(dataset)
    return n5_resolution(attrs, len(attrs.get("dimensions") or []))


def _node_kind(path: Path) -> str:
    """``"array"`` or ``"group"``, from the folder's metadata file."""
    if (path / ".zarray").is_file():
        return "array"
    if (path / "zarr.json").is_file():
        meta = json.loads((path / "zarr.json").read_text())
        return "array" if meta.get("node_type") == "array" else "group"
    return "group"


def create_volume(
    path: str | Path, shape: tuple[int, int, int], dtype: Any, chunks: tuple[int, int, int], zarr_format: int = 3
) -> Any:
    """Create an empty (Z, Y, X) Zarr array at ``path`` (a new folder; fill value 0) and return it,
    ready to be written a chunk at a time (by several processes, each writing its own chunks)."""
    import zarr

    path = Path(path)
    if path.exists():
        raise SegDashError(f"{path}: already exists; choose a new name or remove it first")
    if zarr_format not in (2, 3):
        raise SegDashError(f"zarr_format must be 2 or 3, got {zarr_format}")
    return zarr.create_array(
        str(path),
        shape=tuple(int(n) for n in shape),
        chunks=tuple(int(c) for c in chunks),
        dtype=dtype,
        fill_value=0,
        zarr_format=zarr_format,
        dimension_names=("z", "y", "x") if zarr_format == 3 else None,
    )


def blocks(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The chunk grid of ``shape``: one tuple of slices per chunk, in C order (edge chunks cut short).

    Example:
        >>> [tuple((s.start, s.stop) for s in b) for b in blocks((3, 5), (2, 4))]
        [((0, 2), (0, 4)), ((0, 2), (4, 5)), ((2, 3), (0, 4)), ((2, 3), (4, 5))]
    """
    grids = [range(math.ceil(n / c)) for n, c in zip(shape, chunks)]
    for ids in product(*grids):
        yield tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(ids, chunks, shape))


def sample_slices(volume: Volume, n: int = 4) -> np.ndarray:
    """Up to ``n`` evenly spaced slices, each subsampled to at most 512 pixels a side: enough for an
    intensity window or a fit check, reading only those slices' chunks. (n', Y', X')."""
    z_total, h, w = volume.shape
    zs = sorted({int(round(v)) for v in np.linspace(0, z_total - 1, min(n, z_total))})
    step = max(1, math.ceil(max(h, w) / _SAMPLE_SIDE))
    return np.stack([volume.read(slice(z, z + 1), slice(None, None, step), slice(None, None, step))[0] for z in zs])


def as_array(volume: Volume, *, in_memory_bytes: int = IN_MEMORY_BYTES, folder: str | Path | None = None) -> np.ndarray:
    """The whole volume as a (Z, Y, X) numpy array, for an import: read into memory up to
    ``in_memory_bytes``; a larger one is copied a chunk slab at a time (plain file writes) into an
    uncompressed TIFF in ``folder`` (default: the system's temporary folder), removed when the
    process exits, and returned memory-mapped, so memory stays at one slab of chunks.

    Raises:
        ValueError: not enough free space in ``folder`` for the copy.
    """
    z_total, h, w = volume.shape
    nbytes = z_total * h * w * volume.dtype.itemsize
    everything = slice(None)
    if nbytes <= in_memory_bytes:
        return volume.read(everything, everything, everything)
    import atexit
    import os
    import shutil
    import tempfile

    import tifffile

    folder = Path(folder or tempfile.gettempdir())
    free = shutil.disk_usage(folder).free
    if free < nbytes + (64 << 20):
        raise SegDashError(
            f"{volume.path}: copying it needs {nbytes / 1e9:.1f} GB in {folder}, {free / 1e9:.1f} GB are free "
            "(TMPDIR chooses the folder)"
        )
    fd, name = tempfile.mkstemp(prefix="segdash-volume-", suffix=".tif", dir=folder)
    os.close(fd)
    atexit.register(lambda: Path(name).unlink(missing_ok=True))
    step = max(1, volume.chunks[0])

    def slices() -> Iterator[np.ndarray]:
        for z0 in range(0, z_total, step):
            yield from volume.read(slice(z0, min(z_total, z0 + step)), everything, everything)

    tifffile.imwrite(name, slices(), shape=(z_total, h, w), dtype=volume.dtype, photometric="minisblack")
    return tifffile.memmap(name, mode="r")
