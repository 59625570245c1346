"""The on-disk workspace: datasets (image stack + versioned masks), runs, and the SQLite catalog.

Layout under the root (default ``./workspace``, or the ``SEGDASH_WORKSPACE`` environment variable)::

    catalog.sqlite                      datasets, slices, mask versions, runs, epoch metrics
    datasets/<name>/images.tif          (Z, Y, X) uncompressed TIFF in the original dtype (memory-mapped)
    datasets/<name>/masks/<z>.v<n>.png  version n of slice z's mask: uint8 class indices 0..K-1
    runs/<run_id>/                      checkpoints and bundles of a training run
    predictions/<name>/<run_id>/        predicted masks and probabilities

Mask versions are never overwritten: saving writes a new file (atomically) and records it in the
catalog inside one transaction, so two browser sessions saving at once both keep their work, and
:meth:`Workspace.undo_mask` steps back to the previous version.

Example:
    >>> import numpy as np, tempfile
    >>> ws = Workspace(tempfile.mkdtemp())
    >>> info = ws.create_dataset("demo", np.zeros((2, 8, 8), np.uint8), [None, None], ["a", "b"])
    >>> ws.save_mask("demo", 0, np.ones((8, 8), np.uint8))
    1
    >>> ws.labeled_slices("demo")
    [0]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile

from .catalog import SLICE_STATUSES, Catalog
from .io import read_png, write_png

__all__ = ["Workspace", "DatasetInfo", "SliceInfo", "default_root", "validate_name"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_root() -> Path:
    """The workspace folder: ``$SEGDASH_WORKSPACE`` or ``./workspace``."""
    return Path(os.environ.get("SEGDASH_WORKSPACE") or "workspace").resolve()


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name (letters, digits, ``._-``; 1-64 chars)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"dataset name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalog knows of a dataset.

    Attributes:
        name: dataset name.
        shape: (Z, Y, X) of the image stack.
        dtype: stored pixel type of the images (masks are always uint8 class indices).
        class_names: one name per class index.
        slice_names: one name per slice (file stems, or ``<dataset>_<zzzz>`` for stack slices).
        statuses: per slice, one of ``unlabeled``, ``labeled``, ``edited``, ``from-prediction``.
        notices: what the import converted, as told to the user then.
    """

    name: str
    shape: tuple[int, int, int]
    dtype: str
    class_names: tuple[str, ...]
    slice_names: tuple[str, ...]
    statuses: tuple[str, ...]
    source: str = ""
    notices: tuple[str, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def counts(self) -> dict[str, int]:
        """Number of slices of each status, plus ``slices`` (total)."""
        out = {s: 0 for s in SLICE_STATUSES}
        for s in self.statuses:
            out[s] += 1
        out["slices"] = len(self.statuses)
        return out


@dataclass(frozen=True)
class SliceInfo:
    z: int
    name: str
    status: str
    version: int
    updated: float


class Workspace:
    """A SegDash workspace folder.

    Args:
        root: folder path; default :func:`default_root`. Created when missing.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root is not None else default_root()
        self.root.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.root / "catalog.sqlite")

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return self.root / "datasets" / validate_name(name)

    def images_path(self, name: str) -> Path:
        return self.dataset_dir(name) / "images.tif"

    def run_dir(self, run_id: str) -> Path:
        """Folder of a training run (created)."""
        path = self.root / "runs" / validate_name(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def predictions_dir(self, name: str, run_id: str) -> Path:
        """Folder for predictions of run ``run_id`` on dataset ``name`` (created)."""
        path = self.root / "predictions" / validate_name(name) / validate_name(run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- datasets ----------------------------------------------------------------------------
    def dataset_names(self) -> list[str]:
        return self.catalog.dataset_names()

    def has_dataset(self, name: str) -> bool:
        return self.catalog.dataset_row(name) is not None

    def dataset(self, name: str) -> DatasetInfo:
        """Catalog entry of a dataset; ``ValueError`` if there is none."""
        row = self.catalog.dataset_row(name)
        if row is None:
            known = ", ".join(self.dataset_names()) or "none"
            raise ValueError(f"no dataset named {name!r} (datasets: {known})")
        slices = self.catalog.slices(name)
        return DatasetInfo(
            name=row["name"], shape=(row["n_slices"], row["height"], row["width"]), dtype=row["dtype"],
            class_names=tuple(json.loads(row["class_names"])),
            slice_names=tuple(s["name"] for s in slices), statuses=tuple(s["status"] for s in slices),
            source=row["source"], notices=tuple(json.loads(row["notices"])))

    def slices(self, name: str) -> list[SliceInfo]:
        return [SliceInfo(r["z"], r["name"], r["status"], r["version"], r["updated"])
                for r in self.catalog.slices(name)]

    def create_dataset(self, name: str, images: np.ndarray, masks: Sequence[np.ndarray | None] | np.ndarray | None,
                       class_names: Sequence[str], slice_names: Sequence[str | None] | None = None, *,
                       source: str = "", notices: Sequence[str] = ()) -> DatasetInfo:
        """Store a new dataset.

        Args:
            name: dataset name (see :func:`validate_name`); must not exist yet.
            images: (Z, Y, X) stack in its stored dtype (a memmap is copied slice by slice).
            masks: per slice a (Y, X) uint8 label image or ``None`` (unlabeled); or a (Z, Y, X) array;
                or ``None`` for an unlabeled dataset.
            class_names: one name per class, at least two.
            slice_names: per slice a name or ``None`` (then ``<name>_<zzzz>``).
            source: where the data came from, for the record.
            notices: conversion notices from reading.
        """
        validate_name(name)
        if self.has_dataset(name):
            raise ValueError(f"a dataset named {name!r} exists already; choose another name or delete it first")
        if images.ndim != 3:
            raise ValueError(f"images must be (Z, Y, X), got shape {images.shape}")
        z, h, w = images.shape
        if len(class_names) < 2:
            raise ValueError("give at least two class names")
        names = [n if n else f"{name}_{i:04d}" for i, n in enumerate(slice_names or [None] * z)]
        if len(names) != z:
            raise ValueError(f"{len(names)} slice names for {z} slices")
        mask_list = [None] * z if masks is None else list(masks)
        if len(mask_list) != z:
            raise ValueError(f"{len(mask_list)} masks for {z} image slices")
        final = self.dataset_dir(name)
        tmp = final.with_name(f".{name}.importing-{os.getpid()}-{time.time_ns()}")
        (tmp / "masks").mkdir(parents=True)
        try:
            out = tifffile.memmap(tmp / "images.tif", shape=(z, h, w), dtype=images.dtype,
                                  photometric="minisblack")
            for i in range(z):
                out[i] = images[i]
            out.flush()
            del out
            statuses = []
            for i, m in enumerate(mask_list):
                if m is None:
                    statuses.append("unlabeled")
                    continue
                m = np.asarray(m)
                if m.shape != (h, w):
                    raise ValueError(f"mask of slice {names[i]!r} is {m.shape}, image is {(h, w)}")
                if m.max(initial=0) >= len(class_names):
                    raise ValueError(f"mask of slice {names[i]!r} has class {int(m.max())} but only "
                                     f"{len(class_names)} classes are named")
                write_png(tmp / "masks" / f"{i:05d}.v1.png", m.astype(np.uint8))
                statuses.append("labeled")
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.exists():  # left over from a deleted or failed dataset; not in the catalog
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            self.catalog.add_dataset(name, (z, h, w), str(np.dtype(images.dtype)), list(class_names), names,
                                     statuses, source, list(notices))
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return self.dataset(name)

    def rename_dataset(self, old: str, new: str) -> None:
        """Rename a dataset (its folder and every catalog reference)."""
        validate_name(new)
        self.dataset(old)
        if self.has_dataset(new):
            raise ValueError(f"a dataset named {new!r} exists already")
        os.replace(self.dataset_dir(old), self.dataset_dir(new))
        try:
            self.catalog.rename_dataset(old, new)
        except BaseException:
            os.replace(self.dataset_dir(new), self.dataset_dir(old))
            raise
        preds = self.root / "predictions"
        if (preds / old).is_dir() and not (preds / new).exists():
            os.replace(preds / old, preds / new)  # predictions follow their dataset

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset and its masks (runs and their checkpoints are kept)."""
        self.dataset(name)
        self.catalog.delete_dataset(name)
        shutil.rmtree(self.dataset_dir(name), ignore_errors=True)

    def set_class_names(self, name: str, class_names: Sequence[str]) -> None:
        info = self.dataset(name)
        if len(class_names) != info.n_classes:
            raise ValueError(f"{name} has {info.n_classes} classes; got {len(class_names)} names")
        if any(not str(c).strip() for c in class_names):
            raise ValueError("class names must not be empty")
        self.catalog.set_class_names(name, [str(c).strip() for c in class_names])

    # -- images ------------------------------------------------------------------------------
    def read_images(self, name: str) -> np.ndarray:
        """The (Z, Y, X) image stack, memory-mapped read-only, in its stored dtype."""
        path = self.images_path(name)
        if not path.exists():
            raise ValueError(f"dataset {name!r} has no image file at {path}")
        return tifffile.memmap(path, mode="r")

    def read_slice(self, name: str, z: int) -> np.ndarray:
        """Slice ``z`` of the image stack as an in-memory (Y, X) array."""
        stack = self.read_images(name)
        if not 0 <= z < stack.shape[0]:
            raise ValueError(f"slice {z} out of range 0..{stack.shape[0] - 1}")
        return np.array(stack[z])

    # -- masks -------------------------------------------------------------------------------
    def read_mask(self, name: str, z: int) -> np.ndarray | None:
        """The current (Y, X) uint8 mask of slice ``z``, or ``None`` if unlabeled."""
        row = self.catalog.current_version(name, z)
        if row is None:
            return None
        return read_png(self.dataset_dir(name) / row["file"])

    def read_masks(self, name: str, zs: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """Masks of labeled slices: ``(zs, (N, Y, X) uint8)``; default every labeled slice."""
        zs = self.labeled_slices(name) if zs is None else list(zs)
        info = self.dataset(name)
        out = np.zeros((len(zs), info.shape[1], info.shape[2]), np.uint8)
        for i, z in enumerate(zs):
            m = self.read_mask(name, z)
            if m is None:
                raise ValueError(f"slice {z} of {name!r} has no mask")
            out[i] = m
        return zs, out

    def labeled_slices(self, name: str) -> list[int]:
        """Indices of slices that have a mask (labeled, edited or from-prediction)."""
        return [s.z for s in self.slices(name) if s.status != "unlabeled"]

    def save_mask(self, name: str, z: int, mask: np.ndarray, status: str = "edited") -> int:
        """Save a new version of slice ``z``'s mask; returns its version number.

        Args:
            mask: (Y, X) class indices (any integer or bool dtype; stored as uint8).
            status: ``labeled``, ``edited`` or ``from-prediction``.
        """
        info = self.dataset(name)
        if status not in SLICE_STATUSES or status == "unlabeled":
            raise ValueError(f"status must be one of labeled, edited, from-prediction; got {status!r}")
        if not 0 <= z < info.shape[0]:
            raise ValueError(f"slice {z} out of range 0..{info.shape[0] - 1}")
        mask = np.asarray(mask)
        if mask.shape != info.shape[1:]:
            raise ValueError(f"mask shape {mask.shape} does not match the image {info.shape[1:]}")
        if mask.size and (mask.min() < 0 or mask.max() >= info.n_classes):
            raise ValueError(f"mask values must be class indices 0..{info.n_classes - 1}")
        mask = mask.astype(np.uint8)
        now = time.time()
        with self.catalog.transaction() as con:
            version = self.catalog.next_version(con, name, z)
            file = f"masks/{z:05d}.v{version}.png"
            write_png(self.dataset_dir(name) / file, mask)
            con.execute("INSERT INTO mask_versions VALUES (?,?,?,?,?,?,0)", (name, z, version, status, file, now))
            con.execute("UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?",
                        (status, version, now, name, z))
        return version

    def undo_mask(self, name: str, z: int) -> int | None:
        """Step slice ``z`` back to its previous mask version.

        The undone version's file is kept (marked undone). Returns the version now current, or
        ``None`` when the slice is unlabeled again. ``ValueError`` when there is nothing to undo.
        """
        now = time.time()
        with self.catalog.transaction() as con:
            rows = con.execute("SELECT version, status FROM mask_versions WHERE dataset=? AND z=? AND undone=0 "
                               "ORDER BY version DESC LIMIT 2", (name, z)).fetchall()
            if not rows:
                raise ValueError(f"slice {z} of {name!r} has no mask version to undo")
            con.execute("UPDATE mask_versions SET undone=1 WHERE dataset=? AND z=? AND version=?",
                        (name, z, rows[0]["version"]))
            version, status = (rows[1]["version"], rows[1]["status"]) if len(rows) > 1 else (0, "unlabeled")
            con.execute("UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?",
                        (status, version, now, name, z))
        return version or None

    def can_undo(self, name: str, z: int) -> bool:
        return self.catalog.current_version(name, z) is not None

    def masks_version(self, name: str, zs: Sequence[int] | None = None) -> str:
        """A short hash of the current masks of ``zs`` (default all labeled): the dataset version."""
        zs = self.labeled_slices(name) if zs is None else list(zs)
        h = hashlib.sha256()
        for z in zs:
            row = self.catalog.current_version(name, z)
            h.update(f"{z}:".encode())
            if row is not None:
                h.update((self.dataset_dir(name) / row["file"]).read_bytes())
        return h.hexdigest()[:16]

    def pixel_size(self, name: str) -> PixelSize | None:  # noqa: F821 - imported here, not at the top
        """The dataset's :class:`~core.pixelsize.PixelSize` (read from its source on import), or ``None``."""
        from .pixelsize import PixelSize

        row = self.catalog.pixel_size(name)
        return PixelSize(*row) if row else None
