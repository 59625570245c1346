"""OME-Zarr: a dataset's images with its masks as a labels image, for napari, Fiji (MoBIE, BigDataViewer)
and QuPath, and OME-Zarr images read on import.

Written as OME-NGFF 0.4 (Zarr format 2), the version most viewers read: the image at the root
(axes ``z, y, x``, a multiscale pyramid halved in y and x while a level keeps at least 128 pixels),
the masks as ``labels/masks`` (uint8 class indices, 0 = background, the class names as
``image-label`` properties, a colour for every value, ``source`` pointing at the image), the
physical pixel size as the axes' scale when known. Every level is chunked one slice deep and at
most 1024 x 1024 (:data:`CHUNK_SIDE`), and the pyramid is built one level, a chunk at a time
(:mod:`core.data.pyramid`), so writing takes a few chunks of memory and reading one slice back
reads only that slice's chunks.

What SegDash needs to read its masks back (:func:`labels_manifest`; the importer uses it): slices
without a mask are not in ``labeled_slices`` (they are listed in ``unlabeled_slices``; a dataset
export writes them as 255, see :func:`core.workflow.export.export_dataset_omezarr`); pixels not
labeled are 255 (``unlabeled_value``, also a ``not labeled`` entry of the properties). Both, with
the class names, are in the labels image's ``segdash`` attribute (and the root group's).

Example:
    >>> write_omezarr("cells.zarr", images, labels, class_names=["bg", "cell"])     # doctest: +SKIP
    >>> data, info = read_omezarr("cells.zarr")                                       # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import numpy as np

from ..errors import SegDashError
from .pyramid import CHUNK_SIDE, lazy_stack, write_multiscale

__all__ = [
    "write_omezarr",
    "labels_manifest",
    "CHUNK_SIDE",
    "read_omezarr",
    "read_omezarr_metadata",
    "is_omezarr",
    "zip_folder",
]

NOT_LABELED_NAME = "not labeled"
_PALETTE = [(255, 60, 60), (60, 200, 255), (255, 210, 0), (120, 255, 120), (220, 90, 255), (255, 140, 0)]


def _label_metadata(names: Sequence[str], unlabeled_value: int | None) -> dict[str, Any]:
    """``image-label`` colours and properties with the same label values (ome-zarr-models checks it):
    0 transparent, classes 1.. in SegDash's palette, ``unlabeled_value`` (if any) transparent."""
    colors = [{"label-value": 0, "rgba": [0, 0, 0, 0]}]
    colors += [{"label-value": k, "rgba": [*_PALETTE[(k - 1) % len(_PALETTE)], 255]} for k in range(1, len(names))]
    properties = [{"label-value": k, "class": n} for k, n in enumerate(names)]
    if unlabeled_value is not None:
        colors.append({"label-value": int(unlabeled_value), "rgba": [0, 0, 0, 0]})
        properties.append({"label-value": int(unlabeled_value), "class": NOT_LABELED_NAME})
    return {"colors": colors, "properties": properties, "source": {"image": "../../"}}


def write_omezarr(
    path: str | Path,
    images: Any,
    labels: Any = None,
    *,
    class_names: Sequence[str] = (),
    name: str = "image",
    labeled_slices: Sequence[int] | None = None,
    unlabeled_value: int | None = None,
    pixel_size: Sequence[float] | None = None,
    unit: str = "micrometer",
    extra_labels: dict[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Path:
    """Write a (Z, Y, X) image and its (Z, Y, X) class-index labels as an OME-Zarr folder.

    Args:
        path: the ``.zarr`` folder to create; must not exist (written under a temporary name, then
            renamed, so a failure leaves nothing half-written).
        images: (Z, Y, X) stack in its stored dtype (numpy, a memory map, or a dask array): read, reduced
            and written one chunk at a time by dask's scheduler of the moment.
        labels: (Z, Y, X) uint8 class indices (numpy or dask), or ``None`` for the image alone.
        class_names: one name per class index (0 is the background).
        name: the image's name in the metadata.
        labeled_slices: slices whose labels are real masks (the others are not labeled: give them
            as ``unlabeled_value`` so that no viewer reads them as background).
        unlabeled_value: the value of not-labeled pixels in partial masks (255), or ``None`` when
            every labeled slice is labeled whole.
        pixel_size: ``(z, y, x)`` physical size of a voxel, or ``None`` when unknown.
        unit: unit of ``pixel_size`` (an OME-NGFF space unit: ``micrometer``, ``nanometer``, ...).
        extra_labels: further (Z, Y, X) class-index images by name (a prediction), written beside
            ``masks`` as ``labels/<name>`` with the same classes.
        progress: ``progress(done, total, stage)``: dask tasks done of each write (stage ``images``,
            ``masks``, or the extra labels' names).

    Returns:
        the folder written.
    """
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_label_metadata

    path = Path(path)
    if path.exists():
        raise SegDashError(f"{path}: already exists; choose a new name or remove it first")
    images = lazy_stack(images)
    extra_labels = dict(extra_labels or {})
    for key, lab in [("masks", labels), *extra_labels.items()]:
        if lab is not None and tuple(np.shape(lab)) != images.shape:
            raise SegDashError(f"labels {key!r} of shape {np.shape(lab)} do not match the images {images.shape}")
    where = {"pixel_size": pixel_size, "unit": unit, "progress": progress}
    labeled = [int(z) for z in (labeled_slices if labeled_slices is not None else range(images.shape[0]))]
    segdash = {
        "class_names": [str(c) for c in class_names],
        "labeled_slices": labeled,
        "unlabeled_slices": sorted(set(range(images.shape[0])) - set(labeled)),
    }
    if unlabeled_value is not None:
        segdash["unlabeled_value"] = int(unlabeled_value)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        write_multiscale(root, images, labels=False, name=name, stage="images", **where)
        for key, lab in [("masks", labels), *extra_labels.items()]:
            if lab is None:
                continue
            group = root.require_group(f"labels/{key}")
            write_multiscale(group, lab, labels=True, name=key, stage=key, **where)
            names = [str(c) for c in class_names] or [f"class {k}" for k in range(_max_label(group) + 1)]
            if key == "masks":
                group.attrs["segdash"] = segdash
            meta = _label_metadata(names, unlabeled_value if key == "masks" else None)
            write_label_metadata(root["labels"], key, fmt=FormatV04(), **meta)  # after: it adds to the attributes
        root.attrs["segdash"] = segdash
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _max_label(group: Any) -> int:
    """The largest value of a labels image as written (its full level, a chunk at a time)."""
    import dask.array as da

    return int(da.from_zarr(group["s0"]).max().compute())


def labels_manifest(path: str | Path) -> dict[str, Any]:
    """What SegDash's OME-Zarr export recorded about a labels image (``X.zarr/labels/masks``), for the
    importer: ``class_names``, ``labeled_slices`` (the others have no mask) and ``unlabeled_value``
    (not-labeled pixels of partial masks), as far as known; ``{}`` for anything else (a labels image
    from another tool, a TIFF). Exports older than the labels image's own ``segdash`` attribute
    recorded it on the image group two levels up."""
    if not isinstance(path, (str, Path)) or not Path(path).is_dir() or "image-label" not in _attrs(Path(path)):
        return {}
    path = Path(path)
    meta = _attrs(path).get("segdash")
    if not isinstance(meta, dict) and path.parent.name == "labels":
        meta = _attrs(path.parent.parent).get("segdash")
    if not isinstance(meta, dict):
        return {}
    out: dict[str, Any] = {}
    names = meta.get("class_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        out["class_names"] = names
    zs = meta.get("labeled_slices")
    if isinstance(zs, list) and all(isinstance(z, int) and not isinstance(z, bool) for z in zs):
        out["labeled_slices"] = zs
    value = meta.get("unlabeled_value")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 255:
        out["unlabeled_value"] = value
    return out


def zip_folder(folder: str | Path, fh: BinaryIO) -> None:
    """Write ``folder`` (with its own name as the top folder) into the open binary file ``fh`` as a ZIP."""
    folder = Path(folder)
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{folder.name}/{p.relative_to(folder).as_posix()}")


def _attrs(path: Path) -> dict[str, Any]:
    """The group attributes of a Zarr folder (v2 ``.zattrs`` or v3 ``zarr.json``; OME 0.5 under ``ome``)."""
    import json

    for meta in (path / ".zattrs", path / "zarr.json"):
        if meta.is_file():
            try:
                attrs = json.loads(meta.read_text())
            except (OSError, ValueError):
                return {}
            if not isinstance(attrs, dict):
                return {}
            attrs = attrs.get("attributes", attrs) if meta.name == "zarr.json" else attrs
            return attrs.get("ome", attrs) if isinstance(attrs, dict) else {}
    return {}


def is_omezarr(path: str | Path) -> bool:
    """True for a folder holding an OME-Zarr image (``.zattrs`` or ``zarr.json`` with ``multiscales``)."""
    path = Path(path)
    return path.is_dir() and bool(_attrs(path).get("multiscales"))


def read_omezarr_metadata(path: str | Path) -> dict[str, Any]:
    """Axes, pixel size ``(z, y, x)`` (or ``None``) and unit of an OME-Zarr image, from its metadata only."""
    ms = (_attrs(Path(path)).get("multiscales") or [{}])[0]
    axes_meta = ms.get("axes") or []
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    scale = None
    datasets = ms.get("datasets") or [{}]
    for t in datasets[0].get("coordinateTransformations") or []:
        if isinstance(t, dict) and t.get("type") == "scale":
            scale = [float(v) for v in t.get("scale", [])]
    pixel_size = None
    if scale and len(scale) == len(axes):
        by_axis = dict(zip(axes, scale))
        pixel_size = tuple(by_axis.get(a, 1.0) for a in ("z", "y", "x"))
    units = [a.get("unit") for a in axes_meta if isinstance(a, dict) and a.get("name") in ("y", "x")]
    return {"axes": axes, "pixel_size": pixel_size, "unit": units[0] if units else None}


def read_omezarr(
    path: str | Path, *, channel: int | None = None, max_bytes: int | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """The full-resolution image of an OME-Zarr folder as a (Z, Y, X) array.

    Args:
        path: the ``.zarr`` folder (or a labels image inside one, such as ``x.zarr/labels/masks``).
        channel: channel to keep when the image has a ``c`` axis of several channels.
        max_bytes: refuse an image larger than this, before reading it.

    Returns:
        ``(data, info)``: ``info`` has ``axes`` (as stored), ``pixel_size`` (``(z, y, x)`` or
        ``None``), ``unit``, ``labels`` (names of the labels images beside it).

    Raises:
        ValueError: not OME-Zarr, a time axis of several points, several channels without
            ``channel``, or a channel out of range.
    """
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Multiscales, Reader

    path = Path(path)
    logging.getLogger("ome_zarr").setLevel(logging.ERROR)  # "version mismatch" notes on every 0.4 file
    loc = parse_url(str(path)) if is_omezarr(path) else None
    if loc is None:
        raise SegDashError(f"{path}: not an OME-Zarr image (no multiscales metadata)")
    nodes = list(Reader(loc)())
    images = [n for n in nodes if n.load(Multiscales) is not None]
    # the node at ``path`` itself: a labels image's ``source`` brings its parent image into the nodes too
    node = next((n for n in images if n.zarr.path == loc.path), images[0] if images else None)
    if node is None or not node.data:
        raise SegDashError(f"{path}: the OME-Zarr holds no image")
    axes_meta = node.metadata.get("axes") or [{"name": a} for a in "tczyx"[-node.data[0].ndim :]]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in axes_meta]
    arr = node.data[0]
    label_names = [str(n) for n in (node.metadata.get("labels") or [])]
    if not label_names and (path / "labels").is_dir():
        label_names = sorted(p.name for p in (path / "labels").iterdir() if p.is_dir())
    picked = axis_index(path, axes, arr.shape, channel, "stack")
    index: list[Any] = [slice(None) if i is None else i for i in picked]
    kept = [ax for ax, i in zip(axes, picked) if i is None]
    view = arr[tuple(index)]
    if max_bytes is not None and view.nbytes > max_bytes:
        raise SegDashError(
            f"{path}: the image needs {view.nbytes / 1e9:.1f} GB, more than the import's memory budget "
            f"({max_bytes / 1e9:.1f} GB; SEGDASH_IMPORT_MEMORY sets it)"
        )
    data = np.asarray(view)
    if data.ndim == 2:
        data, kept = data[None], ["z", *kept]
    if data.ndim != 3:
        raise SegDashError(f"{path}: axes {axes} do not make a (Z, Y, X) stack")
    meta = read_omezarr_metadata(path)
    return data, {"axes": axes, "pixel_size": meta["pixel_size"], "unit": meta["unit"], "labels": label_names}


def axis_index(
    path: Path, axes: Sequence[str], shape: Sequence[int], channel: int | None, what: str
) -> list[int | None]:
    """Per axis of an OME-Zarr / Zarr array (axis names t, c, z, y, x): the index that reads one
    ``what`` (``stack``, ``volume``) from it: ``0`` for the single time point, the ``channel`` for
    ``c``, ``None`` for a spatial axis kept. Refuses several time points, an unknown axis, and a
    channel out of range; several channels without ``channel`` is :class:`ChannelChoiceNeeded`."""
    index: list[int | None] = []
    for ax, n in zip(axes, shape):
        if ax == "t":
            if n > 1:
                raise SegDashError(f"{path}: {n} time points; SegDash reads one (Z, Y, X) {what}")
            index.append(0)
        elif ax == "c":
            if n > 1 and channel is None:
                from .limits import ChannelChoiceNeeded

                raise ChannelChoiceNeeded(path.name, int(n))
            c = 0 if channel is None else int(channel)
            if not 0 <= c < n:
                raise SegDashError(f"{path}: channel {c} asked for, the image has {n}")
            index.append(c)
        elif ax in ("z", "y", "x"):
            index.append(None)
        else:
            raise SegDashError(f"{path}: axis {ax!r} is not one of t, c, z, y, x")
    return index
