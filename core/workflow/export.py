"""Exporting masks and datasets: a ZIP of PNGs, a multipage TIFF, and a re-importable dataset ZIP.

File names follow the source slices: a slice imported from ``cell_07.png`` is exported as
``cell_07.png``; slices of a stack are named ``<dataset>_<zzzz>.png``. Binary masks are written
as 0/255, multi-class masks as class indices 0..K-1 (:func:`core.data.masks.to_export_values`).

Every function writes to a path (atomically) or to an open binary file (for download buttons);
:func:`to_bytes` runs one into memory.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable

import numpy as np
import tifffile
from PIL import Image

from ..data.chunked import Volume
from ..data.csvcells import safe_row
from ..data.io import atomic_write, write_tiff
from ..data.masks import UNLABELED, to_export_values
from ..data.omezarr import write_omezarr, zip_folder
from ..data.pixelsize import PixelSize, imagej_tags
from ..errors import SegDashError
from ..predict.hyperstack import HyperstackWriter
from ..predict.stored import load_prediction
from ..store.workspace import Workspace
from .review import per_slice_scores

__all__ = [
    "export_masks_zip",
    "export_masks_tiff",
    "export_dataset_zip",
    "export_labels_zip",
    "export_labels_tiff",
    "to_bytes",
    "FORMATS",
    "export_dataset_omezarr",
    "export_prediction",
    "scores_csv",
    "PREDICTION_FORMATS",
]

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


def export_labels_zip(
    names: Iterable[str],
    labels: Iterable[np.ndarray],
    n_classes: int,
    out: str | Path | BinaryIO,
    sparse: bool = False,
) -> None:
    """Write (Y, X) label images as ``<name>.png`` members of a ZIP (binary as 0/255; with ``sparse``
    class indices and 255 for not labeled, :func:`~core.data.masks.to_export_values`)."""

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, lab in zip(names, labels):
                zf.writestr(f"{name}.png", _png_bytes(to_export_values(lab, n_classes, sparse)))

    _sink(out, write)


def export_labels_tiff(
    names: list[str],
    labels: Iterable[np.ndarray],
    shape: tuple[int, int, int],
    n_classes: int,
    out: str | Path | BinaryIO,
    *,
    info: dict | None = None,
    pixel_size: PixelSize | None = None,
    sparse: bool = False,
) -> None:
    """Write (Y, X) label images as one multipage uint8 ImageJ TIFF, one page per name.

    Fiji opens it as a stack whose slice labels are ``names`` (``imagej_metadata["Labels"]`` in
    tifffile); ``info`` (plain JSON values) goes into the ImageJ ``Info`` property as JSON;
    ``pixel_size``, when known, is the stack's calibration (resolution, unit and z spacing).
    """
    if len(names) != shape[0]:
        raise SegDashError(f"{len(names)} slice names for {shape[0]} pages")
    frames = (to_export_values(lab, n_classes, sparse) for lab in labels)
    calibration = imagej_tags(pixel_size)
    meta = {
        "axes": "ZYX",
        "Labels": [str(n) for n in names],
        **calibration.get("metadata", {}),
        "Info": json.dumps({"segdash": "masks", "slice_names": list(names), **(info or {})}),
    }
    resolution = calibration.get("resolution")
    _sink(
        out,
        lambda fh: tifffile.imwrite(
            fh,
            frames,
            shape=tuple(shape),
            dtype=np.uint8,
            imagej=True,
            metadata=meta,
            resolution=resolution,
            compression="zlib",
        ),
    )


def _labeled(ws: Workspace, dataset: str) -> tuple[list[str], list[int]]:
    info = ws.dataset(dataset)
    zs = ws.labeled_slices(dataset)
    if not zs:
        raise SegDashError(f"dataset {dataset!r} has no masks yet: label or predict some slices first")
    return [info.slice_names[z] for z in zs], zs


def export_masks_zip(ws: Workspace, dataset: str, out: str | Path | BinaryIO) -> None:
    """Masks of every labeled slice of ``dataset`` as a ZIP of PNGs named like their source slices."""
    names, zs = _labeled(ws, dataset)
    info = ws.dataset(dataset)
    export_labels_zip(names, (ws.read_mask(dataset, z) for z in zs), info.n_classes, out, _sparse(info))


def _sparse(info) -> bool:
    """The dataset has partial masks: its exports write class indices and 255 for not labeled."""
    return "partial" in info.coverage


def export_masks_tiff(ws: Workspace, dataset: str, out: str | Path | BinaryIO, *, labeled_only: bool = False) -> None:
    """Masks of ``dataset`` as one multipage ImageJ TIFF that lines up with the image stack.

    One page per image slice, in slice order, so page *z* of the masks lies on slice *z* of the
    images in Fiji; an unlabeled slice is a page of 255 (*not labeled*, never 0: that would read as
    all background) whose label is ``"<name> (unlabeled)"``; a file with such pages holds class
    indices (0..K-1, binary masks as 0/1 too: 0/255 would mix foreground with not labeled) and says
    ``"unlabeled_value": 255`` in its Info. The ImageJ slice labels hold the slice names; the ImageJ
    ``Info`` property holds JSON with ``slice_names``, ``class_names``, ``labeled`` and ``unlabeled``
    (slice indices). ``labeled_only=True`` writes only the labeled slices (pages no longer line up
    with the image stack; ``labeled`` then says which slice each page is).

    Example:
        >>> export_masks_tiff(ws, "isbi2012", "masks.tif")                       # doctest: +SKIP
        >>> tifffile.TiffFile("masks.tif").imagej_metadata["Labels"][30]         # doctest: +SKIP
        'isbi2012_0030 (unlabeled)'
    """
    _, labeled = _labeled(ws, dataset)
    info = ws.dataset(dataset)
    zs = labeled if labeled_only else list(range(info.shape[0]))
    has = set(labeled)
    names = [info.slice_names[z] if z in has else f"{info.slice_names[z]} (unlabeled)" for z in zs]
    sparse = _sparse(info) or any(z not in has for z in zs)  # pages of 255: class indices throughout
    empty = np.full(info.shape[1:], UNLABELED, np.uint8)

    def frames():
        for z in zs:
            mask = ws.read_mask(dataset, z) if z in has else None
            yield empty if mask is None else mask

    meta = {
        "dataset": info.name,
        "slice_names": [info.slice_names[z] for z in zs],
        "class_names": list(info.class_names),
        "labeled": labeled,
        "unlabeled": [z for z in range(info.shape[0]) if z not in has],
        **({"unlabeled_value": UNLABELED} if sparse else {}),
    }
    export_labels_tiff(
        names,
        frames(),
        (len(zs), *info.shape[1:]),
        info.n_classes,
        out,
        info=meta,
        pixel_size=ws.pixel_size(dataset),
        sparse=sparse,
    )


def export_dataset_zip(ws: Workspace, dataset: str, out: str | Path | BinaryIO) -> None:
    """Images and masks of ``dataset`` as a ZIP that SegDash re-imports as the same dataset.

    Layout: ``images/<slice>.png`` (uint8; ``.tif`` for other dtypes, which keeps them),
    ``masks/<slice>.png`` for labeled slices only (a slice without a mask has none: not labeled, not
    background), and ``segdash.json`` with the class names, ``labeled`` and ``unlabeled`` (slice
    indices; ``unlabeled_value`` 255 for partial masks) and the pixel size as ``[z, y, x, unit]``.
    """
    info = ws.dataset(dataset)
    stack = ws.read_images(dataset)
    px = ws.pixel_size(dataset)
    has = set(ws.labeled_slices(dataset))

    def write(fh: BinaryIO) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(
                "segdash.json",
                json.dumps(
                    {
                        "dataset": info.name,
                        "class_names": list(info.class_names),
                        "shape": list(info.shape),
                        "dtype": info.dtype,
                        **({"pixel_size": list(px)} if px else {}),
                        **({"unlabeled_value": UNLABELED} if _sparse(info) else {}),
                        "labeled": sorted(has),
                        "unlabeled": [z for z in range(info.shape[0]) if z not in has],
                    },
                    indent=1,
                ),
            )
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
                    zf.writestr(f"masks/{name}.png", _png_bytes(to_export_values(mask, info.n_classes, _sparse(info))))

    _sink(out, write)


def export_dataset_omezarr(
    ws: Any,
    dataset: str,
    out: str | Path | BinaryIO,
    *,
    prediction: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path | None:
    """A dataset's images and current masks (none without masks) as OME-Zarr: a ``.zarr`` folder, or a ZIP of one when
    ``out`` ends in ``.zip`` or is an open binary file (for downloading; unzip it, then open the
    ``<dataset>.zarr`` folder). Returns the path written (``None`` for an open file).

    The pixel size stored with the dataset (if any) becomes the axes' scale. A slice without a mask is
    255 in ``labels/masks`` (*not labeled*, transparent in napari; never 0, which reads as
    background), as are the unlabeled pixels of partial masks; the labeled and unlabeled slices, the
    class names and that not-labeled value 255 are recorded (the ``segdash`` attribute) so that an
    import of ``X.zarr`` with ``X.zarr/labels/masks`` gives back the same dataset
    (:mod:`core.data.omezarr`).
    ``prediction`` (a stored prediction's run id) adds its masks as a second labels image,
    ``labels/prediction_<run id>`` (slices it did not reach are 0). ``progress(done, total, stage)``
    follows the writing (:func:`core.data.omezarr.write_omezarr`).

    The image, its masks and the prediction are dask arrays read a chunk (one slice, at most 1024 x
    1024) at a time and written with the pyramid by dask's synchronous scheduler (one thread: the
    workspace's readers are not shared across threads), so memory is a few chunks, not the stack.
    """
    import dask
    import dask.array as da

    info = ws.dataset(dataset)
    images = ws.read_images(dataset)
    labeled = ws.labeled_slices(dataset)
    kwargs: dict[str, Any] = {"class_names": list(info.class_names), "name": dataset, "labeled_slices": labeled}
    kwargs["progress"] = progress
    partial = _sparse(info) or 0 < len(labeled) < info.shape[0]
    if partial:  # strokes, or slices without a mask: both are 255 ('not labeled'), never 0 (background)
        kwargs["unlabeled_value"] = UNLABELED
    pred_masks = load_prediction(ws, dataset, prediction)[0] if prediction else None
    shape, dtype = tuple(images.shape), images.dtype
    labeled_set = set(labeled)

    def planes(read: Callable[[int], np.ndarray | None], dtype: Any = np.uint8, fill: int = 0) -> Any:
        def one(z: int) -> np.ndarray:
            plane = read(z)
            return np.full(shape[1:], fill, dtype) if plane is None else np.asarray(plane, dtype)

        return da.stack([da.from_delayed(dask.delayed(one)(z), shape=shape[1:], dtype=dtype) for z in range(shape[0])])

    if isinstance(images, Volume):  # read where it is: a chunk of the volume at a time
        images = da.from_array(images, chunks=images.chunks, asarray=True, fancy=False)
    else:  # a slice at a time from a memory map opened for it, so the stack never stays mapped (RSS)
        images = planes(lambda z: ws.read_slice(dataset, z), dtype)

    empty = UNLABELED if partial else 0
    labels = planes(lambda z: ws.read_mask(dataset, z) if z in labeled_set else None, fill=empty) if labeled else None
    if pred_masks is not None:
        n = pred_masks.shape[0]
        kwargs["extra_labels"] = {f"prediction_{prediction}": planes(lambda z: pred_masks[z] if z < n else None)}
    with dask.config.set(scheduler="synchronous"):
        return _write_omezarr_out(ws, dataset, images, labels, out, kwargs)


def _write_omezarr_out(
    ws: Any, dataset: str, images: Any, labels: Any, out: str | Path | BinaryIO, kwargs: dict[str, Any]
) -> Path | None:
    px = ws.pixel_size(dataset)
    if px is not None:
        kwargs["pixel_size"] = (px.z, px.y, px.x)
        kwargs["unit"] = px.unit
    if isinstance(out, (str, Path)) and Path(out).suffix.lower() != ".zip":
        return write_omezarr(out, images, labels, **kwargs)
    with tempfile.TemporaryDirectory(prefix="segdash-omezarr-") as tmp:
        folder = write_omezarr(Path(tmp) / f"{dataset}.zarr", images, labels, **kwargs)
        if isinstance(out, (str, Path)):
            return atomic_write(out, lambda fh: zip_folder(folder, fh))
        zip_folder(folder, out)
        return None


#: what :func:`export_prediction` writes, by ``fmt``: the end of the suggested file name
PREDICTION_FORMATS = {"zip": "masks.zip", "tiff": "masks.tif", "prob-tiff": "prob.tif", "csv": "metrics.csv"}


def scores_csv(rows: list[dict[str, Any]]) -> bytes:
    """Rows (e.g. :func:`~core.workflow.review.per_slice_scores`) as CSV; list values (per-class
    scores) as JSON lists in one cell, ``None`` as an empty cell, text that a spreadsheet would run
    as a formula (a slice named ``=HYPERLINK(...)``) escaped (:mod:`core.data.csvcells`)."""
    if not rows:
        return b""
    buf = io.StringIO()
    fields = list(rows[0])
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        cells = {k: json.dumps(v) if isinstance(v, (list, tuple)) else ("" if v is None else v) for k, v in r.items()}
        writer.writerow(safe_row(cells))
    return buf.getvalue().encode()


def export_prediction(ws: Workspace, dataset: str, run_id: str, fmt: str, out: str | Path | BinaryIO) -> None:
    """A stored prediction of ``dataset``: its masks as a ZIP of PNGs (``fmt="zip"``) or one multipage
    TIFF (``"tiff"``), named by the source slices; its probabilities as a TIFF (``"prob-tiff"``);
    or its per-slice scores against the ground-truth masks as CSV (``"csv"``; refused when no slice
    has a labeled or edited mask).

    Both TIFFs are ImageJ hyperstacks with the slice names as labels and the dataset's pixel size:
    masks (Z, Y, X); probabilities as stored (x 255 in uint8, see
    :mod:`core.predict.probabilities`): (Z, Y, X) P(class 1) for a binary model, (Z, K, Y, X)
    (axes ZCYX, one channel per class) otherwise. Written slice by slice.
    """
    if fmt not in PREDICTION_FORMATS:
        raise SegDashError(f"prediction export format must be one of {', '.join(PREDICTION_FORMATS)}, got {fmt!r}")
    if fmt == "csv":
        rows = per_slice_scores(ws, dataset, run_id)
        if not rows:
            raise SegDashError("no slice with a labeled or edited mask to score the prediction against")
        data = scores_csv(rows)
        _sink(out, lambda fh: fh.write(data))
        return
    info = ws.dataset(dataset)
    masks, probs, summary = load_prediction(ws, dataset, run_id)
    names = list(info.slice_names[: masks.shape[0]])
    about = {"dataset": dataset, "run_id": run_id, "class_names": list(info.class_names)}
    if fmt == "zip":
        export_labels_zip(names, (masks[z] for z in range(len(names))), info.n_classes, out)
    elif fmt == "tiff":
        export_labels_tiff(
            names,
            (masks[z] for z in range(len(names))),
            tuple(masks.shape),
            info.n_classes,
            out,
            info=about,
            pixel_size=ws.pixel_size(dataset),
        )
    else:
        if probs is None:
            raise SegDashError(f"prediction {run_id!r} of dataset {dataset!r} kept no probabilities")
        names = list(info.slice_names[: probs.shape[0]])
        meta = {**about, "segdash": "prob", "classes": info.n_classes, "scale": float(summary.get("prob_scale", 255.0))}
        channels = None if probs.ndim == 3 else [f"P({c})" for c in info.class_names]
        px = ws.pixel_size(dataset)

        def write(fh: BinaryIO) -> None:
            with HyperstackWriter(fh, meta, names, channel_names=channels, pixel_size=px, nbytes=probs.nbytes) as w:
                for z in range(len(names)):
                    w.write(np.asarray(probs[z], np.float32 if probs.dtype == np.float16 else probs.dtype))

        _sink(out, write)
