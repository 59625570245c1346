"""The on-disk workspace: datasets (image stack + versioned masks), runs, and the SQLite catalog.

The root is ``./workspace`` by default, or the ``SEGDASH_WORKSPACE`` environment variable; its
layout is :mod:`core.store.layout`. Versioned masks are :class:`~core.store.mask_history.MaskHistory`;
the records returned are in :mod:`core.store.records`, disk-space checks in :mod:`core.store.space`,
the clean-up of what interrupted processes left in :mod:`core.store.leftovers`.

Mask versions are never overwritten nor removed (:mod:`core.store.mask_history` says how): saving
writes a new file and records it in one transaction; undo and redo move the slice's current version.

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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tifffile

from ..data.chunked import Volume
from ..data.pixelsize import PixelSize
from ..errors import SegDashError
from . import layout
from .backups import backup_catalog
from .catalog import Catalog, WorkspaceError
from .datasets import create_dataset, delete_dataset, deletion_summary, rename_dataset
from .forward import forward
from .layout import validate_name
from .leftovers import clean_leftovers
from .mask_history import MaskHistory
from .meta import update_meta
from .records import DatasetInfo, MaskConflict, MaskSave, MaskVersion, RunRecord, SliceInfo
from .recovery import Recovery, Unlisted
from .run_rows import RunRows
from .space import disk_full_error, human_bytes
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


class Workspace:
    """A SegDash workspace folder: every read and write of its datasets, masks and runs, by named
    methods. It holds the catalog (``catalog``, :class:`~core.store.catalog.Catalog`), the masks'
    history (``masks``, :class:`~core.store.mask_history.MaskHistory`) and what repair finds
    (``recovery``, :class:`~core.store.recovery.Recovery`), and answers for them: code outside
    ``core/store`` calls these methods, never the catalog.

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
        self.catalog = Catalog(
            layout.catalog_path(self.root)
        )  # the store's own: code outside core/store calls methods here
        self.cleaned = clean_leftovers(self.root, self.catalog)
        self.masks = MaskHistory(self)
        self.recovery = Recovery(self.root, self.catalog)

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

    def create_dataset(self, name: str, images: np.ndarray, *args: Any, **options: Any) -> DatasetInfo:
        """Store a new dataset and return it. The arguments after ``images`` are those of
        :func:`core.store.datasets.create_dataset` (``masks``, ``class_names``, ``slice_names``;
        ``source``, ``notices``, ``by_reference``), which says how it is written."""
        create_dataset(self.root, self.catalog, name, images, *args, **options)
        return self.dataset(name)

    def rename_dataset(self, old: str, new: str) -> None:
        """Rename a dataset (its folder, its predictions and every catalog reference)."""
        self.dataset(old)
        rename_dataset(self.root, self.catalog, old, new)

    def deletion_summary(self, name: str) -> str:
        """What deleting ``name`` removes and keeps, in words (the CLI and the Data page ask with it)."""
        return deletion_summary(self.dataset(name), self.catalog.version_count(name), len(self.catalog.runs(name)))

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset and its masks; its runs and their checkpoints are kept."""
        self.dataset(name)
        delete_dataset(self.root, self.catalog, name)

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

    def set_pixel_size(self, name: str, z: float, y: float, x: float, unit: str) -> None:
        """Store a dataset's voxel size (``z`` slice step, ``y``, ``x``) in ``unit`` (``micrometer``...)."""
        self.catalog.set_pixel_size(name, z, y, x, unit)

    # -- writing a run (the training job and its recorder) -------------------------------------
    create_run = forward("catalog", RunRows.create_run)

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (:meth:`~core.store.run_rows.RunRows.update_run` names them)."""
        self.catalog.update_run(run_id, **fields)

    def beat(self, run_id: str, progress: dict[str, Any] | None = None, state: str | None = None) -> bool:
        """The run's owner is alive now, with its progress and state; whether a stop was requested."""
        return self.catalog.beat(run_id, progress, state)

    def add_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Record one epoch's metrics of a run."""
        self.catalog.add_epoch(run_id, epoch, metrics)

    # -- what the catalog lost (:class:`~core.store.recovery.Recovery`) --------------------------
    def unlisted(self) -> Unlisted:
        """Dataset folders and mask version files the catalog does not list."""
        return self.recovery.unlisted()

    def recover_datasets(self) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Add what :meth:`unlisted` finds: ``(recovered, not_recovered)``."""
        return self.recovery.recover_datasets()

    def recover_run(self, run: dict[str, Any], epochs: list[dict[str, Any]]) -> bool:
        """Record a run found on disk with its epochs (repair); whether a row was added."""
        return self.catalog.recover_run(run, epochs)

    def backup_if_due(self) -> Path | None:
        """Copy the catalog into ``backups/`` when the newest copy is a day old."""
        return self.recovery.backup_if_due()

    def backup_now(self) -> Path | None:
        """Copy the catalog into ``backups/`` now (repair, before it adds rows)."""
        return backup_catalog(self.root, self.catalog, force=True)

    # -- masks (:class:`~core.store.mask_history.MaskHistory` says how) --------------------------
    def read_mask(self, name: str, z: int, version: int | None = None) -> np.ndarray | None:
        """The current (Y, X) uint8 mask of slice ``z`` (``None`` if unlabeled), or its ``version``."""
        return self.masks.read_mask(name, z, version)

    def read_masks(self, name: str, zs: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """Masks of labeled slices: ``(zs, (N, Y, X) uint8)``; default every labeled slice."""
        return self.masks.read_masks(name, zs)

    def labeled_slices(self, name: str) -> list[int]:
        """Indices of slices that have a mask with a labeled pixel."""
        return self.masks.labeled_slices(name)

    save_mask = forward("masks", MaskHistory.save_mask)
    edit_mask = forward("masks", MaskHistory.edit_mask)

    def undo_mask(self, name: str, z: int) -> int | None:
        """Step slice ``z`` back to the version its current one was made from (nothing is deleted)."""
        return self.masks.undo_mask(name, z)

    def redo_mask(self, name: str, z: int) -> int:
        """Step slice ``z`` forward to the newest version made from its current one."""
        return self.masks.redo_mask(name, z)

    def restore_mask(self, name: str, z: int, version: int) -> int:
        """Make ``version`` of slice ``z`` current again, as a new version with its content."""
        return self.masks.restore_mask(name, z, version)

    def read_provenance(self, name: str, z: int, version: int | None = None) -> tuple[np.ndarray, str] | None:
        """Per-pixel provenance codes of slice ``z``'s mask and the run accepted pixels came from."""
        return self.masks.read_provenance(name, z, version)

    def read_truth(self, name: str, z: int) -> np.ndarray | None:
        """Slice ``z``'s mask as truth: the pixels a person drew or imported, the others not labeled."""
        return self.masks.read_truth(name, z)

    def read_truths(self, name: str, zs: Sequence[int]) -> tuple[list[np.ndarray], list[int]]:
        """Masks of slices ``zs`` to score a model against (:meth:`MaskHistory.read_truths`)."""
        return self.masks.read_truths(name, zs)

    def can_undo(self, name: str, z: int) -> bool:
        return self.masks.can_undo(name, z)

    def can_redo(self, name: str, z: int) -> bool:
        return self.masks.can_redo(name, z)

    def current_mask_version(self, name: str, z: int) -> int:
        """The version slice ``z`` shows now; 0 when unlabeled."""
        return self.masks.current_mask_version(name, z)

    def mask_history(self, name: str, z: int) -> list[MaskVersion]:
        """Every saved version of slice ``z``'s mask, oldest first; none is ever removed."""
        return self.masks.mask_history(name, z)

    def masks_version(self, name: str, zs: Sequence[int] | None = None) -> str:
        """A short hash of the current masks of ``zs`` (default all labeled): the dataset version."""
        return self.masks.masks_version(name, zs)
