"""A dataset's ``dataset.json``: what the catalog records of it (shape, dtype, class and slice names,
source, notices, the path of a volume read by reference, the pixel size), kept beside its files so
that ``python -m core repair`` (:mod:`core.store.recovery`) rebuilds its catalog entry when the
catalog is lost. Written at import, rewritten when the class names or pixel size change; the catalog stays the
authority while it is there. Without one (a dataset imported before SegDash wrote it) repair
rebuilds what ``images.tif`` and the masks tell.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_meta(folder, created=1.0, shape=(2, 8, 8), dtype="uint8", class_names=["bg", "fg"],
    ...                slice_names=["a", "b"], source="", notices=[], volume=None)
    >>> read_meta(folder)["class_names"]
    ['bg', 'fg']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..data.files import atomic_write
from .layout import DATASET_META

__all__ = ["write_meta", "read_meta", "update_meta"]

FORMAT = "segdash-dataset"


def write_meta(
    folder: Path,
    *,
    created: float,
    shape: Sequence[int],
    dtype: str,
    class_names: Sequence[str],
    slice_names: Sequence[str],
    source: str,
    notices: Sequence[str],
    volume: tuple[str, int | None] | None,
    pixel_size: Sequence[Any] | None = None,
) -> Path:
    """Write ``folder/dataset.json`` (atomically)."""
    record = {
        "format": FORMAT,
        "version": 1,
        "created": float(created),
        "shape": [int(v) for v in shape],
        "dtype": str(dtype),
        "class_names": [str(c) for c in class_names],
        "slice_names": [str(n) for n in slice_names],
        "source": str(source),
        "notices": [str(n) for n in notices],
        "volume": None if volume is None else [str(volume[0]), volume[1]],
        "pixel_size": None if pixel_size is None else list(pixel_size),
    }
    text = json.dumps(record, indent=1)
    return atomic_write(Path(folder) / DATASET_META, lambda fh: fh.write(text.encode()))


def read_meta(folder: Path) -> dict[str, Any] | None:
    """The record of ``folder/dataset.json``, or ``None`` when there is none or it does not read
    as one (repair then rebuilds from the images and masks)."""
    path = Path(folder) / DATASET_META
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    return record


def update_meta(folder: Path, **fields: Any) -> None:
    """Change fields of ``folder/dataset.json``; nothing when there is none."""
    record = read_meta(folder)
    if record is None:
        return
    record.pop("format", None), record.pop("version", None)
    write_meta(folder, **{**record, **fields})
