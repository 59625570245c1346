"""Exporting masks and datasets: a ZIP of PNGs, a multipage TIFF, and a re-importable dataset ZIP.

File names follow the source slices: a slice imported from ``cell_07.png`` is exported as
``cell_07.png``; slices of a stack are named ``<dataset>_<zzzz>.png``. Binary masks are written
as 0/255, multi-class masks as class indices 0..K-1 (:func:`core.masks.to_export_values`).

Every function writes to a path (atomically) or to an open binary file (for download buttons);
:func:`to_bytes` runs one into memory.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

import numpy as np
from PIL import Image

from .io import atomic_write, write_tiff
from .masks import to_export_values
from .workspace import Workspace

__all__ = ["export_masks_zip", "export_masks_tiff", "export_dataset_zip", "export_labels_zip",
           "export_labels_tiff", "to_bytes", "FORMATS"]

FORMATS = ("zip", "tiff", "dataset")


def _sink(out: str | Path | BinaryIO, write: Callable[[BinaryIO], None]) -> None:
    if isinstance(out, (str, Path)):
        atomic_write(out, write)
    else:
        write(out)


def to_bytes(fn: Callable[..., None], *args, **kwargs) -> bytes:
    """Run an export function into memory: ``to_bytes(export_masks_zip, ws, "isbi2012")``."""
    buf = io.BytesIO()
    fn(*args, buf, **kwargs)
    return buf.getvalue()


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    return buf.getvalue()


def export_labels_zip(names: Iterable[str], labels: Iterable[np.ndarray], n_classes: int,
                      out: str | Path | BinaryIO) -> None:
    """Write (Y, X) label images as ``<name>.png`` members of a ZIP (binary as 0/255)."""
    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, lab in zip(names, labels):
                zf.writestr(f"{name}.png", _png_bytes(to_export_values(lab, n_classes)))
    _sink(out, write)


def export_labels_tiff(names: list[str], labels: Iterable[np.ndarray], shape: tuple[int, int, int], n_classes: int,
                       out: str | Path | BinaryIO) -> None:
    """Write label images as one multipage uint8 TIFF, slice names in its metadata."""
    frames = (to_export_values(lab, n_classes) for lab in labels)
    _sink(out, lambda fh: write_tiff(fh, frames, shape=shape, dtype=np.uint8,
                                     metadata={"slice_names": names}, compression="zlib"))


def _labeled(ws: Workspace, dataset: str) -> tuple[list[str], list[int]]:
    info = ws.dataset(dataset)
    zs = ws.labeled_slices(dataset)
    if not zs:
        raise ValueError(f"dataset {dataset!r} has no masks yet: label or predict some slices first")
    return [info.slice_names[z] for z in zs], zs


def export_masks_zip(ws: Workspace, dataset: str, out: str | Path | BinaryIO) -> None:
    """Masks of every labeled slice of ``dataset`` as a ZIP of PNGs named like their source slices."""
    names, zs = _labeled(ws, dataset)
    k = ws.dataset(dataset).n_classes
    export_labels_zip(names, (ws.read_mask(dataset, z) for z in zs), k, out)


def export_masks_tiff(ws: Workspace, dataset: str, out: str | Path | BinaryIO) -> None:
    """Masks of every labeled slice as one multipage TIFF (Z, Y, X) in slice order.

    Only labeled slices are written; their names are in the TIFF's metadata (``slice_names``).
    """
    names, zs = _labeled(ws, dataset)
    info = ws.dataset(dataset)
    export_labels_tiff(names, (ws.read_mask(dataset, z) for z in zs), (len(zs), *info.shape[1:]),
                       info.n_classes, out)


def export_dataset_zip(ws: Workspace, dataset: str, out: str | Path | BinaryIO) -> None:
    """Images and masks of ``dataset`` as a ZIP that SegDash re-imports as the same dataset.

    Layout: ``images/<slice>.png`` (uint8; ``.tif`` for other dtypes, which keeps them),
    ``masks/<slice>.png`` for labeled slices, and ``segdash.json`` with the class names.
    """
    info = ws.dataset(dataset)
    stack = ws.read_images(dataset)

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("segdash.json", json.dumps({"dataset": info.name, "class_names": list(info.class_names),
                                                    "shape": list(info.shape), "dtype": info.dtype}, indent=1))
            for z, name in enumerate(info.slice_names):
                img = np.asarray(stack[z])
                if img.dtype == np.uint8:
                    zf.writestr(f"images/{name}.png", _png_bytes(img))
                else:
                    buf = io.BytesIO()
                    write_tiff(buf, img)
                    zf.writestr(f"images/{name}.tif", buf.getvalue())
                mask = ws.read_mask(dataset, z)
                if mask is not None:
                    zf.writestr(f"masks/{name}.png", _png_bytes(to_export_values(mask, info.n_classes)))
    _sink(out, write)
