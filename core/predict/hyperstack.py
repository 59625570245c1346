"""Prediction TIFFs as ImageJ hyperstacks, written page by page (numpy and tifffile only, no torch).

Masks and binary probabilities are (Z, Y, X) stacks (axes ZYX), K-class probabilities (Z, K, Y, X)
hyperstacks (axes ZCYX), so Fiji opens them with a slice and a channel slider. Each file carries:

- the slice labels (ImageJ ``Labels``): the source slice names, one per plane (``"<name> <class>"``
  for the planes of a K-class probability map);
- the pixel size when known (``resolution`` and ImageJ's ``unit`` and ``spacing``);
- the ImageJ ``Info`` property as JSON: ``segdash`` (``"masks"`` or ``"prob"``), ``classes`` (K),
  ``class_names``, ``slice_names`` and, for probabilities, ``scale`` (the stored value meaning
  probability 1), which :func:`read_info` gives back.

Pages go to the file as they come (tifffile's contiguous mode rewrites the ImageJ description with
the final number of slices on close), so memory stays at one slice whatever the depth. A file over
2 GiB is a BigTIFF, which ImageJ's format does not allow, and ImageJ holds no float16: such a file
is a plain page stack with the same ``Info`` values in tifffile's own metadata (Fiji opens it with
Bio-Formats; :func:`core.workflow.export.export_prediction` writes float16 probabilities as float32).
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import numpy as np
import tifffile

from ..data.pixelsize import PixelSize, imagej_tags

__all__ = ["HyperstackWriter", "read_info", "BIGTIFF_BYTES", "IMAGEJ_DTYPES"]

BIGTIFF_BYTES = 2**31  # beyond this a classic TIFF's 32-bit offsets are too tight
IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))  # what ImageJ stacks hold


class HyperstackWriter:
    """Append equal-shaped pages, (Y, X) or (C, Y, X), to one TIFF (a path or an open binary file).

    Args:
        target: file path or open binary file, written from its start.
        info: JSON values for the ``Info`` property (``segdash``, ``classes``, ...).
        names: one name per slice (Z): the slice labels; the planes of (C, Y, X) pages are labelled
            ``"<name> <channel name>"``.
        channel_names: C names for (C, Y, X) pages; ``None`` for (Y, X) pages.
        pixel_size: the stack's calibration, when known.
        nbytes: the expected size of the data: over :data:`BIGTIFF_BYTES` the file is a plain BigTIFF.

    Example:
        >>> import io
        >>> buf = io.BytesIO()
        >>> with HyperstackWriter(buf, {"segdash": "masks", "classes": 2}, ["a", "b"]) as w:
        ...     for z in range(2):
        ...         w.write(np.zeros((4, 5), np.uint8))
        >>> tifffile.TiffFile(io.BytesIO(buf.getvalue())).imagej_metadata["Labels"]
        ['a', 'b']
    """

    def __init__(
        self,
        target: Any,
        info: dict[str, Any],
        names: Sequence[str],
        *,
        channel_names: Sequence[str] | None = None,
        pixel_size: PixelSize | None = None,
        nbytes: int = 0,
    ):
        names = [str(n) for n in names]
        self.channels = None if channel_names is None else len(channel_names)
        self.labels = names if channel_names is None else [f"{n} {c}" for n in names for c in channel_names]
        self.info = {**info, "slice_names": names}
        self.calibration = imagej_tags(pixel_size)
        self.target, self.nbytes = target, nbytes
        self.tw: tifffile.TiffWriter | None = None

    def _open(self, dtype: np.dtype) -> None:
        """Open the TIFF on the first page: ImageJ unless it is too big or of a type ImageJ lacks."""
        self.imagej = self.nbytes <= BIGTIFF_BYTES and dtype in IMAGEJ_DTYPES
        if self.imagej:
            self.resolution = self.calibration.get("resolution")
            self.metadata: dict[str, Any] = {
                "Labels": self.labels,
                **self.calibration.get("metadata", {}),
                "Info": json.dumps(self.info),
            }
        else:
            self.resolution, self.metadata = None, self.info
        self.tw = tifffile.TiffWriter(self.target, bigtiff=self.nbytes > BIGTIFF_BYTES, imagej=self.imagej)

    def write(self, page: np.ndarray) -> None:
        """Append one slice: (Y, X), or (C, Y, X) when the writer has channel names."""
        page = np.asarray(page)
        if self.tw is None:
            self._open(page.dtype)
        if self.imagej and self.channels is None:
            page = page[None]  # (1, Y, X) pages add up to (Z, 1, Y, X): ImageJ slices, not channels
        self.tw.write(
            page,
            contiguous=True,
            photometric="minisblack",
            metadata=self.metadata,
            resolution=self.resolution,
        )

    def close(self) -> None:
        if self.tw is not None:
            self.tw.close()

    def __enter__(self) -> HyperstackWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_info(tif: tifffile.TiffFile) -> dict[str, Any]:
    """The SegDash values of a prediction TIFF: its ImageJ ``Info`` JSON, or tifffile's metadata
    (BigTIFFs and files written before predictions were ImageJ hyperstacks); ``{}`` if neither."""
    ij = tif.imagej_metadata or {}
    if "Info" in ij:
        try:
            info = json.loads(ij["Info"])
        except ValueError:
            info = None
        if isinstance(info, dict):
            return info
    return dict(tif.shaped_metadata[0]) if tif.shaped_metadata else {}
