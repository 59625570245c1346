"""Objects of a whole mask stack, measured and summed up per slice and per dataset; written as CSV,
Excel (one sheet per level) and an instance label TIFF.

:func:`measure_masks` is the entry point: class index masks (0 background, 255 not labeled) and the
raw image in, a :class:`Measurement` out. Each foreground class is labeled on its own
(:mod:`~core.measure.objects`); objects are numbered on (in 2D slice after slice, in 3D class after
class), so one instance label image holds every object and the ``label`` column names its pixels there.

Example:
    >>> import numpy as np
    >>> m = np.zeros((1, 20, 20), np.uint8); m[0, 2:6, 2:6] = 1; m[0, 10:15, 10:15] = 1
    >>> r = measure_masks(m, None, ["background", "cell"])
    >>> r.objects["area"].tolist(), r.dataset["count"].tolist()
    ([16.0, 25.0], [2])
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..data.files import atomic_write
from ..data.masks import UNLABELED
from ..data.pixelsize import PixelSize, imagej_tags
from ..errors import SegDashError
from .objects import label_class, split_touching
from .props import add_physical, measure_2d, measure_3d, unit_symbol

__all__ = ["Measurement", "measure_masks", "table_bytes", "write_table", "write_labels"]


@dataclass
class Measurement:
    """What :func:`measure_masks` found.

    Attributes:
        objects: one row per object (``object``, ``class``, ``class_name``, ``label``, ``z`` ...).
        slices: per measured slice and class: ``count``, ``area_fraction``, ``density_per_mpx``
            (objects per million pixels; and per unit^2 when the pixel size is known).
        dataset: per class: ``count``, ``border``, mean size, ``area_fraction``, density.
        labels: (Z, Y, X) uint32 instance labels of the measured slices (``zs``), 0 background;
            ``None`` when not kept (``keep_labels=False``).
        zs: the stack indices of the measured slices; mode, connectivity, split: how.
        notes: what the user should know (slices with not-labeled pixels ...).
    """

    objects: pd.DataFrame
    slices: pd.DataFrame
    dataset: pd.DataFrame
    labels: np.ndarray | None
    zs: list[int]
    mode: str = "2d"
    pixel_size: PixelSize | None = None
    split: bool = False
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Objects per class name."""
        return {str(r["class_name"]): int(r["count"]) for _, r in self.dataset.iterrows()}


def measure_masks(
    masks: np.ndarray,
    image: np.ndarray | None,
    class_names: Sequence[str],
    *,
    mode: str = "2d",
    connectivity: int | None = None,
    split: bool = False,
    min_distance: int = 5,
    probability: np.ndarray | None = None,
    pixel_size: PixelSize | None = None,
    zs: Sequence[int] | None = None,
    keep_labels: bool = True,
    block: int | None = None,
) -> Measurement:
    """Objects of every foreground class of ``masks`` and their measurements.

    Args:
        masks: (Z, Y, X) class indices (255: not labeled, counted as neither object nor background).
        image: the raw (Z, Y, X) image for intensities, or ``None``.
        class_names: one per class (class 0 is the background and is not measured).
        mode: ``"2d"`` per slice, ``"3d"`` through the stack (consecutive sections).
        connectivity: see :func:`~core.measure.objects.structure`.
        split: split touching objects (:func:`~core.measure.objects.split_touching`, ``min_distance``,
            on ``probability`` when given: (Z, Y, X) foreground probability of a binary model).
        pixel_size: adds physical-unit columns; its z step is used in 3D.
        zs: the stack index of each slice of ``masks`` (default 0..Z-1).
        keep_labels: keep the instance label image (``labels``); without it, 2D objects are found
            and measured a slice at a time in memory that does not grow with the depth (``masks``
            and ``image`` may then be anything that gives a slice for ``[i]``: a Zarr volume).
        block: 3D only: label and measure ``block`` slices at a time, objects crossing blocks merged
            (:mod:`~core.measure.blocks`; no label image, no split), in memory that does not grow
            with the depth.
    """
    masks = np.asarray(masks) if not hasattr(masks, "shape") else masks
    if len(masks.shape) == 2:
        masks = masks[None]
    n, h, w = masks.shape
    zs = list(range(n)) if zs is None else [int(z) for z in zs]
    if len(zs) != n:
        raise SegDashError(f"{len(zs)} slice indices for {n} slices")
    if mode == "3d" and n and zs != list(range(zs[0], zs[0] + n)):
        raise SegDashError("3D objects need consecutive slices; measure these per slice (--mode 2d)")
    z_step = 1.0 if pixel_size is None else pixel_size.z / (pixel_size.x * pixel_size.y) ** 0.5
    notes = []
    partial = [zs[i] for i in range(n) if (np.asarray(masks[i]) == UNLABELED).any()]
    if partial:
        notes.append(f"{len(partial)} slices have not-labeled pixels: they count as neither object nor background")
    prob = probability if (split and probability is not None and len(class_names) == 2) else None
    args = (masks, image, class_names, connectivity, split, min_distance, prob, zs)
    if mode == "3d" and block:
        frames, labels = _objects_3d_blocks(masks, image, class_names, connectivity, zs, z_step, int(block)), None
        notes.append(f"measured {block} slices at a time: surface, axes, solidity and sphericity need objects whole")
    elif mode == "3d":
        frames, labels = _objects_3d(*args, z_step)
    else:
        frames, labels = _objects_2d(*args, keep_labels)
    objects = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["class", "class_name", "label"])
    objects.insert(0, "object", np.arange(1, len(objects) + 1))
    objects = add_physical(objects, pixel_size)
    slices = _per_slice(masks, labels, objects, zs, class_names, pixel_size, mode)
    dataset = _per_dataset(masks, objects, class_names, pixel_size, mode)
    return Measurement(objects, slices, dataset, labels, zs, mode, pixel_size, split, notes)


def _tag(df: pd.DataFrame, k: int, name: str, offset: int) -> pd.DataFrame:
    df["label"] = df["label"].astype(np.int64) + offset
    df.insert(0, "class", k)
    df.insert(1, "class_name", name)
    return df


def _objects_2d(masks, image, class_names, connectivity, split, min_distance, prob, zs, keep_labels):
    """Objects slice by slice, numbered slice after slice (class after class within a slice)."""
    n, h, w = masks.shape
    labels = np.zeros((n, h, w), np.uint32) if keep_labels else None
    frames, offset = [], 0
    for i in range(n):
        m = np.asarray(masks[i])
        img = None if image is None else np.asarray(image[i])
        for k in range(1, len(class_names)):
            if not (m == k).any():
                continue
            lab = label_class(m == k, "2d", connectivity)
            if split:
                p = None if prob is None else np.asarray(prob[i])[None]
                lab = split_touching(lab, "2d", min_distance, p, connectivity=connectivity)
            df = measure_2d(lab[0], img, zs[i])
            if df.empty:
                continue
            if labels is not None:
                np.add(lab[0].view(np.uint32), np.uint32(offset), out=labels[i], where=lab[0] > 0)
            frames.append(_tag(df, k, class_names[k], offset))
            offset = int(frames[-1]["label"].max())
    return frames, labels


def _objects_3d_blocks(masks, image, class_names, connectivity, zs, z_step, block):
    from .blocks import objects_3d_blocks

    frames, offset = [], 0
    for k in range(1, len(class_names)):
        df = objects_3d_blocks(masks, image, k, block=block, connectivity=connectivity, z_step=z_step)
        if not df.empty:
            for c in ("z", "z_first", "z_last", "centroid_z"):
                df[c] = df[c] + (zs[0] if zs else 0)
            frames.append(_tag(df, k, class_names[k], offset))
            offset = int(frames[-1]["label"].max())
    return frames


def _objects_3d(masks, image, class_names, connectivity, split, min_distance, prob, zs, z_step):
    """Objects through the stack, numbered class after class; the whole stack in memory."""
    n = masks.shape[0]
    full = masks if isinstance(masks, np.ndarray) else np.stack([np.asarray(masks[i]) for i in range(n)])
    img = (
        None
        if image is None
        else np.asarray(image)
        if isinstance(image, np.ndarray)
        else np.stack([np.asarray(image[i]) for i in range(n)])
    )
    labels, frames, offset = None, [], 0
    for k in range(1, len(class_names)):
        lab = label_class(full == k, "3d", connectivity)
        if split:
            lab = split_touching(lab, "3d", min_distance, prob, (z_step, 1.0, 1.0), connectivity)
        df = measure_3d(lab, img, zs[0] if zs else 0, z_step)
        lab = lab.view(np.uint32)  # labels are >= 0: the same bits, no copy
        if labels is None:
            labels = lab  # the first class's labels are the image (one foreground class: no copy at all)
        elif not df.empty:
            np.add(lab, np.uint32(offset), out=labels, where=lab > 0)
        del lab
        if not df.empty:
            frames.append(_tag(df, k, class_names[k], offset))
            offset = int(frames[-1]["label"].max())
    return frames, labels if labels is not None else np.zeros(full.shape, np.uint32)


def _per_slice(masks, labels, objects, zs, class_names, px, mode) -> pd.DataFrame:
    rows = []
    sym = unit_symbol(px)
    for i, z in enumerate(zs):
        labeled = int((masks[i] != UNLABELED).sum())
        for k in range(1, len(class_names)):
            sel = masks[i] == k
            if mode == "3d":  # a 3D object is on every slice of its range (connected through z)
                on = (objects["z_first"] <= z) & (objects["z_last"] >= z) if len(objects) else []
                count = int((on & (objects["class"] == k)).sum()) if len(objects) else 0
            else:
                count = int(((objects["z"] == z) & (objects["class"] == k)).sum()) if len(objects) else 0
            row = {"z": z, "class": k, "class_name": class_names[k], "count": count, "labeled_pixels": labeled}
            row["area_fraction"] = float(sel.sum()) / labeled if labeled else float("nan")
            row["density_per_mpx"] = count / labeled * 1e6 if labeled else float("nan")
            if sym:
                row[f"density_per_{sym}2"] = count / (labeled * px.x * px.y) if labeled else float("nan")
            rows.append(row)
    return pd.DataFrame(rows)


def _per_dataset(masks, objects, class_names, px, mode) -> pd.DataFrame:
    sym = unit_symbol(px)
    labeled = int(sum(int((masks[i] != UNLABELED).sum()) for i in range(masks.shape[0])))
    size = "volume" if mode == "3d" else "area"
    rows = []
    for k in range(1, len(class_names)):
        mine = objects[objects["class"] == k] if len(objects) else objects
        fg = int(sum(int((masks[i] == k).sum()) for i in range(masks.shape[0])))
        row: dict[str, Any] = {"class": k, "class_name": class_names[k], "count": len(mine)}
        row["border"] = int(mine["border"].sum()) if len(mine) else 0
        row[f"mean_{size}_px"] = float(mine[size].mean()) if len(mine) else float("nan")
        row[f"median_{size}_px"] = float(mine[size].median()) if len(mine) else float("nan")
        row["area_fraction"] = fg / labeled if labeled else float("nan")
        row["density_per_mpx"] = len(mine) / labeled * 1e6 if labeled else float("nan")
        if sym:
            unit_area = px.x * px.y * (px.z if mode == "3d" else 1.0)
            row[f"density_per_{sym}{3 if mode == '3d' else 2}"] = len(mine) / (labeled * unit_area) if labeled else None
        rows.append(row)
    return pd.DataFrame(rows)


def table_bytes(result: Measurement, suffix: str) -> bytes:
    """The objects as CSV (``.csv``) or an Excel workbook with the sheets objects, slices, dataset (``.xlsx``)."""
    suffix = suffix.lower()
    if suffix == ".csv":
        return result.objects.to_csv(index=False).encode()
    if suffix == ".xlsx":
        buf = io.BytesIO()
        with pd.ExcelWriter(buf, engine="openpyxl") as xw:
            for name in ("objects", "slices", "dataset"):
                getattr(result, name).to_excel(xw, sheet_name=name, index=False)
        return buf.getvalue()
    raise SegDashError(f"write objects to a .csv or .xlsx file, not {suffix or 'a file without suffix'}")


def write_table(result: Measurement, out: str | Path) -> Path:
    """``objects.csv`` (the objects) or ``objects.xlsx`` (sheets objects, slices, dataset), atomically."""
    out = Path(out)
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise SegDashError(f"{out.name}: write objects to a .csv or .xlsx file")
    data = table_bytes(result, out.suffix)
    return atomic_write(out, lambda fh: fh.write(data))


def write_labels(result: Measurement, out: str | Path | None = None) -> bytes | Path:
    """The instance label image as an ImageJ TIFF (uint16 when the labels fit, else float32, which
    ImageJ reads exactly up to 2^24 objects), with the pixel size; bytes when ``out`` is ``None``."""
    if result.labels is None:
        raise SegDashError("this measurement kept no label image (measure again with the label image asked for)")
    top = int(result.labels.max()) if result.labels.size else 0
    if top >= 2**24:
        raise SegDashError(f"{top} objects do not fit an ImageJ label TIFF (at most 16,777,215)")
    data = result.labels.astype(np.uint16 if top < 2**16 else np.float32)
    import tifffile

    def _write(fh):
        tifffile.imwrite(fh, data, imagej=True, **imagej_tags(result.pixel_size))

    if out is None:
        buf = io.BytesIO()
        _write(buf)
        return buf.getvalue()
    return atomic_write(out, _write)
