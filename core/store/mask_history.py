"""Versioned masks of a workspace's slices: :class:`MaskHistory`, which
:class:`~core.store.workspace.Workspace` holds (``workspace.masks``) and answers its mask methods with.
Its rows are read and written through the catalog's :class:`~core.store.mask_rows.MaskRows`, its
files through :mod:`core.data.files`; it holds no SQL.

Mask versions are never overwritten nor removed: saving writes a new file (atomically) and records
it in the catalog inside one transaction, with its source and the version it was drawn on, so two
browser sessions saving at once both keep their work (:meth:`MaskHistory.edit_mask` applies strokes
to the newest version; ``save_mask(base_version=...)`` refuses a stale save). The slice's current
version is a pointer: :meth:`MaskHistory.undo_mask` and :meth:`MaskHistory.redo_mask` move it along
the history (:meth:`MaskHistory.mask_history`), :meth:`MaskHistory.restore_mask` adds a copy of any
version.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Protocol, Sequence

import numpy as np

from ..data import provenance
from ..data.io import read_png, write_png
from ..data.masks import UNLABELED, labeled_fraction
from ..data.provenance import accepted_run
from ..errors import SegDashError
from .catalog import SLICE_STATUSES, Catalog
from .layout import MASK_FILE_RE, MASKS_DIR, mask_file, provenance_file
from .mask_rows import MaskRows
from .records import DatasetInfo, MaskConflict, MaskSave, MaskVersion, SliceInfo

__all__ = ["MaskHistory", "MaskOwner", "newest_on_disk"]


def newest_on_disk(folder: Path, z: int) -> int:
    """The highest version number of slice ``z`` with a file (mask or provenance) in the dataset folder
    ``folder``, whatever the catalog says; 0 when none."""
    top = 0
    try:
        with os.scandir(Path(folder) / MASKS_DIR) as entries:
            for entry in entries:
                m = MASK_FILE_RE.match(entry.name)
                if m and int(m["z"]) == z:
                    top = max(top, int(m["version"]))
    except FileNotFoundError:
        pass
    return top


class MaskOwner(Protocol):
    """What :class:`MaskHistory` reads of the workspace that holds it (its public methods)."""

    catalog: Catalog

    def dataset(self, name: str) -> DatasetInfo: ...

    def dataset_dir(self, name: str) -> Path: ...

    def slices(self, name: str) -> list[SliceInfo]: ...


class MaskHistory:
    """Reading and saving slices' masks, with their full history.

    Args:
        workspace: the :class:`~core.store.workspace.Workspace` that holds it: its catalog, datasets
            and dataset folders (read when used, so a workspace that wraps its catalog is followed).
    """

    def __init__(self, workspace: MaskOwner):
        self.workspace = workspace

    @property
    def rows(self) -> MaskRows:
        return self.workspace.catalog.mask_rows

    def dataset(self, name: str) -> DatasetInfo:
        return self.workspace.dataset(name)

    def dataset_dir(self, name: str) -> Path:
        return self.workspace.dataset_dir(name)

    def slices(self, name: str) -> list[SliceInfo]:
        return self.workspace.slices(name)

    # -- masks -------------------------------------------------------------------------------
    def read_mask(self, name: str, z: int, version: int | None = None) -> np.ndarray | None:
        """The current (Y, X) uint8 mask of slice ``z`` (``None`` if unlabeled), or its ``version``."""
        if version is None:
            row = self.rows.current_version(name, z)
            if row is None:
                return None
        else:
            row = self.rows.version_row(name, z, int(version))
            if row is None:
                raise SegDashError(f"slice {z} of {name!r} has no mask version {version}")
        return read_png(self.dataset_dir(name) / row["file"])

    def read_masks(self, name: str, zs: Sequence[int] | None = None) -> tuple[list[int], np.ndarray]:
        """Masks of labeled slices: ``(zs, (N, Y, X) uint8)``; default every labeled slice."""
        zs = self.labeled_slices(name) if zs is None else list(zs)
        info = self.dataset(name)
        out = np.zeros((len(zs), info.shape[1], info.shape[2]), np.uint8)
        for i, z in enumerate(zs):
            m = self.read_mask(name, z)
            if m is None:
                raise SegDashError(f"slice {z} of {name!r} has no mask")
            out[i] = m
        return zs, out

    def labeled_slices(self, name: str) -> list[int]:
        """Indices of slices that have a mask (labeled, edited or from-prediction) with a labeled pixel."""
        return [s.z for s in self.slices(name) if s.coverage != "unlabeled"]

    def _check_mask(self, info: DatasetInfo, z: int, mask: np.ndarray) -> np.ndarray:
        if not 0 <= z < info.shape[0]:
            raise SegDashError(f"slice {z} out of range 0..{info.shape[0] - 1}")
        mask = np.asarray(mask)
        if mask.shape != info.shape[1:]:
            raise SegDashError(f"mask shape {mask.shape} does not match the image {info.shape[1:]}")
        if mask.size and (mask.min() < 0 or mask[mask != UNLABELED].max(initial=0) >= info.n_classes):
            raise SegDashError(
                f"mask values must be class indices 0..{info.n_classes - 1}, or {UNLABELED} for not labeled"
            )
        return mask.astype(np.uint8)

    def _append_version(
        self,
        con,
        name: str,
        z: int,
        mask: np.ndarray,
        status: str,
        source: str,
        parent: int,
        provenance: np.ndarray | None = None,
        accepted_from: str | None = None,
    ) -> int:
        """Write the next version's file (and its provenance when it is not its source's alone) and row
        and make it current; inside ``con``'s transaction."""
        # never a number whose file exists: the catalog may have lost rows (a deleted WAL) whose files remain
        version = max(self.rows.next_version(con, name, z), newest_on_disk(self.dataset_dir(name), z) + 1)
        file = mask_file(z, version)
        if provenance is not None:  # first: a version row never names a missing provenance
            write_png(self.dataset_dir(name) / provenance_file(file), provenance.astype(np.uint8))
        write_png(self.dataset_dir(name) / file, mask)
        self.rows.add_version(
            con,
            name,
            z,
            version,
            status=status,
            file=file,
            source=source,
            parent=parent,
            labeled=labeled_fraction(mask),
            accepted_from=accepted_run(source) if accepted_from is None else accepted_from,
        )
        return version

    def save_mask(
        self,
        name: str,
        z: int,
        mask: np.ndarray,
        status: str = "edited",
        *,
        source: str | None = None,
        base_version: int | None = None,
    ) -> int:
        """Save a new version of slice ``z``'s mask; returns its version number.

        Args:
            mask: (Y, X) class indices (any integer or bool dtype; stored as uint8).
            status: ``labeled``, ``edited`` or ``from-prediction``.
            source: where the mask came from, for the history: ``drawn``, ``accepted:<run>``,
                ``model:<what>``, ... (default ``accepted`` for ``from-prediction``, else ``drawn``).
            base_version: the version the mask was made from (0 = unlabeled). When given and
                another version became current meanwhile, nothing is written and
                :class:`~core.store.records.MaskConflict` is raised, so a save never hides someone else's work.
        """
        info = self.dataset(name)
        if status not in SLICE_STATUSES or status == "unlabeled":
            raise SegDashError(f"status must be one of labeled, edited, from-prediction; got {status!r}")
        mask = self._check_mask(info, z, mask)
        source = source or ("accepted" if status == "from-prediction" else "drawn")
        with self.workspace.catalog.transaction() as con:
            current = self.rows.current(name, z, con)
            if base_version is not None and current != base_version:
                raise MaskConflict(name, z, base_version, current)
            # a model's mask gets its provenance file: what tells repair it was accepted, not drawn
            prov = (
                provenance.from_source(source, mask) if provenance.accepted_run(source) or "accept" in source else None
            )
            return self._append_version(con, name, z, mask, status, source, current, prov)

    def edit_mask(
        self,
        name: str,
        z: int,
        edit: Callable[[np.ndarray | None], np.ndarray],
        *,
        base_version: int | None = None,
        source: str = "drawn",
        drawn: np.ndarray | None = None,
    ) -> MaskSave:
        """Apply ``edit`` to the newest mask of slice ``z`` and save the result, as one transaction.

        The read of the current mask, ``edit`` and the write happen while holding the catalog's write
        lock, so strokes drawn on an older version (``base_version``) land on the newest one and keep
        what another session saved meanwhile (reported as ``merged``).

        Args:
            edit: ``edit(current_mask_or_None) -> new (Y, X) mask``; called once, quickly (it holds
                the workspace's write lock).
            base_version: the version the strokes were drawn on (0 = unlabeled), to tell a merge.
            source: the history's source of the new version.
            drawn: (Y, X) bool, the pixels the strokes covered: their provenance becomes ``drawn``
                (default: the pixels whose class changed); the others keep theirs.

        Example:
            >>> import tempfile
            >>> from core.store.workspace import Workspace
            >>> ws = Workspace(tempfile.mkdtemp())
            >>> _ = ws.create_dataset("d", np.zeros((1, 4, 4), np.uint8), None, ["bg", "fg"])
            >>> ws.edit_mask("d", 0, lambda m: np.ones((4, 4), np.uint8), base_version=0).version
            1
        """
        info = self.dataset(name)
        with self.workspace.catalog.transaction() as con:
            current = self.rows.current(name, z, con)
            row = self.rows.current_version(name, z, con)
            base = None if row is None else read_png(self.dataset_dir(name) / row["file"])
            mask = self._check_mask(info, z, edit(None if base is None else base.copy()))
            status = "labeled" if base is None else "edited"
            old = np.zeros(mask.shape, np.uint8) if base is None else self._provenance(name, row, base)
            touched = (mask != (UNLABELED if base is None else base)) if drawn is None else np.asarray(drawn, bool)
            prov = provenance.stroke(old, mask, touched)
            run = None if row is None else (row["accepted_from"] or "")
            version = self._append_version(con, name, z, mask, status, source, current, prov, run)
        merged = base_version is not None and base_version != current
        return MaskSave(version, status, current, merged)

    def undo_mask(self, name: str, z: int) -> int | None:
        """Step slice ``z`` back to the version its current one was made from.

        Nothing is deleted: the version left stays in the history (:meth:`mask_history`), Redo
        returns to it and :meth:`restore_mask` brings back any version. Returns the version now
        current, or ``None`` when the slice is unlabeled again. ``ValueError`` when there is
        nothing to undo.
        """
        with self.workspace.catalog.transaction() as con:
            row = self.rows.current_version(name, z, con)
            if row is None:
                raise SegDashError(f"Nothing to undo on slice {z} of {name!r}: it has no mask version.")
            parent = row["parent"] if row["parent"] is not None else row["version"] - 1
            self.rows.set_undone(con, name, z, row["version"], True)
            self.rows.point(con, name, z, parent)
        return parent or None

    def redo_mask(self, name: str, z: int) -> int:
        """Step slice ``z`` forward to the newest version made from its current one (what Undo left)."""
        with self.workspace.catalog.transaction() as con:
            target = self.rows.redo_target(name, z, con)
            if target is None:
                raise SegDashError(f"Nothing to redo on slice {z} of {name!r}.")
            self.rows.set_undone(con, name, z, target, False)
            self.rows.point(con, name, z, target)
        return target

    def restore_mask(self, name: str, z: int, version: int) -> int:
        """Make version ``version`` of slice ``z`` current again, as a NEW version with its content
        (source ``restored:v<version>``); returns the new version number. The history only grows."""
        info = self.dataset(name)
        with self.workspace.catalog.transaction() as con:
            row = self.rows.version_row(name, z, int(version), con)
            if row is None:
                raise SegDashError(f"slice {z} of {name!r} has no mask version {version}")
            mask = self._check_mask(info, z, read_png(self.dataset_dir(name) / row["file"]))
            current = self.rows.current(name, z, con)
            prov, run = self._provenance(name, row, mask), row["accepted_from"] or ""
            return self._append_version(
                con, name, z, mask, row["status"], f"restored:v{int(version)}", current, prov, run
            )

    def _provenance(self, name: str, row, mask: np.ndarray) -> np.ndarray:
        path = self.dataset_dir(name) / provenance_file(row["file"])
        return read_png(path) if path.is_file() else provenance.from_source(row["source"] or "drawn", mask)

    def read_provenance(self, name: str, z: int, version: int | None = None) -> tuple[np.ndarray, str] | None:
        """``((Y, X) uint8 codes of :mod:`core.data.provenance`, the run accepted pixels came from)`` of
        slice ``z``'s current mask (or ``version``); ``None`` when unlabeled."""
        row = self.rows.current_version(name, z) if version is None else self.rows.version_row(name, z, version)
        if row is None:
            return None
        mask = read_png(self.dataset_dir(name) / row["file"])
        return self._provenance(name, row, mask), row["accepted_from"] or ""

    def read_truth(self, name: str, z: int) -> np.ndarray | None:
        """Slice ``z``'s mask as truth to score a prediction against: the pixels a person drew or
        imported, every other pixel not labeled (:func:`core.data.provenance.person_labeled`)."""
        mask = self.read_mask(name, z)
        if mask is None:
            return None
        prov, _ = self.read_provenance(name, z)
        return provenance.person_labeled(mask, prov)

    def read_truths(self, name: str, zs: Sequence[int]) -> tuple[list[np.ndarray], list[int]]:
        """Masks of slices ``zs`` to score a model against (validation, test): each as
        :meth:`read_truth` (a person's pixels only), except a slice with no pixel a person drew or
        imported, which keeps its whole mask; ``(masks, zs of those slices)``."""
        out, whole = [], []
        for z in zs:
            row = self.rows.current_version(name, z)
            if row is None:
                raise SegDashError(f"slice {z} of {name!r} has no mask")
            mask = read_png(self.dataset_dir(name) / row["file"])
            truth = provenance.person_labeled(mask, self._provenance(name, row, mask))
            if (truth == UNLABELED).all() and (mask != UNLABELED).any():
                truth = mask
                whole.append(int(z))
            out.append(truth)
        return out, whole

    def can_undo(self, name: str, z: int) -> bool:
        return self.rows.current_version(name, z) is not None

    def can_redo(self, name: str, z: int) -> bool:
        return self.rows.redo_target(name, z) is not None

    def current_mask_version(self, name: str, z: int) -> int:
        """The version slice ``z`` shows now; 0 when unlabeled."""
        return self.rows.current(name, z)

    def mask_history(self, name: str, z: int) -> list[MaskVersion]:
        """Every saved version of slice ``z``'s mask, oldest first; none is ever removed."""
        current = self.current_mask_version(name, z)
        return [
            MaskVersion(
                r["version"],
                r["status"],
                r["source"] or "drawn",
                r["created"],
                r["parent"] if r["parent"] is not None else r["version"] - 1,
                r["version"] == current,
            )
            for r in self.rows.history(name, z)
        ]

    def masks_version(self, name: str, zs: Sequence[int] | None = None) -> str:
        """A short hash of the current masks of ``zs`` (default all labeled): the dataset version."""
        zs = self.labeled_slices(name) if zs is None else list(zs)
        h = hashlib.sha256()
        for z in zs:
            row = self.rows.current_version(name, z)
            h.update(f"{z}:".encode())
            if row is not None:
                h.update((self.dataset_dir(name) / row["file"]).read_bytes())
        return h.hexdigest()[:16]
