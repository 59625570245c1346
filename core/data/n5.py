"""N5 datasets read by TensorStore (zarr-python 3 dropped its N5 store) for
:func:`core.data.chunked.open_volume`: the dataset of a container, its dimensions reversed to C
order (z, y, x), its pixel size; every read first checks that the chunk files it touches are no
links (:mod:`core.data.nolinks`)."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import SegDashError
from .nolinks import check_no_links

__all__ = ["n5_resolution"]


def n5_attributes(path: Path) -> dict[str, Any]:
    try:
        attrs = json.loads((path / "attributes.json").read_text())
    except (OSError, ValueError):
        return {}
    return attrs if isinstance(attrs, dict) else {}


def is_n5(path: Path) -> bool:
    """An N5 container's root (``attributes.json`` with its ``n5`` version) or an N5 dataset
    (``attributes.json`` with ``dimensions`` and ``dataType``)."""
    attrs = n5_attributes(path)
    return "n5" in attrs or {"dimensions", "dataType"} <= attrs.keys()


def open_n5(path: Path) -> tuple[Any, list[str], tuple[float, float, float] | None]:
    """The N5 dataset at ``path`` (or the one dataset, or ``s0``, of the group there) opened read-only
    with TensorStore, its dimensions reversed to C order (z, y, x), with its axis names and pixel size
    when the attributes give them (``axes``; ``resolution`` or ``pixelResolution``)."""
    try:
        import tensorstore as ts
    except ImportError:
        raise SegDashError(f"{path}: reading N5 needs the tensorstore package (pip install tensorstore)") from None
    dataset = n5_dataset(path)
    attrs = n5_attributes(dataset)
    try:
        store = ts.open(
            {"driver": "n5", "kvstore": {"driver": "file", "path": str(dataset)}, "open": True}, read=True
        ).result()
    except (ValueError, OSError, RuntimeError) as exc:
        raise SegDashError(f"{dataset}: cannot open the N5 dataset ({_first_line(exc)})") from None
    check_no_links(path, [str(Path(dataset.relative_to(path), "attributes.json"))])
    arr = _CArray(store.T, dataset)
    axes = attrs.get("axes")
    names = [str(a).lower() for a in reversed(axes)] if isinstance(axes, list) and len(axes) == arr.ndim else []
    spatial = names or ["z", "y", "x"][-arr.ndim :]
    pixel_size, _ = n5_resolution(attrs, arr.ndim) if spatial[-3:] == ["z", "y", "x"] else (None, None)
    return arr, names, pixel_size  # type: ignore[return-value]


def n5_resolution(attrs: dict[str, Any], ndim: int = 3) -> tuple[tuple[float, float, float] | None, str | None]:
    """The (z, y, x) pixel size and its unit from an N5 dataset's attributes (``pixelResolution``
    ``{"dimensions": [x, y, z], "unit": ...}`` as n5-viewer writes it, or ``resolution`` ``[x, y, z]``
    with ``units``), for a 3-D dataset whose last axes are z, y, x; ``(None, None)`` when absent."""
    px = attrs.get("pixelResolution") if isinstance(attrs.get("pixelResolution"), dict) else {}
    res = px.get("dimensions") or attrs.get("resolution")
    units = attrs.get("units")
    unit = px.get("unit") or (units[0] if isinstance(units, list) and units else units)
    if not isinstance(res, list) or len(res) != ndim or ndim < 3:
        return None, None
    try:
        sizes = tuple(float(v) for v in list(reversed(res))[-3:])
    except (TypeError, ValueError):
        return None, None
    return (sizes if all(v > 0 for v in sizes) else None), (str(unit) if unit else None)  # type: ignore[return-value]


def n5_dataset(path: Path) -> Path:
    """``path`` when it is an N5 dataset; else the one dataset under it (up to 3 folders down), or
    its one full-resolution ``s0``."""
    if "dimensions" in n5_attributes(path):
        return path
    found = sorted(
        p.parent
        for depth in ("*", "*/*", "*/*/*")
        for p in path.glob(f"{depth}/attributes.json")
        if "dimensions" in n5_attributes(p.parent)
    )
    full = [p for p in found if p.name == "s0"]
    if len(found) == 1 or len(full) == 1:
        return found[0] if len(found) == 1 else full[0]
    names = ", ".join(str(p.relative_to(path)) for p in found[:5]) or "none"
    raise SegDashError(f"{path}: an N5 container of {len(found)} datasets ({names}); give the dataset's own folder")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class _CArray:
    """A TensorStore array read like a numpy array: ``shape``, ``ndim``, ``dtype``, ``chunks`` and
    indexing with ints and slices, which reads (synchronously) only the chunks it touches, after
    checking that none of their files is a link (:func:`~core.data.nolinks.check_no_links`)."""

    def __init__(self, store: Any, root: Path) -> None:
        self.store, self.root = store, root
        self.shape = tuple(int(n) for n in store.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        self.chunks = tuple(int(c) for c in store.chunk_layout.read_chunk.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        check_no_links(self.root, self._chunk_keys(key))
        return self.store[key].read().result()

    def _chunk_keys(self, key: Any) -> Iterator[str]:
        """The N5 keys (``x/y/z`` grid positions, fastest axis first) of the chunks ``key`` touches."""
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        spans = []
        for k, n, c in zip(key, self.shape, self.chunks):
            picked = range(n)[k] if isinstance(k, slice) else [int(k) % n]
            if not len(picked):
                return
            spans.append(range(min(picked) // c, max(picked) // c + 1))
        for ids in product(*spans):
            yield "/".join(str(i) for i in reversed(ids))
