"""OME-Zarr multiscale images written one level at a time, a chunk at a time (for :mod:`core.data.omezarr`).

Every level is chunked one slice deep and at most :data:`CHUNK_SIDE` x :data:`CHUNK_SIDE`, so
reading one slice back reads only that slice's chunks. Level 0 is stored from the (lazy, dask)
input; level ``k + 1`` is computed from level ``k`` as written (read back from the Zarr, halved in y
and x with ome-zarr's own downsampling: 2 x 2 mean for images, nearest for labels). Each level is one
dask computation, so memory stays a few chunks whatever the depth (one computation of every level
at once, as ome-zarr's ``write_image`` does, keeps each level-0 chunk until its level-1 chunk is done,
which dask's ordering may delay for the whole stack). The metadata is ome-zarr's
(``write_multiscales_metadata``), so the result is the same OME-NGFF 0.4 multiscale image.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import SegDashError

__all__ = ["CHUNK_SIDE", "MIN_LEVEL_SIDE", "chunks_of", "lazy_stack", "scale_levels", "write_multiscale"]

CHUNK_SIDE = 1024  # y/x side of a chunk at every level (one slice deep)
MIN_LEVEL_SIDE = 128  # levels are added while the smaller side keeps at least this many pixels (4 at most)

Progress = Callable[[int, int, str], None]


def scale_levels(shape: Sequence[int]) -> int:
    """Levels below full resolution: halved while the smaller side keeps ``MIN_LEVEL_SIDE``, at most 4."""
    side, n = min(int(s) for s in shape[-2:]), 0
    while side // (2 ** (n + 1)) >= MIN_LEVEL_SIDE and n < 4:
        n += 1
    return n


def chunks_of(shape: Sequence[int]) -> tuple[int, int, int]:
    """The chunks of a (Z, Y, X) level: one slice, at most ``CHUNK_SIDE`` a side."""
    return (1, min(int(shape[1]), CHUNK_SIDE), min(int(shape[2]), CHUNK_SIDE))


def lazy_stack(arr: Any, dtype: Any = None) -> Any:
    """``arr`` (numpy, a memory map, a dask array) as a (Z, Y, X) dask array in :func:`chunks_of` chunks."""
    import dask.array as da

    if not hasattr(arr, "dask"):
        arr = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim == 3:
            arr = da.from_array(arr, chunks=chunks_of(arr.shape))
    if arr.ndim != 3:
        raise SegDashError(f"expected a (Z, Y, X) stack, got shape {arr.shape}")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr.rechunk(chunks_of(arr.shape))


@contextlib.contextmanager
def _progress(progress: Progress | None, stage: str) -> Iterator[None]:
    """``progress(done, total, stage)`` after each dask task of the computations inside the ``with``
    (dask's local schedulers call a :class:`dask.callbacks.Callback`); nothing without ``progress``."""
    if progress is None:
        yield
        return
    from dask.callbacks import Callback

    counts = [0, 0]

    def start_state(dsk: Any, state: dict[str, Any]) -> None:
        counts[:] = [0, sum(len(state[k]) for k in ("ready", "waiting", "running", "finished"))]

    def posttask(key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        counts[0] += 1
        progress(counts[0], max(counts), stage)

    with Callback(start_state=start_state, posttask=posttask):
        yield


def write_multiscale(
    group: Any,
    data: Any,
    *,
    labels: bool,
    name: str,
    pixel_size: Sequence[float] | None = None,
    unit: str | None = None,
    progress: Progress | None = None,
    stage: str = "images",
    label_dtype: Any = np.uint8,
) -> None:
    """Write ``data`` ((Z, Y, X), numpy or dask) as the multiscale image of the Zarr v2 ``group``:
    arrays ``s0``, ``s1``, ... and ome-zarr's ``multiscales`` metadata (axes z, y, x; the scale of
    each level times ``pixel_size``, in ``unit``). ``labels``: nearest downsampling (class values are
    kept; stored as ``label_dtype``: uint8 class indices, uint32 instance labels), else a 2 x 2 mean.
    ``progress(done, total, f"{stage} (level i/n)")`` follows each level."""
    import dask.array as da
    from ome_zarr.format import FormatV04
    from ome_zarr.scale import Methods, method_dispatch
    from ome_zarr.writer import write_multiscales_metadata

    fmt = FormatV04()
    how = method_dispatch[Methods.NEAREST if labels else Methods.LOCAL_MEAN]
    level = lazy_stack(data, label_dtype if labels else None)
    n = scale_levels(level.shape)
    shapes = []
    for i in range(n + 1):
        if i:
            prev = da.from_zarr(group[f"s{i - 1}"])  # the level as written: never two levels in memory
            out_shape = (prev.shape[0], prev.shape[1] // 2, prev.shape[2] // 2)
            level = how["func"](prev, output_shape=out_shape, **how["kwargs"]).astype(prev.dtype)
            level = level.rechunk(chunks_of(out_shape))
        target = group.create_array(
            f"s{i}",
            shape=level.shape,
            chunks=chunks_of(level.shape),
            dtype=level.dtype,
            fill_value=0,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        with _progress(progress, f"{stage} (level {i + 1}/{n + 1})"):
            da.store(level, target, lock=False)
        shapes.append(level.shape)
    size = [float(v) for v in pixel_size] if pixel_size is not None else [1.0, 1.0, 1.0]
    datasets = []
    for i, transform in enumerate(fmt.generate_coordinate_transformations(shapes)):
        for t in transform:  # in pixels of level 0; scaled to physical units as the axes are
            key = t["type"]
            t[key] = [v * p for v, p in zip(t[key], size)]
        datasets.append({"path": f"s{i}", "coordinateTransformations": transform})
    axes = [{"name": a, "type": "space", **({"unit": unit} if unit and pixel_size is not None else {})} for a in "zyx"]
    write_multiscales_metadata(group, datasets=datasets, fmt=fmt, axes=axes, name=name)
