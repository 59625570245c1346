"""The on-disk workspace: datasets (image stack + versioned masks), runs, and the SQLite catalog.

The root is ``./workspace`` by default, or the ``SEGDASH_WORKSPACE`` environment variable; its
layout is :mod:`core.store.layout`. Versioned masks are :class:`~core.store.mask_history.MaskHistory`;
the records returned are in :mod:`core.store.records`, disk-space checks in :mod:`core.store.space`,
the clean-up of what interrupted processes left in :mod:`core.store.leftovers`.

Mask versions are never overwritten nor removed: saving writes a new file (atomically) and records
it in the catalog inside one transaction, with its source and the version it was drawn on, so two
browser sessions saving at once both keep their work (:meth:`Workspace.edit_mask` applies strokes
to the newest version; ``save_mask(base_version=...)`` refuses a stale save). The slice's current
version is a pointer: :meth:`Workspace.undo_mask` and :meth:`Workspace.redo_mask` move it along the
history (:meth:`Workspace.mask_history`), :meth:`Workspace.restore_mask` adds a copy of any version.

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

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import tifffile

from ..data.chunked import Volume
from ..data.io import write_png
from ..data.masks import UNLABELED, labeled_fraction
from ..data.owner import Owner
from ..data.pixelsize import PixelSize
from ..errors import SegDashError
from . import layout
from .catalog import Catalog, WorkspaceError
from .layout import validate_name
from .leftovers import clean_leftovers
from .mask_history import MaskHistory
from .meta import update_meta, write_meta
from .records import DatasetInfo, MaskConflict, MaskSave, MaskVersion, RunRecord, SliceInfo
from .recovery import Recovery
from .space import disk_full_error, human_bytes, space_for, write_stack
from .volumes import open_referenced

__all__ = [
    "Workspace",
    "WorkspaceError",
    "DatasetInfo",
    "SliceInfo",
    "MaskVersion",
    "MaskSave",
    "MaskConflict",
    "default_root",
    "validate_name",
    "disk_full_error",
    "human_bytes",
]

log = logging.getLogger(__name__)


def default_root() -> Path:
    """The workspace folder: ``$SEGDASH_WORKSPACE`` or ``./workspace``."""
    return Path(os.environ.get("SEGDASH_WORKSPACE") or "workspace").resolve()


class Workspace(MaskHistory, Recovery):
    """A SegDash workspace folder.

    Args:
        root: folder path; default :func:`default_root`. Created when missing.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root is not None else default_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(
                f"workspace folder {self.root} cannot be created ({exc.strerror}); choose a "
                "writable folder with SEGDASH_WORKSPACE or --workspace"
            ) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise WorkspaceError(
                f"workspace folder {self.root} is not writable; choose a writable folder with "
                "SEGDASH_WORKSPACE or --workspace, or make it writable"
            )
        self.catalog = Catalog(layout.catalog_path(self.root))
        self.cleaned = clean_leftovers(self.root, self.catalog)

    def _work_dir(self, name: str, kind: str) -> Path:
        return layout.work_dir(self.root, name, kind, Owner.current().token(), time.time_ns())

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    # -- paths -------------------------------------------------------------------------------
    def dataset_dir(self, name: str) -> Path:
        return layout.dataset_dir(self.root, name)

    def images_path(self, name: str) -> Path:
        return layout.images_path(self.root, name)

    def run_dir(self, run_id: str) -> Path:
        """Folder of a training run (created)."""
        path = layout.run_dir(self.root, run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def predictions_dir(self, name: str, run_id: str) -> Path:
        """Folder for predictions of run ``run_id`` on dataset ``name`` (created)."""
        path = layout.prediction_dir(self.root, name, run_id)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- datasets ----------------------------------------------------------------------------
    def dataset_names(self) -> list[str]:
        return self.catalog.dataset_names()

    def has_dataset(self, name: str) -> bool:
        return self.catalog.dataset_row(name) is not None

    def name_taken(self, name: str) -> bool:
        """A dataset, or an import in progress, has this name."""
        return self.catalog.name_taken(name)

    def dataset(self, name: str) -> DatasetInfo:
        """Catalog entry of a dataset; ``ValueError`` if there is none."""
        row = self.catalog.dataset_row(name)
        if row is None:
            known = ", ".join(self.dataset_names()) or "none"
            raise SegDashError(f"no dataset named {name!r} (datasets: {known})")
        slices = self.catalog.slices(name)
        return DatasetInfo(
            name=row["name"],
            shape=(row["n_slices"], row["height"], row["width"]),
            dtype=row["dtype"],
            class_names=tuple(json.loads(row["class_names"])),
            slice_names=tuple(s["name"] for s in slices),
            statuses=tuple(s["status"] for s in slices),
            source=row["source"],
            notices=tuple(json.loads(row["notices"])),
            labeled=tuple(s["labeled"] for s in slices),
            volume=(self.catalog.volume(name) or ("",))[0],
        )

    def slices(self, name: str) -> list[SliceInfo]:
        return [
            SliceInfo(r["z"], r["name"], r["status"], r["version"], r["updated"], r["labeled"])
            for r in self.catalog.slices(name)
        ]

    def create_dataset(
        self,
        name: str,
        images: np.ndarray,
        masks: Sequence[np.ndarray | None] | np.ndarray | None,
        class_names: Sequence[str],
        slice_names: Sequence[str | None] | None = None,
        *,
        source: str = "",
        notices: Sequence[str] = (),
        by_reference: bool = False,
    ) -> DatasetInfo:
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
            by_reference: ``images`` is a Zarr :class:`~core.data.chunked.Volume` that stays where it is: its
                path and channel are recorded, no image is written (:mod:`core.store.volumes`).
        """
        validate_name(name)
        if self.has_dataset(name):
            raise WorkspaceError(f"a dataset named {name!r} exists already; choose another name or delete it first")
        if images.ndim != 3:
            raise SegDashError(f"images must be (Z, Y, X), got shape {images.shape}")
        z, h, w = images.shape
        if len(class_names) < 2:
            raise SegDashError("give at least two class names")
        names = [n if n else f"{name}_{i:04d}" for i, n in enumerate(slice_names or [None] * z)]
        if len(names) != z:
            raise SegDashError(f"{len(names)} slice names for {z} slices")
        mask_list = [None] * z if masks is None else list(masks)
        if len(mask_list) != z:
            raise SegDashError(f"{len(mask_list)} masks for {z} image slices")
        for i, m in enumerate(mask_list):  # refuse before anything is written
            if m is None:
                continue
            if np.shape(m) != (h, w):
                raise SegDashError(f"mask of slice {names[i]!r} is {np.shape(m)}, image is {(h, w)}")
            top = np.asarray(m)[np.asarray(m) != UNLABELED].max(initial=0)
            if top >= len(class_names):
                raise SegDashError(
                    f"mask of slice {names[i]!r} has class {int(top)} but only {len(class_names)} classes are named"
                )
        # the name is ours first (one transaction), then everything is written under a private
        # folder that is published with one rename: a second import of the same name is refused
        # and cannot touch this one's files
        final = self.dataset_dir(name)
        tmp = self._work_dir(name, "importing")
        n_masks = sum(m is not None for m in mask_list)
        volume = (str(getattr(images, "path", "")), getattr(images, "channel", None)) if by_reference else None
        if volume is not None and not volume[0]:
            raise SegDashError("only a Zarr volume opened from a path (core.data.chunked.open_volume) is referenced")
        image_bytes = 0 if by_reference else z * h * w * np.dtype(images.dtype).itemsize
        needed = image_bytes + z * 512 + n_masks * (h * w // 8 + 1024)
        self.catalog.claim_dataset(name, tmp.name)
        published = False
        try:
            if final.exists():  # checked holding the name: no import of it is publishing now
                raise self._unlisted_folder(name)
            with space_for(self.root, needed):
                (tmp / layout.MASKS_DIR).mkdir(parents=True)
                if not by_reference:
                    write_stack(tmp / layout.IMAGES, images, image_bytes)
                statuses, fractions = [], []
                for i, m in enumerate(mask_list):
                    fractions.append(None if m is None else labeled_fraction(m))
                    if m is None:
                        statuses.append("unlabeled")
                        continue
                    write_png(tmp / layout.mask_file(i, 1), np.asarray(m).astype(np.uint8))
                    statuses.append("labeled")
                write_meta(
                    tmp, created=time.time(), shape=(z, h, w), dtype=str(np.dtype(images.dtype)),
                    class_names=class_names, slice_names=names, source=source, notices=notices, volume=volume,
                )  # fmt: skip
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():  # a folder this import did not make (a dataset the catalog lost): never ours
                    raise self._unlisted_folder(name)
                os.replace(tmp, final)
                published = True
                self.catalog.add_dataset(
                    name,
                    (z, h, w),
                    str(np.dtype(images.dtype)),
                    list(class_names),
                    names,
                    statuses,
                    source,
                    list(notices),
                    fractions,
                    volume,
                )
        except BaseException:
            shutil.rmtree(final if published else tmp, ignore_errors=True)
            try:
                self.catalog.release_claim(name)
            except Exception:  # noqa: BLE001 - the next open cleans the claim of a process that is gone
                log.warning("could not release the claim on %r", name, exc_info=True)
            raise
        return self.dataset(name)

    def rename_dataset(self, old: str, new: str) -> None:
        """Rename a dataset (its folder and every catalog reference)."""
        validate_name(new)
        self.dataset(old)
        self.catalog.claim_dataset(new, "")  # refuses a taken name; no folder of its own to clean
        try:
            if self.dataset_dir(new).exists():  # a dataset the catalog lost: never ours to remove
                raise self._unlisted_folder(new)
            os.replace(self.dataset_dir(old), self.dataset_dir(new))
            try:
                self.catalog.rename_dataset(old, new)  # also releases the claim
            except BaseException:
                os.replace(self.dataset_dir(new), self.dataset_dir(old))
                raise
        finally:
            self.catalog.release_claim(new)
        old_preds, new_preds = layout.predictions_dir(self.root, old), layout.predictions_dir(self.root, new)
        if old_preds.is_dir() and not new_preds.exists():
            os.replace(old_preds, new_preds)  # predictions follow their dataset

    def deletion_summary(self, name: str) -> str:
        """What deleting ``name`` removes and keeps, in words (the CLI and the Data page ask with it)."""
        info = self.dataset(name)
        n_versions = self.catalog.query("SELECT COUNT(*) AS n FROM mask_versions WHERE dataset=?", (name,))[0]["n"]
        masked = info.counts()["slices"] - info.counts()["unlabeled"]
        n_runs = len(self.catalog.runs(name))
        images = f"its {info.shape[0]} images"
        if info.volume:
            images = f"its reference to {info.volume} (the volume is kept)"
        return (
            f"deleting dataset {name!r} removes {images}, the masks of {masked} slices and "
            f"all {n_versions} saved mask versions for good; its {n_runs} training run"
            f"{'s' if n_runs != 1 else ''} and their checkpoints are kept"
        )

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset and its masks (runs and their checkpoints are kept).

        The catalog entry goes first, then the folder is renamed aside and removed: a crash in
        between leaves a ``.<name>.deleting-*`` folder that the next open removes.
        """
        self.dataset(name)
        self.catalog.delete_dataset(name)
        folder = self.dataset_dir(name)
        if folder.exists():
            aside = self._work_dir(name, "deleting")
            try:
                os.replace(folder, aside)
            except OSError:
                aside = folder
            shutil.rmtree(aside, ignore_errors=True)

    def set_class_names(self, name: str, class_names: Sequence[str]) -> None:
        info = self.dataset(name)
        if len(class_names) != info.n_classes:
            raise SegDashError(f"{name} has {info.n_classes} classes; got {len(class_names)} names")
        if any(not str(c).strip() for c in class_names):
            raise SegDashError("class names must not be empty")
        self.catalog.set_class_names(name, [str(c).strip() for c in class_names])
        update_meta(self.dataset_dir(name), class_names=[str(c).strip() for c in class_names])

    # -- images ------------------------------------------------------------------------------
    def read_images(self, name: str) -> np.ndarray | Volume:
        """The (Z, Y, X) image stack, memory-mapped read-only, in its stored dtype; for a dataset imported
        by reference its Zarr :class:`~core.data.chunked.Volume`, which reads like a read-only array and
        reads only the chunks indexed (a missing or moved volume: ``ValueError``, masks untouched)."""
        ref = self.catalog.volume(name)
        if ref is not None:
            row = self.catalog.dataset_row(name)
            return open_referenced(name, ref[0], ref[1], (row["n_slices"], row["height"], row["width"]), row["dtype"])
        path = self.images_path(name)
        if not path.exists():
            raise SegDashError(f"dataset {name!r} has no image file at {path}")
        return tifffile.memmap(path, mode="r")

    def read_slice(self, name: str, z: int) -> np.ndarray:
        """Slice ``z`` of the image stack as an in-memory (Y, X) array."""
        stack = self.read_images(name)
        if not 0 <= z < stack.shape[0]:
            raise SegDashError(f"slice {z} out of range 0..{stack.shape[0] - 1}")
        return np.array(stack[z])

    # -- training runs (the pages read runs here, never the catalog) --------------------------
    def run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id`` (an active run whose process is gone reads ``interrupted``), or ``None``."""
        return self.catalog.run(run_id)

    def runs(self, dataset: str | None = None, active: bool = False) -> list[RunRecord]:
        """Runs of ``dataset`` (or all), newest first; ``active``: only those queued, running or stopping."""
        return self.catalog.runs(dataset, active=active)

    def run_epochs(self, run_id: str) -> list[dict[str, float]]:
        """Per-epoch metrics of a run, in epoch order, each with its ``epoch`` key."""
        return self.catalog.epochs(run_id)

    def epochs_done(self, run_ids: list[str]) -> dict[str, int]:
        """Number of recorded epochs of each of ``run_ids``."""
        return self.catalog.epoch_counts(run_ids)

    def request_stop(self, run_id: str) -> None:
        """Ask whichever process trains ``run_id`` to stop it (it reads the request within seconds)."""
        if self.catalog.run(run_id) is None:
            raise SegDashError(f"no run named {run_id!r} in {self.root}")
        self.catalog.request_stop(run_id)

    def runs_with_checkpoints(
        self, dataset: str | None = None, keys: Sequence[str] = ("best_checkpoint",)
    ) -> list[RunRecord]:
        """Runs (of ``dataset``, or all), newest first as the catalog lists them, that have at least one of
        the checkpoints named by ``keys`` (``best_checkpoint``, ``last_checkpoint``) on disk."""
        return [r for r in self.catalog.runs(dataset) if any(r[k] and Path(r[k]).is_file() for k in keys)]

    def pixel_size(self, name: str) -> PixelSize | None:
        """The dataset's :class:`~core.data.pixelsize.PixelSize` (read from its source on import), or ``None``."""
        row = self.catalog.pixel_size(name)
        return PixelSize(*row) if row else None
