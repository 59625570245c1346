"""The instance label image as OME-Zarr labels, beside the raw image, for napari and Fiji (MoBIE, BDV).

OME-NGFF 0.4 (Zarr format 2), as the dataset export writes it (:mod:`core.data.omezarr`): the raw
image of the measured slices at the root (axes ``z, y, x``, a pyramid halved in y and x), the
instance labels as ``labels/objects`` (uint32; 0 background, every other value the ``label``
column of the objects table), written a level and a chunk at a time by
:func:`core.data.pyramid.write_multiscale` (nearest downsampling: label values are kept), and
ome-zarr's ``image-label`` metadata: ``source`` pointing at the image and one ``properties`` entry
per object (``label-value``, ``class``, ``object``, ``border``), so a viewer shows which class and
table row a label is. The pixel size, when known, is the axes' scale. The measured slices' stack
indices are in the labels group's ``segdash`` attribute (``zs``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegDashError
from .tables import Measurement

__all__ = ["write_labels_omezarr", "LABELS_NAME"]

LABELS_NAME = "objects"


def _properties(result: Measurement) -> list[dict[str, Any]]:
    """One ``image-label`` properties entry per object, in label order."""
    objects = result.objects
    if not len(objects):
        return []
    rows = objects.sort_values("label")
    return [
        {"label-value": int(lab), "class": str(name), "object": int(obj), "border": bool(border)}
        for lab, name, obj, border in zip(rows["label"], rows["class_name"], rows["object"], rows["border"])
    ]


def write_labels_omezarr(result: Measurement, image: Any, path: str | Path) -> Path:
    """Write ``result``'s instance labels and ``image`` (the raw (Z, Y, X) image of the measured
    slices, numpy or dask) as the OME-Zarr folder ``path`` (must not exist: written under a
    temporary name and renamed, so a failure leaves nothing half-written). Returns the folder."""
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_label_metadata

    from ..data.pyramid import write_multiscale

    if result.labels is None:
        raise SegDashError("this measurement kept no label image (measure again with the label image asked for)")
    path = Path(path)
    if path.exists():
        raise SegDashError(f"{path.name}: already exists; choose a new name or remove it first")
    if tuple(np.shape(image)) != tuple(result.labels.shape):
        raise SegDashError(f"the image {tuple(np.shape(image))} does not match the labels {result.labels.shape}")
    px = result.pixel_size
    where: dict[str, Any] = {"pixel_size": None, "unit": None}
    if px is not None:
        where = {"pixel_size": (px.z, px.y, px.x), "unit": px.unit}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        write_multiscale(root, image, labels=False, name="image", **where)
        group = root.require_group(f"labels/{LABELS_NAME}")
        write_multiscale(group, result.labels, labels=True, name=LABELS_NAME, label_dtype=np.uint32, **where)
        group.attrs["segdash"] = {"zs": [int(z) for z in result.zs], "mode": result.mode, "split": bool(result.split)}
        write_label_metadata(
            root["labels"], LABELS_NAME, fmt=FormatV04(), properties=_properties(result), source={"image": "../../"}
        )
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
