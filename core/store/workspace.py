"""The on-disk workspace: datasets (image stack + versioned masks), runs, and the SQLite catalog.

Layout under the root (default ``./workspace``, or the ``SEGDASH_WORKSPACE`` environment variable)::

    catalog.sqlite                      datasets, slices, mask versions, runs, epoch metrics
    datasets/<name>/images.tif          (Z, Y, X) uncompressed TIFF in the original dtype (memory-mapped)
    datasets/<name>/masks/<z>.v<n>.png  version n of slice z's mask: uint8 class indices 0..K-1
    runs/<run_id>/                      checkpoints and bundles of a training run
    predictions/<name>/<run_id>/        predicted masks and probabilities

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

import hashlib
import json
import logging
import os
import re
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import tifffile

from .catalog import SLICE_STATUSES, Catalog, WorkspaceError
from ..data.io import is_disk_full, read_png, write_png
from ..data.owner import Owner, host_token, is_gone

__all__ = ["Workspace", "WorkspaceError", "DatasetInfo", "SliceInfo", "MaskVersion", "MaskSave", "MaskConflict",
           "default_root", "validate_name", "disk_full_error", "human_bytes"]

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# folders of an import or a delete in progress: datasets/.<name>.importing-<host>-<pid>-<ns>
_WORK_DIR_RE = re.compile(r"^\.(?P<name>.+)\.(?:importing|deleting)-(?:(?P<host>[A-Za-z0-9]+)-)?(?P<pid>\d+)-\d+$")
# temporary files of core.data.io.atomic_write: .<file name>.<host>-<pid>.<random>.tmp (older: no owner)
_TMP_RE = re.compile(r"^\..+?\.(?:(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)\.)?[A-Za-z0-9_]+\.tmp$")
_OLD_TMP_AGE_S = 24 * 3600  # a temporary file with no owner in its name is left over after this
_SPACE_MARGIN = 64 << 10  # bytes kept free beyond what a write needs (catalog rows, the WAL)


def human_bytes(n: float) -> str:
    """``1536`` -> ``'1.5 KB'`` (powers of 1024)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def disk_full_error(folder: str | Path, needed: int | None = None) -> WorkspaceError:
    """The message for a full disk: ``not enough space in FOLDER: needs X, Y free``."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = 0
    needs = f"needs {human_bytes(needed)}, " if needed else ""
    return WorkspaceError(f"not enough space in {folder}: {needs}{human_bytes(free)} free; free some space "
                          "(or choose another workspace) and try again")


def default_root() -> Path:
    """The workspace folder: ``$SEGDASH_WORKSPACE`` or ``./workspace``."""
    return Path(os.environ.get("SEGDASH_WORKSPACE") or "workspace").resolve()


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name (letters, digits, ``._-``; 1-64 chars)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"dataset name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return name


def _reserve(fh, nbytes: int) -> None:
    """Allocate ``nbytes`` for the open file ``fh`` now, so a full disk fails here with ENOSPC
    (where the file system can allocate ahead; elsewhere the writes themselves will say it)."""
    if nbytes <= 0 or not hasattr(os, "posix_fallocate"):
        return
    try:
        os.posix_fallocate(fh.fileno(), 0, nbytes)
    except OSError as exc:
        if is_disk_full(exc):
            raise
    fh.seek(0)


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


class MaskConflict(ValueError):
    """A save drawn on version ``base`` of a slice found version ``current`` there: nothing was written."""

    def __init__(self, name: str, z: int, base: int, current: int):
        self.base, self.current = base, current
        super().__init__(f"someone saved slice {z} of {name!r} meanwhile (version {current}; your strokes were "
                         f"drawn on version {base}): reload")


@dataclass(frozen=True)
class MaskSave:
    """What :meth:`Workspace.edit_mask` wrote: ``version`` with ``status``, on top of ``parent``;
    ``merged`` when that was not the version the strokes were drawn on."""

    version: int
    status: str
    parent: int
    merged: bool


@dataclass(frozen=True)
class MaskVersion:
    """One saved mask version of a slice (see :meth:`Workspace.mask_history`).

    Attributes:
        version: its number (1, 2, ...; files ``<z>.v<version>.png``).
        status: the slice status it stands for (labeled, edited, from-prediction).
        source: ``imported``, ``drawn``, ``accepted`` / ``accepted:<run>``, ``model:<what>``,
            ``restored:v<n>``.
        created: when it was saved (seconds since the epoch).
        parent: the version it was made from (0 = none).
        current: whether the slice shows it now.
    """

    version: int
    status: str
    source: str
    created: float
    parent: int
    current: bool


class Workspace:
    """A SegDash workspace folder.

    Args:
        root: folder path; default :func:`default_root`. Created when missing.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).resolve() if root is not None else default_root()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"workspace folder {self.root} cannot be created ({exc.strerror}); choose a "
                                 "writable folder with SEGDASH_WORKSPACE or --workspace") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise WorkspaceError(f"workspace folder {self.root} is not writable; choose a writable folder with "
                                 "SEGDASH_WORKSPACE or --workspace, or make it writable")
        self.catalog = Catalog(self.root / "catalog.sqlite")
        self.cleaned = self._clean_leftovers()

    def _clean_leftovers(self) -> list[str]:
        """Remove what interrupted processes left: their import folders and name claims, temporary
        files of atomic writes; mark their runs interrupted. Only what belongs to a process that is
        gone. Returns the removed paths (relative to the root), for the record."""
        removed: list[str] = []
        for row in self.catalog.claims():
            if is_gone(row["owner_pid"], row["owner_host"]):
                if _WORK_DIR_RE.match(row["folder"]):  # never a published dataset's folder
                    self._remove(self.root / "datasets" / row["folder"], removed)
                with self.catalog.transaction() as con:
                    con.execute("DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?",
                                (row["name"], row["owner_pid"], row["owner_host"]))
        datasets = self.root / "datasets"
        if datasets.is_dir():
            for entry in datasets.iterdir():
                m = _WORK_DIR_RE.match(entry.name)
                if m and entry.is_dir() and self._owner_gone(m, entry):
                    self._remove(entry, removed)
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not _WORK_DIR_RE.match(d)]
            for f in files:
                m = _TMP_RE.match(f)
                if m and self._owner_gone(m, Path(folder) / f):
                    self._remove(Path(folder) / f, removed)
        try:
            for run_id in self.catalog.mark_interrupted():
                self._recover_checkpoints(run_id)
        except WorkspaceError:  # a full disk: the runs still read as interrupted
            pass
        if removed:
            log.info("removed leftovers of interrupted work in %s: %s", self.root, removed)
        return removed

    def _recover_checkpoints(self, run_id: str) -> None:
        """Record the checkpoints an interrupted run saved but did not get to record (killed between
        writing ``last.pt`` and updating the catalog), so it can be resumed from them."""
        run = self.catalog.run(run_id)
        folder = self.root / "runs" / run_id
        found = {key: str(folder / name) for key, name in (("last_checkpoint", "last.pt"),
                                                           ("best_checkpoint", "best.pt"))
                 if run is not None and not run[key] and (folder / name).is_file()}
        if found:
            self.catalog.update_run(run_id, **found)

    @staticmethod
    def _owner_gone(m: re.Match, path: Path) -> bool:
        """The process named in a leftover's name is gone. A name without one (an older SegDash) or
        from another host: only when the leftover is a day old."""
        if m["pid"] is None or (m["host"] and m["host"] != host_token()):
            try:
                return time.time() - path.stat().st_mtime > _OLD_TMP_AGE_S
            except OSError:
                return False
        return is_gone(int(m["pid"]), host_token())

    def _remove(self, path: Path, removed: list[str]) -> None:
        try:
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                return
            removed.append(str(path.relative_to(self.root)))
        except OSError as exc:
            log.warning("could not remove leftover %s: %s", path, exc)

    def _work_dir(self, name: str, kind: str) -> Path:
        return self.root / "datasets" / f".{name}.{kind}-{Owner.current().token()}-{time.time_ns()}"

    @contextmanager
    def _space(self, needed: int = 0) -> Iterator[None]:
        """Check that ``needed`` bytes are free first, and turn a full disk met while writing into
        :class:`WorkspaceError` (``not enough space in ...``)."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            free = None
        if needed and free is not None and free < needed + _SPACE_MARGIN:
            raise disk_full_error(self.root, needed + _SPACE_MARGIN)
        try:
            yield
        except (OSError, ValueError) as exc:  # ValueError: core.data.io.atomic_write's own message
            if is_disk_full(exc) or str(exc).startswith("not enough space"):
                raise disk_full_error(self.root, needed or None) from None
            raise

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

    def name_taken(self, name: str) -> bool:
        """A dataset, or an import in progress, has this name."""
        return self.catalog.name_taken(name)

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
            raise WorkspaceError(f"a dataset named {name!r} exists already; choose another name or delete it first")
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
        for i, m in enumerate(mask_list):  # refuse before anything is written
            if m is None:
                continue
            if np.shape(m) != (h, w):
                raise ValueError(f"mask of slice {names[i]!r} is {np.shape(m)}, image is {(h, w)}")
            if np.asarray(m).max(initial=0) >= len(class_names):
                raise ValueError(f"mask of slice {names[i]!r} has class {int(np.asarray(m).max())} but only "
                                 f"{len(class_names)} classes are named")
        # the name is ours first (one transaction), then everything is written under a private
        # folder that is published with one rename: a second import of the same name is refused
        # and cannot touch this one's files
        final = self.dataset_dir(name)
        tmp = self._work_dir(name, "importing")
        n_masks = sum(m is not None for m in mask_list)
        needed = z * (h * w * np.dtype(images.dtype).itemsize + 512) + n_masks * (h * w // 8 + 1024)
        self.catalog.claim_dataset(name, tmp.name)
        published = False
        try:
            with self._space(needed):
                (tmp / "masks").mkdir(parents=True)
                # plain file writes, not a memory map: a full disk then raises ENOSPC instead of
                # killing the process with SIGBUS
                with open(tmp / "images.tif", "wb") as fh:
                    _reserve(fh, z * h * w * np.dtype(images.dtype).itemsize)
                    tifffile.imwrite(fh, (np.asarray(images[i]) for i in range(z)), shape=(z, h, w),
                                     dtype=images.dtype, photometric="minisblack")
                    fh.truncate(fh.tell())
                    fh.flush()
                    os.fsync(fh.fileno())
                statuses = []
                for i, m in enumerate(mask_list):
                    if m is None:
                        statuses.append("unlabeled")
                        continue
                    write_png(tmp / "masks" / f"{i:05d}.v1.png", np.asarray(m).astype(np.uint8))
                    statuses.append("labeled")
                final.parent.mkdir(parents=True, exist_ok=True)
                if final.exists():  # left over from a deleted or failed dataset; not in the catalog, name is ours
                    shutil.rmtree(final)
                os.replace(tmp, final)
                published = True
                self.catalog.add_dataset(name, (z, h, w), str(np.dtype(images.dtype)), list(class_names), names,
                                         statuses, source, list(notices))
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
            if self.dataset_dir(new).exists():  # left over, not in the catalog; the name is ours now
                shutil.rmtree(self.dataset_dir(new))
            os.replace(self.dataset_dir(old), self.dataset_dir(new))
            try:
                self.catalog.rename_dataset(old, new)  # also releases the claim
            except BaseException:
                os.replace(self.dataset_dir(new), self.dataset_dir(old))
                raise
        finally:
            self.catalog.release_claim(new)
        preds = self.root / "predictions"
        if (preds / old).is_dir() and not (preds / new).exists():
            os.replace(preds / old, preds / new)  # predictions follow their dataset

    def deletion_summary(self, name: str) -> str:
        """What deleting ``name`` removes and keeps, in words (the CLI and the Data page ask with it)."""
        info = self.dataset(name)
        n_versions = self.catalog.query("SELECT COUNT(*) AS n FROM mask_versions WHERE dataset=?", (name,))[0]["n"]
        masked = info.counts()["slices"] - info.counts()["unlabeled"]
        n_runs = len(self.catalog.runs(name))
        return (f"deleting dataset {name!r} removes its {info.shape[0]} images, the masks of {masked} slices and "
                f"all {n_versions} saved mask versions for good; its {n_runs} training run"
                f"{'s' if n_runs != 1 else ''} and their checkpoints are kept")

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
    def read_mask(self, name: str, z: int, version: int | None = None) -> np.ndarray | None:
        """The current (Y, X) uint8 mask of slice ``z`` (``None`` if unlabeled), or its ``version``."""
        if version is None:
            row = self.catalog.current_version(name, z)
            if row is None:
                return None
        else:
            row = self.catalog.version_row(name, z, int(version))
            if row is None:
                raise ValueError(f"slice {z} of {name!r} has no mask version {version}")
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

    def _check_mask(self, info: DatasetInfo, z: int, mask: np.ndarray) -> np.ndarray:
        if not 0 <= z < info.shape[0]:
            raise ValueError(f"slice {z} out of range 0..{info.shape[0] - 1}")
        mask = np.asarray(mask)
        if mask.shape != info.shape[1:]:
            raise ValueError(f"mask shape {mask.shape} does not match the image {info.shape[1:]}")
        if mask.size and (mask.min() < 0 or mask.max() >= info.n_classes):
            raise ValueError(f"mask values must be class indices 0..{info.n_classes - 1}")
        return mask.astype(np.uint8)

    def _append_version(self, con, name: str, z: int, mask: np.ndarray, status: str, source: str,
                        parent: int) -> int:
        """Write the next version's file and row and make it current; inside ``con``'s transaction."""
        now = time.time()
        version = self.catalog.next_version(con, name, z)
        file = f"masks/{z:05d}.v{version}.png"
        write_png(self.dataset_dir(name) / file, mask)
        con.execute("INSERT INTO mask_versions (dataset, z, version, status, file, created, undone, source, parent) "
                    "VALUES (?,?,?,?,?,?,0,?,?)", (name, z, version, status, file, now, source, parent))
        con.execute("UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?",
                    (status, version, now, name, z))
        return version

    @staticmethod
    def _current(con, name: str, z: int) -> int:
        row = con.execute("SELECT version FROM slices WHERE dataset=? AND z=?", (name, z)).fetchone()
        if row is None:
            raise ValueError(f"dataset {name!r} has no slice {z}")
        return int(row["version"])

    def save_mask(self, name: str, z: int, mask: np.ndarray, status: str = "edited", *,
                  source: str | None = None, base_version: int | None = None) -> int:
        """Save a new version of slice ``z``'s mask; returns its version number.

        Args:
            mask: (Y, X) class indices (any integer or bool dtype; stored as uint8).
            status: ``labeled``, ``edited`` or ``from-prediction``.
            source: where the mask came from, for the history: ``drawn``, ``accepted:<run>``,
                ``model:<what>``, ... (default ``accepted`` for ``from-prediction``, else ``drawn``).
            base_version: the version the mask was made from (0 = unlabeled). When given and
                another version became current meanwhile, nothing is written and
                :class:`MaskConflict` is raised, so a save never hides someone else's work.
        """
        info = self.dataset(name)
        if status not in SLICE_STATUSES or status == "unlabeled":
            raise ValueError(f"status must be one of labeled, edited, from-prediction; got {status!r}")
        mask = self._check_mask(info, z, mask)
        source = source or ("accepted" if status == "from-prediction" else "drawn")
        with self.catalog.transaction() as con:
            current = self._current(con, name, z)
            if base_version is not None and current != base_version:
                raise MaskConflict(name, z, base_version, current)
            return self._append_version(con, name, z, mask, status, source, current)

    def edit_mask(self, name: str, z: int, edit: Callable[[np.ndarray | None], np.ndarray], *,
                  base_version: int | None = None, source: str = "drawn") -> MaskSave:
        """Apply ``edit`` to the newest mask of slice ``z`` and save the result, as one transaction.

        The read of the current mask, ``edit`` and the write happen while holding the catalog's write
        lock, so strokes drawn on an older version (``base_version``) land on the newest one and keep
        what another session saved meanwhile (reported as ``merged``).

        Args:
            edit: ``edit(current_mask_or_None) -> new (Y, X) mask``; called once, quickly (it holds
                the workspace's write lock).
            base_version: the version the strokes were drawn on (0 = unlabeled), to tell a merge.
            source: the history's source of the new version.

        Example:
            >>> import tempfile
            >>> ws = Workspace(tempfile.mkdtemp())
            >>> _ = ws.create_dataset("d", np.zeros((1, 4, 4), np.uint8), None, ["bg", "fg"])
            >>> ws.edit_mask("d", 0, lambda m: np.ones((4, 4), np.uint8), base_version=0).version
            1
        """
        info = self.dataset(name)
        with self.catalog.transaction() as con:
            current = self._current(con, name, z)
            row = self.catalog.current_version(name, z, con)
            base = None if row is None else read_png(self.dataset_dir(name) / row["file"])
            mask = self._check_mask(info, z, edit(None if base is None else base.copy()))
            status = "labeled" if base is None else "edited"
            version = self._append_version(con, name, z, mask, status, source, current)
        merged = base_version is not None and base_version != current
        return MaskSave(version, status, current, merged)

    def undo_mask(self, name: str, z: int) -> int | None:
        """Step slice ``z`` back to the version its current one was made from.

        Nothing is deleted: the version left stays in the history (:meth:`mask_history`), Redo
        returns to it and :meth:`restore_mask` brings back any version. Returns the version now
        current, or ``None`` when the slice is unlabeled again. ``ValueError`` when there is
        nothing to undo.
        """
        with self.catalog.transaction() as con:
            row = self.catalog.current_version(name, z, con)
            if row is None:
                raise ValueError(f"slice {z} of {name!r} has no mask version to undo")
            parent = row["parent"] if row["parent"] is not None else row["version"] - 1
            con.execute("UPDATE mask_versions SET undone=1 WHERE dataset=? AND z=? AND version=?",
                        (name, z, row["version"]))
            self._point(con, name, z, parent)
        return parent or None

    def redo_mask(self, name: str, z: int) -> int:
        """Step slice ``z`` forward to the newest version made from its current one (what Undo left)."""
        with self.catalog.transaction() as con:
            target = self._redo_target(con, name, z)
            if target is None:
                raise ValueError(f"slice {z} of {name!r} has nothing to redo")
            con.execute("UPDATE mask_versions SET undone=0 WHERE dataset=? AND z=? AND version=?",
                        (name, z, target))
            self._point(con, name, z, target)
        return target

    def restore_mask(self, name: str, z: int, version: int) -> int:
        """Make version ``version`` of slice ``z`` current again, as a NEW version with its content
        (source ``restored:v<version>``); returns the new version number. The history only grows."""
        info = self.dataset(name)
        with self.catalog.transaction() as con:
            row = self.catalog.version_row(name, z, int(version), con)
            if row is None:
                raise ValueError(f"slice {z} of {name!r} has no mask version {version}")
            mask = self._check_mask(info, z, read_png(self.dataset_dir(name) / row["file"]))
            current = self._current(con, name, z)
            return self._append_version(con, name, z, mask, row["status"], f"restored:v{int(version)}", current)

    def _point(self, con, name: str, z: int, version: int) -> None:
        """Make ``version`` (0 = none) the current version of slice ``z``."""
        status = "unlabeled"
        if version:
            status = self.catalog.version_row(name, z, version, con)["status"]
        con.execute("UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?",
                    (status, version, time.time(), name, z))

    def _redo_target(self, con, name: str, z: int) -> int | None:
        current = self._current(con, name, z)
        row = con.execute("SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=? AND parent=? "
                          "AND version > ?", (name, z, current, current)).fetchone()
        return None if row["v"] is None else int(row["v"])

    def can_undo(self, name: str, z: int) -> bool:
        return self.catalog.current_version(name, z) is not None

    def can_redo(self, name: str, z: int) -> bool:
        return self._redo_target(self.catalog._connection(), name, z) is not None

    def current_mask_version(self, name: str, z: int) -> int:
        """The version slice ``z`` shows now; 0 when unlabeled."""
        return self._current(self.catalog._connection(), name, z)

    def mask_history(self, name: str, z: int) -> list[MaskVersion]:
        """Every saved version of slice ``z``'s mask, oldest first; none is ever removed."""
        current = self.current_mask_version(name, z)
        return [MaskVersion(r["version"], r["status"], r["source"] or "drawn", r["created"],
                            r["parent"] if r["parent"] is not None else r["version"] - 1,
                            r["version"] == current)
                for r in self.catalog.history(name, z)]

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
