"""The Measure step: objects of a dataset's masks, of a stored prediction or of a ``core predict``
output, their measurements, and how far the model's measurements can be trusted.

:func:`measure` reads a source and hands it to :func:`core.measure.tables.measure_masks`;
:func:`trust` compares a stored prediction's objects with human truth on the slices its model never
trained on (the split stored with the model: test slices, else validation slices). The Measure
page and ``python -m core measure`` call these two.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.masks import UNLABELED
from ..data.pixelsize import PixelSize, normalize_unit
from ..errors import SegDashError
from ..measure.tables import Measurement, measure_masks
from ..measure.trust import trust_figures, trust_sentence

__all__ = [
    "Source",
    "measure",
    "trust",
    "compare_with_truth",
    "Trust",
    "parse_pixel_size",
    "load_source",
    "object_view",
    "downloads",
    "write_labels_zarr",
    "set_pixel_size",
    "UNITS",
]


@dataclass(frozen=True)
class Source:
    """What to measure: ``kind`` ``"masks"`` (the dataset's saved masks), ``"prediction"`` (stored
    prediction ``ref``) or ``"file"`` (a masks TIFF or Zarr written by ``core predict``, path ``ref``)."""

    kind: str = "masks"
    ref: str = ""

    def describe(self) -> str:
        return {"masks": "saved masks", "prediction": f"prediction {self.ref}"}.get(self.kind, Path(self.ref).name)


@dataclass
class Trust:
    """A prediction's objects against human truth: ``part`` (``test`` or ``validation``), the
    slices compared, the figures per class (:func:`~core.measure.trust.trust_figures`), the sentence."""

    part: str
    zs: list[int]
    rows: list[dict[str, Any]] = field(default_factory=list)
    sentence: str = ""
    notes: list[str] = field(default_factory=list)


class _Slices:
    """A (Z, Y, X) stack read a slice at a time: ``stack[i]`` calls ``get(i)``."""

    ndim = 3

    def __init__(self, get: Any, n: int, shape: tuple[int, ...]):
        self._get, self.shape = get, (int(n), *(int(v) for v in shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        if not isinstance(i, (int, np.integer)):
            raise TypeError("a stack read slice by slice takes one slice index")
        return np.asarray(self._get(int(i)))


def parse_pixel_size(text: str) -> PixelSize:
    """``"0.005,0.005,0.005,um"`` (z, y, x, unit) or ``"0.5,um"`` (square pixels, z step 1) as a PixelSize."""
    parts = [p.strip() for p in str(text).split(",")]
    unit = normalize_unit(parts[-1]) if parts else None
    try:
        nums = [float(p) for p in parts[:-1]]
    except ValueError:
        nums = []
    if unit is None or len(nums) not in (1, 3) or not all(n > 0 and np.isfinite(n) for n in nums):
        raise SegDashError(f"pixel size {text!r}: give Z,Y,X,UNIT (e.g. 0.05,0.005,0.005,um) or SIZE,UNIT")
    return PixelSize(1.0, nums[0], nums[0], unit) if len(nums) == 1 else PixelSize(*nums, unit)


#: the units the Data page offers for a pixel size (``--pixel-size`` takes any :mod:`~core.data.pixelsize` unit)
UNITS = ("nanometer", "micrometer", "millimeter")


def set_pixel_size(ws: Any, dataset: str, px: PixelSize) -> PixelSize:
    """Store ``dataset``'s pixel size (Data page, ``import --pixel-size``); refuses sizes that are not
    positive numbers and units it does not know."""
    ws.dataset(dataset)  # an unknown dataset is refused in words
    unit = normalize_unit(px.unit)
    sizes = (px.z, px.y, px.x)
    if unit is None or not all(isinstance(v, (int, float)) and np.isfinite(v) and v > 0 for v in sizes):
        raise SegDashError(f"pixel size {px.describe()}: sizes must be positive numbers in a known unit")
    ws.set_pixel_size(dataset, *(float(v) for v in sizes), unit)
    return PixelSize(*(float(v) for v in sizes), unit)


def load_source(ws: Any, dataset: str, source: Source) -> tuple[Any, list[int], Any, list[str]]:
    """``(masks (Z', Y, X), zs, probability or None, notes)`` of ``source`` for ``dataset``."""
    info = ws.dataset(dataset)
    if source.kind == "masks":
        zs = ws.labeled_slices(dataset)
        if not zs:
            raise SegDashError(f"dataset {dataset!r} has no saved masks to measure")
        return _Slices(lambda i: ws.read_mask(dataset, zs[i]), len(zs), info.shape[1:]), zs, None, []
    if source.kind == "prediction":
        from ..predict.stored import load_prediction

        masks, probs, summary = load_prediction(ws, dataset, source.ref)
        prob = probs if probs is not None and probs.ndim == 3 else None
        notes = ["the prediction was cancelled: only its predicted slices are measured"] if summary.cancelled else []
        return masks, list(range(masks.shape[0])), prob, notes
    if source.kind == "file":
        path = Path(source.ref)
        if path.is_dir():
            from ..data.chunked import open_volume

            try:
                masks = open_volume(path)
            except (OSError, ValueError, KeyError) as exc:
                raise SegDashError(f"{path.name}: cannot read it as a Zarr masks volume ({exc})") from None
        else:
            from ..predict.probabilities import read_prediction_tiff

            masks = read_prediction_tiff(path)
            if masks.ndim != 3:
                raise SegDashError(f"{path.name}: a masks file is (Z, Y, X) class indices, got shape {masks.shape}")
        if tuple(masks.shape[1:]) != tuple(info.shape[1:]) or masks.shape[0] > info.shape[0]:
            raise SegDashError(f"{path.name}: shape {tuple(masks.shape)} does not fit dataset {dataset!r} {info.shape}")
        if np.issubdtype(np.dtype(masks.dtype), np.floating):
            raise SegDashError(f"{path.name}: holds {masks.dtype} values; measure class indices (a masks file)")
        return masks, list(range(masks.shape[0])), None, []
    raise SegDashError(f"unknown source {source.kind!r}")


def measure(
    ws: Any,
    dataset: str,
    source: Source = Source(),
    *,
    mode: str = "2d",
    split: bool = False,
    min_distance: int = 5,
    connectivity: int | None = None,
    pixel_size: PixelSize | None = None,
    intensities: bool = True,
    keep_labels: bool = True,
    block: int | None = None,
) -> Measurement:
    """Objects of ``source`` and their measurements (intensities on the dataset's raw images).

    ``pixel_size``: overrides the dataset's (``None``: the dataset's, when known). Masks and images
    are read a slice at a time; ``keep_labels=False`` (2D) keeps no label image either, so the
    memory does not grow with the depth; ``block`` (3D) does the same for 3D objects, ``block``
    slices at a time (:mod:`core.measure.blocks`).
    """
    info = ws.dataset(dataset)
    masks, zs, prob, notes = load_source(ws, dataset, source)
    if mode == "3d" and zs != list(range(zs[0], zs[0] + len(zs))):
        raise SegDashError(
            f"3D objects need consecutive slices; the masks of {dataset!r} skip some between {zs[0]} and "
            f"{zs[-1]}: measure per slice (2D), or label the slices between"
        )
    image = None
    if intensities:
        stack = ws.read_images(dataset)
        image = _Slices(lambda i: stack[zs[i]], len(zs), info.shape[1:])
    px = pixel_size or ws.pixel_size(dataset)
    kw = {"mode": mode, "split": split, "min_distance": min_distance, "connectivity": connectivity, "zs": zs}
    kw.update(probability=prob, pixel_size=px, keep_labels=keep_labels, block=block)
    result = measure_masks(masks, image, list(info.class_names), **kw)
    result.notes[:0] = notes
    return result


def trust(
    ws: Any,
    dataset: str,
    run: str,
    *,
    mode: str = "2d",
    split: bool = False,
    min_distance: int = 5,
    connectivity: int | None = None,
) -> Trust:
    """Stored prediction ``run`` against human truth on its model's test slices (else validation)."""
    from ..predict.stored import load_prediction

    masks, probs, summary = load_prediction(ws, dataset, run)
    kw = {"mode": mode, "split": split, "min_distance": min_distance, "connectivity": connectivity}
    return compare_with_truth(ws, dataset, masks, summary.split or {}, probs=probs, **kw)


def compare_with_truth(
    ws: Any,
    dataset: str,
    masks: Any,
    parts: dict[str, Any],
    *,
    probs: Any = None,
    mode: str = "2d",
    split: bool = False,
    min_distance: int = 5,
    connectivity: int | None = None,
) -> Trust:
    """Predicted ``masks`` ((Z, Y, X) class indices of ``dataset``, read ``masks[z]``) against human
    truth on the held-out slices of the model's split ``parts`` (``test``, else ``val``)."""
    part, zs = ("test", list(parts.get("test") or []))
    if not zs:
        part, zs = ("validation", list(parts.get("val") or []))
    if not zs:
        return Trust("", [], notes=["the model stored no test or validation slices: nothing to compare with"])
    labeled = set(ws.labeled_slices(dataset))
    notes = [] if all(z in labeled for z in zs) else [f"{part} slices without a mask are left out"]
    zs = sorted(z for z in zs if z < masks.shape[0] and z in labeled)
    truths, _ = ws.read_truths(dataset, zs) if zs else ([], [])
    keep = [i for i, t in enumerate(truths) if not (t == UNLABELED).any()]
    if len(keep) < len(zs):
        notes.append(f"{len(zs) - len(keep)} {part} slices with pixels nobody labeled are left out")
    if not keep:
        return Trust(part, [], notes=[*notes, f"no {part} slice has a complete human mask"])
    zs = [zs[i] for i in keep]
    truth = np.stack([truths[i] for i in keep])
    pred = np.stack([np.asarray(masks[z]) for z in zs])
    if mode == "3d" and zs != list(range(zs[0], zs[0] + len(zs))):
        notes.append(f"the {part} slices are not consecutive: objects compared per slice (2D)")
        mode = "2d"
    prob = None
    if split and probs is not None and probs.ndim == 3:
        prob = np.stack([np.asarray(probs[z]) for z in zs])
    names = list(ws.dataset(dataset).class_names)
    kw = {"mode": mode, "split": split, "min_distance": min_distance, "connectivity": connectivity, "zs": zs}
    t = measure_masks(truth, None, names, **kw)
    p = measure_masks(pred, None, names, probability=prob, **kw)
    rows = trust_figures(t, p)
    return Trust(part, zs, rows, trust_sentence(rows, f"held-out {part}"), notes)


def object_view(ws: Any, dataset: str, result: Measurement, obj: int, pad: int = 24) -> tuple[np.ndarray, int]:
    """Object ``obj`` (the ``object`` column) outlined in red on its slice (its centre slice in 3D):
    ``(RGB crop around it, z)``."""
    from skimage.segmentation import find_boundaries

    rows = result.objects[result.objects["object"] == int(obj)]
    if not len(rows):
        raise SegDashError(f"no object {obj} in this table")
    row = rows.iloc[0]
    z = int(row["z"])
    if z not in result.zs:
        raise SegDashError(f"slice {z} was not measured")
    h, w = result.labels.shape[1:]
    y0, x0 = max(0, int(row["bbox_y0"]) - pad), max(0, int(row["bbox_x0"]) - pad)
    y1, x1 = min(h, int(row["bbox_y1"]) + pad), min(w, int(row["bbox_x1"]) + pad)
    mine = result.labels[result.zs.index(z), y0:y1, x0:x1] == int(row["label"])
    img = np.asarray(ws.read_slice(dataset, z)[y0:y1, x0:x1], np.float32)
    lo, hi = np.percentile(img, (1, 99)) if img.size else (0.0, 1.0)
    gray = (np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    rgb[find_boundaries(mine, mode="inner")] = (255, 40, 40)
    return rgb, z


def _measured_images(ws: Any, dataset: str, result: Measurement) -> np.ndarray:
    """The raw images of the slices ``result`` measured, as one (Z', Y, X) array."""
    stack = ws.read_images(dataset)
    return np.stack([np.asarray(stack[z]) for z in result.zs])


def write_labels_zarr(ws: Any, dataset: str, result: Measurement, path: str | Path) -> Path:
    """The instance labels as OME-Zarr labels (``labels/objects``) beside the raw images of the
    measured slices (:func:`core.measure.labels_zarr.write_labels_omezarr`); ``path`` must not exist."""
    from ..measure.labels_zarr import write_labels_omezarr

    if result.labels is None:
        raise SegDashError("this measurement kept no label image (measure again with the label image asked for)")
    return write_labels_omezarr(result, _measured_images(ws, dataset, result), path)


def downloads(
    result: Measurement, stem: str, ws: Any = None, dataset: str | None = None
) -> dict[str, tuple[bytes, str, str]]:
    """The measurement as files: ``{label: (data, file name, mime)}`` for CSV, Excel and the label TIFF,
    and, given the workspace and dataset (for the raw images), the OME-Zarr labels as a ZIP."""
    import io
    import tempfile

    from ..data.omezarr import zip_folder
    from ..measure.tables import table_bytes, write_labels

    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    files = {
        "CSV": (table_bytes(result, ".csv"), f"{stem}_objects.csv", "text/csv"),
        "Excel": (table_bytes(result, ".xlsx"), f"{stem}_objects.xlsx", xlsx),
        "Label TIFF": (bytes(write_labels(result)), f"{stem}_labels.tif", "image/tiff"),
    }
    if ws is not None and dataset is not None:
        with tempfile.TemporaryDirectory(prefix="segdash-labels-") as tmp:
            folder = write_labels_zarr(ws, dataset, result, Path(tmp) / f"{stem}_labels.ome.zarr")
            buf = io.BytesIO()
            zip_folder(folder, buf)
        files["OME-Zarr labels"] = (buf.getvalue(), f"{stem}_labels.ome.zarr.zip", "application/zip")
    return files
