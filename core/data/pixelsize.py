"""Physical pixel size of an image source, read from its metadata on import.

Sources that state it: OME-TIFF (``PhysicalSizeX/Y/Z`` and their units), ImageJ TIFF (the X/Y
resolution tags with the ImageJ ``unit``, and ``spacing`` for z), and OME-Zarr (the axes' scale).
Plain TIFF resolution tags without an ImageJ unit are ignored: most writers store a meaningless
72 dpi there. Units are named as OME-NGFF and bioimage.io name them (``micrometer``, ``nanometer``...).

Example:
    >>> import numpy as np, tifffile, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "a.tif")
    >>> tifffile.imwrite(path, np.zeros((2, 8, 8), np.uint8), imagej=True, resolution=(2.0, 2.0),
    ...                  metadata={"unit": "um", "spacing": 3.0})
    >>> pixel_size_of(path)
    PixelSize(z=3.0, y=0.5, x=0.5, unit='micrometer')
"""

from __future__ import annotations

import io
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["PixelSize", "pixel_size_of", "normalize_unit", "tiff_pixel_size", "imagej_tags", "from_manifest"]

_UNITS = {
    "micrometer": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "um": "micrometer",
    "µm": "micrometer",
    "\u03bcm": "micrometer",
    "\\u00b5m": "micrometer",
    "nanometer": "nanometer",
    "nm": "nanometer",
    "millimeter": "millimeter",
    "mm": "millimeter",
    "centimeter": "centimeter",
    "cm": "centimeter",
    "meter": "meter",
    "m": "meter",
    "angstrom": "angstrom",
    "å": "angstrom",
}


class PixelSize(NamedTuple):
    """Physical size of a voxel: ``z`` (slice step; 1.0 when unknown), ``y``, ``x``, and the ``unit``."""

    z: float
    y: float
    x: float
    unit: str

    def describe(self) -> str:
        """``0.5 x 0.5 micrometer (z step 3)``."""
        return f"{self.x:g} x {self.y:g} {self.unit} (z step {self.z:g})"


def normalize_unit(unit: Any) -> str | None:
    """An OME-NGFF unit name for ``unit`` (``"um"``, ``"micron"``, ``"µm"`` -> ``"micrometer"``), or ``None``."""
    if not isinstance(unit, str):
        return None
    return _UNITS.get(unit.strip().lower())


def _positive(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def tiff_pixel_size(tif: Any) -> PixelSize | None:
    """Pixel size of an open ``tifffile.TiffFile`` from its OME or ImageJ metadata, else ``None``."""
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
        except ET.ParseError:
            root = None
        pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None) if root is not None else None
        if pixels is not None:
            x, y = _positive(pixels.get("PhysicalSizeX")), _positive(pixels.get("PhysicalSizeY"))
            if x and y:
                unit = normalize_unit(pixels.get("PhysicalSizeXUnit", "µm"))
                if unit:
                    z = _positive(pixels.get("PhysicalSizeZ")) or 1.0
                    return PixelSize(z, y, x, unit)
    meta = tif.imagej_metadata
    if meta:
        unit = normalize_unit(meta.get("unit"))
        page = tif.pages.first if hasattr(tif.pages, "first") else tif.pages[0]
        tags = page.tags
        xr, yr = tags.get("XResolution"), tags.get("YResolution")
        if unit and xr is not None and yr is not None:
            xs, ys = _per_pixel(xr.value), _per_pixel(yr.value)
            if xs and ys:
                return PixelSize(_positive(meta.get("spacing")) or 1.0, ys, xs, unit)
    return None


def _per_pixel(resolution: Any) -> float | None:
    """Size of a pixel from a TIFF resolution (pixels per unit, as ``(num, den)`` or a number)."""
    if isinstance(resolution, tuple) and len(resolution) == 2:
        num, den = resolution
        if not num or not den:
            return None
        return _positive(den / num)
    r = _positive(resolution)
    return 1.0 / r if r else None


def pixel_size_of(source: Any) -> PixelSize | None:
    """Pixel size of an import source (a TIFF path, bytes, upload, OME-Zarr or N5 folder), else ``None``.

    A list of one source is that source; several files, ZIPs and non-TIFF images give ``None``.
    Never raises for unreadable input: the import reports those itself.
    """
    import tifffile

    if isinstance(source, (list, tuple)) and len(source) == 1:
        source = source[0]
    try:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if path.is_dir():
                from .omezarr import is_omezarr, read_omezarr_metadata

                if is_omezarr(path):
                    info = read_omezarr_metadata(path)
                    unit = normalize_unit(info.get("unit"))
                    ps = info.get("pixel_size")
                    return PixelSize(*ps, unit) if ps and unit else None
                from .chunked import n5_pixel_size

                sizes, n5_unit = n5_pixel_size(path)
                unit = normalize_unit(n5_unit)
                return PixelSize(*sizes, unit) if sizes and unit else None
            if path.suffix.lower() not in (".tif", ".tiff"):
                return None
            with tifffile.TiffFile(path) as tif:
                return tiff_pixel_size(tif)
        if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], (bytes, bytearray)):
            name, data = source
        elif hasattr(source, "name") and (hasattr(source, "getvalue") or hasattr(source, "read")):
            name = source.name
            data = source.getvalue() if hasattr(source, "getvalue") else None
            if data is None:
                return None
        else:
            return None
        if Path(str(name)).suffix.lower() not in (".tif", ".tiff"):
            return None
        with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
            return tiff_pixel_size(tif)
    except Exception:  # noqa: BLE001 - metadata is a bonus; the import itself reports unreadable files
        return None


# ImageJ's own spelling of the units it knows (its "unit" property); the rest are written as named
_IMAGEJ_UNITS = {"micrometer": "micron", "nanometer": "nm", "millimeter": "mm", "centimeter": "cm", "meter": "m"}


def imagej_tags(px: PixelSize | None) -> dict[str, Any]:
    """Keyword arguments for ``tifffile.imwrite(..., imagej=True)`` that carry ``px`` to Fiji.

    ``{}`` when the size is unknown; else ``resolution`` (pixels per unit in x and y) and
    ``metadata`` with ImageJ's ``unit`` and ``spacing`` (the z step), which Fiji shows in Image >
    Properties and :func:`tiff_pixel_size` reads back.

    Example:
        >>> imagej_tags(PixelSize(z=3.0, y=0.5, x=0.25, unit="micrometer"))
        {'resolution': (4.0, 2.0), 'metadata': {'unit': 'micron', 'spacing': 3.0}}
    """
    if px is None:
        return {}
    return {
        "resolution": (1.0 / px.x, 1.0 / px.y),
        "metadata": {"unit": _IMAGEJ_UNITS.get(px.unit, px.unit), "spacing": float(px.z)},
    }


def from_manifest(manifest: Any) -> PixelSize | None:
    """The ``pixel_size`` entry (``[z, y, x, unit]``) of a SegDash dataset ZIP's ``segdash.json``, else ``None``.

    Example:
        >>> from_manifest({"pixel_size": [3, 0.5, 0.5, "micrometer"]})
        PixelSize(z=3.0, y=0.5, x=0.5, unit='micrometer')
    """
    entry = manifest.get("pixel_size") if isinstance(manifest, dict) else None
    if not isinstance(entry, (list, tuple)) or len(entry) != 4:
        return None
    z, y, x, unit = _positive(entry[0]), _positive(entry[1]), _positive(entry[2]), normalize_unit(entry[3])
    return PixelSize(z, y, x, unit) if z and y and x and unit else None
