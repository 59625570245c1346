"""Rebuilding the catalog from the workspace's folders, the store half of ``python -m core repair``
(:mod:`core.workflow.repair` adds the runs, whose checkpoints need torch).

The folders hold everything saved: a dataset is ``datasets/<name>/`` with ``images.tif`` (or the
path of the volume it reads by reference, in ``dataset.json``), its mask versions
``masks/<z>.v<n>.png`` and their provenance ``.src.png``. :meth:`Recovery.unlisted` finds what the
catalog does not list (a lost or emptied catalog, a deleted WAL), :meth:`Recovery.recover_datasets`
adds it: only adds, never changes a file. A damaged catalog file is moved aside
(``catalog.sqlite.corrupt-<time>``, never deleted) by :func:`set_aside_damaged` first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from ..data import provenance
from ..data.files import read_png
from ..data.masks import UNLABELED, labeled_fraction
from ..errors import SegDashError
from .backups import backup_catalog
from .catalog import Catalog, CatalogDamaged, WorkspaceError, catalog_damage, copy_catalog
from .layout import (
    DATASET_META,
    IMAGES,
    MASK_FILE_RE,
    MASKS_DIR,
    catalog_path,
    dataset_dir,
    datasets_dir,
    provenance_file,
    validate_name,
)
from .meta import read_meta, write_meta

__all__ = ["Recovery", "Unlisted", "set_aside_damaged", "restore_backup", "unlisted_folder_error"]

log = logging.getLogger(__name__)

_SAME_IMPORT_S = 120  # a version 1 written this close to images.tif came with the import


@dataclass
class Unlisted:
    """What the folders hold and the catalog does not list: ``datasets`` (folders without a row) and
    ``versions`` (per listed dataset, the number of mask version files without a row)."""

    datasets: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.datasets or self.versions)

    def message(self) -> str:
        """In words, for the Home page's banner."""
        parts = []
        if self.datasets:
            parts.append(
                f"{len(self.datasets)} dataset folder(s) the catalog does not list ({', '.join(self.datasets)})"
            )
        if self.versions:
            n = sum(self.versions.values())
            parts.append(f"{n} saved mask version(s) of {', '.join(self.versions)} it does not list")
        return "The workspace holds " + " and ".join(parts) + ": its catalog lost them."


def unlisted_folder_error(name: str) -> WorkspaceError:
    """The refusal to write over ``datasets/<name>/``, a folder the catalog does not list."""
    return WorkspaceError(
        f"the workspace holds a folder datasets/{name}/ that its catalog does not list (a dataset the catalog "
        f"lost?); nothing was changed: run python -m core repair (or Repair on the Home page) to list it again, "
        "or choose another name"
    )


class Recovery:
    """Finding and adding what the catalog lost, which :class:`~core.store.workspace.Workspace` holds
    (``workspace.recovery``) and answers :meth:`unlisted`, :meth:`recover_datasets` and
    :meth:`backup_if_due` with.

    Args:
        root: the workspace folder.
        catalog: its catalog.
    """

    def __init__(self, root: Path, catalog: Catalog):
        self.root = Path(root)
        self.catalog = catalog

    def dataset_dir(self, name: str) -> Path:
        return dataset_dir(self.root, name)

    def backup_if_due(self) -> Path | None:
        """Copy the catalog into ``backups/`` when the newest copy is a day old (:mod:`core.store.backups`).
        Reads the catalog first: :class:`~core.store.catalog.CatalogDamaged` when it went bad meanwhile;
        a copy that fails otherwise is logged, never in the way."""
        self.catalog.dataset_names()
        try:
            return backup_catalog(self.root, self.catalog)
        except CatalogDamaged:
            raise
        except Exception:  # noqa: BLE001 - a backup is a precaution, never what stops the user
            log.warning("could not copy the catalog into backups/", exc_info=True)
            return None

    def unlisted(self) -> Unlisted:
        """Dataset folders without a catalog row (other than an import in progress) and mask version
        files the catalog does not list."""
        out = Unlisted()
        folder = datasets_dir(self.root)
        if not folder.is_dir():
            return out
        listed = set(self.catalog.dataset_names())
        claimed = {r["name"] for r in self.catalog.claims()}
        for entry in sorted(folder.iterdir()):
            if not _is_name(entry.name) or not entry.is_dir():  # work folders, names SegDash never makes
                continue
            if entry.name in listed:
                n = len(set(_version_files(entry)) - self.catalog.version_files(entry.name))
                if n:
                    out.versions[entry.name] = n
            elif entry.name not in claimed:
                out.datasets.append(entry.name)
        return out

    def recover_datasets(self) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        """Add what :meth:`unlisted` finds: ``(recovered, not_recovered)``, each item a dict naming the
        dataset (``dataset``, ``slices``, ``mask_versions``, ``notes``) or the folder and why not."""
        found = self.unlisted()
        done: list[dict[str, Any]] = []
        failed: list[dict[str, str]] = []
        for name in found.datasets:
            try:
                item = self._recover_dataset(name, failed)
            except (OSError, ValueError, tifffile.TiffFileError) as exc:
                failed.append({"path": f"datasets/{name}", "why": str(exc) or type(exc).__name__})
                continue
            if item is not None:
                done.append(item)
        for name in found.versions:
            folder = self.dataset_dir(name)
            row = self.catalog.dataset_row(name)
            shape = (row["n_slices"], row["height"], row["width"])
            versions = _versions(folder, shape, self.catalog.version_files(name), failed, name)
            self.catalog.recover_versions(name, versions)
            done.append({"dataset": name, "mask_versions": len(versions), "notes": ["mask versions the catalog lost"]})
        return done, failed

    def _recover_dataset(self, name: str, failed: list[dict[str, str]]) -> dict[str, Any] | None:
        folder = self.dataset_dir(name)
        meta, notes = read_meta(folder), []
        images = folder / IMAGES
        if meta is None or not meta.get("volume"):
            if not images.is_file():
                raise SegDashError(f"no {IMAGES} and no {DATASET_META} naming a volume read by reference")
            with tifffile.TiffFile(images) as tif:
                shape, dtype = tuple(int(v) for v in tif.series[0].shape), str(tif.series[0].dtype)
            if len(shape) == 2:
                shape = (1, *shape)
            if meta is not None and (tuple(meta["shape"]) != shape or meta["dtype"] != dtype):
                raise SegDashError(f"{IMAGES} holds {shape} {dtype}, {DATASET_META} says {tuple(meta['shape'])}")
        else:
            shape, dtype = tuple(meta["shape"]), meta["dtype"]
        versions = _versions(folder, shape, set(), failed, name)
        if meta is None:
            top = max((_top_class(folder / v["file"]) for v in versions), default=1)
            classes = self._class_names_from_runs(name, top + 1) or ["background"] + [
                f"class {i}" for i in range(1, max(2, top + 1))
            ]
            notes.append(f"no {DATASET_META} (imported before SegDash wrote one): slice names and classes rebuilt")
            meta = {
                "created": images.stat().st_mtime,
                "shape": list(shape),
                "dtype": dtype,
                "class_names": classes,
                "slice_names": [f"{name}_{i:04d}" for i in range(shape[0])],
                "source": f"recovered by repair from datasets/{name}/",
                "notices": [],
                "volume": None,
                "pixel_size": None,
            }
        if len(meta["slice_names"]) != shape[0] or len(meta["class_names"]) < 2:
            raise SegDashError(f"{DATASET_META} does not fit the {shape[0]} slices of {IMAGES}")
        if not self.catalog.recover_dataset(name, meta, versions):
            return None  # listed meanwhile (an import or a rename that was in progress)
        if not (folder / DATASET_META).is_file():
            write_meta(folder, **{k: meta[k] for k in meta if k not in ("format", "version")})
        return {"dataset": name, "slices": shape[0], "mask_versions": len(versions), "notes": notes}

    def _class_names_from_runs(self, name: str, n_min: int) -> list[str] | None:
        """Class names a run of dataset ``name`` recorded (when enough for the masks' classes)."""
        for run in self.catalog.runs(name):
            names = list((run["extra"] or {}).get("class_names") or [])
            if len(names) >= max(2, n_min):
                return names
        return None


def _is_name(name: str) -> bool:
    try:
        return bool(validate_name(name))
    except SegDashError:
        return False


def _version_files(folder: Path) -> list[str]:
    """The mask version files (not provenance) in a dataset folder, relative to it."""
    try:
        names = os.listdir(folder / MASKS_DIR)
    except FileNotFoundError:
        return []
    return [f"{MASKS_DIR}/{n}" for n in names if (m := MASK_FILE_RE.match(n)) and not m["src"]]


def _versions(
    folder: Path, shape: tuple[int, ...], known: set[str], failed: list[dict[str, str]], name: str
) -> list[dict[str, Any]]:
    """Catalog rows for the mask version files of ``folder`` not in ``known``: source from their
    provenance file (else ``imported`` for a version 1 written with the images, ``drawn`` otherwise)."""
    files = sorted(
        _version_files(folder), key=lambda f: tuple(int(v) for v in MASK_FILE_RE.match(Path(f).name).group(1, 2))
    )
    images = folder / IMAGES
    imported_at = images.stat().st_mtime if images.is_file() else None
    out, previous, seen = [], {}, {}
    for file in files:
        m = MASK_FILE_RE.match(Path(file).name)
        z, version = int(m["z"]), int(m["version"])
        parent, previous[z] = previous.get(z, 0), version
        if file in known:
            continue
        if z >= shape[0]:
            failed.append(
                {"path": f"datasets/{name}/{file}", "why": f"slice {z} beyond the dataset's {shape[0]} slices"}
            )
            continue
        try:
            mask = read_png(folder / file)
        except (OSError, ValueError) as exc:
            failed.append({"path": f"datasets/{name}/{file}", "why": str(exc)})
            continue
        if mask.shape != tuple(shape[1:]):
            failed.append(
                {"path": f"datasets/{name}/{file}", "why": f"a {mask.shape} mask for {tuple(shape[1:])} images"}
            )
            continue
        created = (folder / file).stat().st_mtime
        source = _source(folder / provenance_file(file), mask)
        if source is None:
            with_images = imported_at is not None and abs(created - imported_at) < _SAME_IMPORT_S
            source = "imported" if version == 1 and with_images else "drawn"
        status = "from-prediction" if source == "accepted" else ("labeled" if version == 1 else "edited")
        digest = hashlib.sha256(mask.tobytes()).hexdigest()
        same = seen.setdefault(z, {}).get(digest)
        if same is not None:  # a restore: a copy of an earlier version
            source, status = f"restored:v{same[0]}", same[1]
        seen[z].setdefault(digest, (version, status))
        out.append(
            {"z": z, "version": version, "status": status, "file": file, "created": created, "source": source}
            | {"parent": parent, "labeled": labeled_fraction(mask), "accepted_from": ""}
        )
    return out


def _source(src: Path, mask: np.ndarray) -> str | None:
    """The source a provenance file tells: one code on every labeled pixel, or ``drawn`` for strokes."""
    if not src.is_file():
        return None
    codes = set(np.unique(read_png(src)[mask != UNLABELED]).tolist()) - {provenance.NONE}
    if codes == {provenance.IMPORTED}:
        return "imported"
    if codes == {provenance.ACCEPTED}:
        return "accepted"
    return "drawn"


def _top_class(path: Path) -> int:
    mask = read_png(path)
    return int(mask[mask != UNLABELED].max(initial=0))


def _aside(path: Path, tag: str) -> Path:
    """Move the catalog at ``path`` (with its ``-wal`` and ``-shm``) to ``<name>.<tag>-<UTC time>``."""
    aside = path.with_name(f"{path.name}.{tag}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}")
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    return aside


def set_aside_damaged(root: str | Path) -> tuple[Path, str] | None:
    """When the catalog of ``root`` is damaged, move it aside (``catalog.sqlite.corrupt-<time>``,
    never deleted): ``(where it went, what was wrong)``; ``None`` when it reads well."""
    path = catalog_path(root)
    why = catalog_damage(path)
    return (_aside(path, "corrupt"), why) if why else None


def restore_backup(root: str | Path, backup: str | Path) -> Path | None:
    """Make the catalog copy ``backup`` the catalog of ``root``; the catalog it replaces is moved aside
    (``catalog.sqlite.replaced-<time>``, returned; ``None`` when there was none)."""
    backup = Path(backup)
    if not backup.is_file():
        raise SegDashError(f"{backup}: no such catalog copy")
    why = catalog_damage(backup)
    if why:
        raise SegDashError(f"{backup}: not a catalog copy SegDash can read ({why})")
    path = catalog_path(root)
    staged = path.with_name(f".{path.name}.restoring.tmp")
    copy_catalog(backup, staged)
    try:
        Catalog(staged).close()  # its tables as this SegDash reads them, all in the one file
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    replaced = _aside(path, "replaced") if path.exists() else None
    os.replace(staged, path)
    return replaced
