"""A workspace's datasets created, renamed and deleted, folders and catalog rows together: what
:class:`~core.store.workspace.Workspace`'s methods of the same names do.

On creation the name is claimed in the catalog first (one transaction), then everything is written under a
private work folder (:func:`work_folder`) that is published with one rename, then the catalog rows
are added: a second import of the same name is refused and cannot touch this one's files, and an
import that fails leaves nothing behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..data.io import write_png
from ..data.masks import UNLABELED, labeled_fraction
from ..data.owner import Owner
from ..errors import SegDashError
from . import layout
from .catalog import Catalog, WorkspaceError
from .layout import validate_name
from .meta import write_meta
from .records import DatasetInfo
from .recovery import unlisted_folder_error
from .space import space_for, write_stack

__all__ = ["create_dataset", "rename_dataset", "delete_dataset", "deletion_summary", "work_folder"]

log = logging.getLogger("core.store.workspace")


def work_folder(root: Path, name: str, kind: str) -> Path:
    """A private folder of this process for work on dataset ``name`` (``importing``, ``deleting``):
    named so that :mod:`core.store.leftovers` removes it once the process is gone."""
    return layout.work_dir(root, name, kind, Owner.current().token(), time.time_ns())


def create_dataset(
    root: Path,
    catalog: Catalog,
    name: str,
    images: np.ndarray,
    masks: Sequence[np.ndarray | None] | np.ndarray | None,
    class_names: Sequence[str],
    slice_names: Sequence[str | None] | None = None,
    *,
    source: str = "",
    notices: Sequence[str] = (),
    by_reference: bool = False,
) -> None:
    """Store a new dataset in the workspace at ``root`` with catalog ``catalog``.

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
    if catalog.dataset_row(name) is not None:
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
    final = layout.dataset_dir(root, name)
    tmp = work_folder(root, name, "importing")
    n_masks = sum(m is not None for m in mask_list)
    volume = (str(getattr(images, "path", "")), getattr(images, "channel", None)) if by_reference else None
    if volume is not None and not volume[0]:
        raise SegDashError("only a Zarr volume opened from a path (core.data.chunked.open_volume) is referenced")
    image_bytes = 0 if by_reference else z * h * w * np.dtype(images.dtype).itemsize
    needed = image_bytes + z * 512 + n_masks * (h * w // 8 + 1024)
    catalog.claim_dataset(name, tmp.name)
    published = False
    try:
        if final.exists():  # checked holding the name: no import of it is publishing now
            raise unlisted_folder_error(name)
        with space_for(root, needed):
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
                raise unlisted_folder_error(name)
            os.replace(tmp, final)
            published = True
            catalog.add_dataset(
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
            catalog.release_claim(name)
        except Exception:  # noqa: BLE001 - the next open cleans the claim of a process that is gone
            log.warning("could not release the claim on %r", name, exc_info=True)
        raise


def rename_dataset(root: Path, catalog: Catalog, old: str, new: str) -> None:
    """Rename dataset ``old`` (which exists) to ``new``: its folder, its predictions and every catalog reference."""
    validate_name(new)
    catalog.claim_dataset(new, "")  # refuses a taken name; no folder of its own to clean
    try:
        if layout.dataset_dir(root, new).exists():  # a dataset the catalog lost: never ours to remove
            raise unlisted_folder_error(new)
        os.replace(layout.dataset_dir(root, old), layout.dataset_dir(root, new))
        try:
            catalog.rename_dataset(old, new)  # also releases the claim
        except BaseException:
            os.replace(layout.dataset_dir(root, new), layout.dataset_dir(root, old))
            raise
    finally:
        catalog.release_claim(new)
    old_preds, new_preds = layout.predictions_dir(root, old), layout.predictions_dir(root, new)
    if old_preds.is_dir() and not new_preds.exists():
        os.replace(old_preds, new_preds)  # predictions follow their dataset


def delete_dataset(root: Path, catalog: Catalog, name: str) -> None:
    """Delete dataset ``name`` (which exists) and its masks; runs and their checkpoints are kept.

    The catalog entry goes first, then the folder is renamed aside and removed: a crash in
    between leaves a ``.<name>.deleting-*`` folder that the next open removes.
    """
    catalog.delete_dataset(name)
    folder = layout.dataset_dir(root, name)
    if folder.exists():
        aside = work_folder(root, name, "deleting")
        try:
            os.replace(folder, aside)
        except OSError:
            aside = folder
        shutil.rmtree(aside, ignore_errors=True)


def deletion_summary(info: DatasetInfo, n_versions: int, n_runs: int) -> str:
    """What deleting the dataset ``info`` (with ``n_versions`` mask versions, ``n_runs`` runs) removes and keeps."""
    masked = info.counts()["slices"] - info.counts()["unlabeled"]
    images = f"its {info.shape[0]} images"
    if info.volume:
        images = f"its reference to {info.volume} (the volume is kept)"
    return (
        f"deleting dataset {info.name!r} removes {images}, the masks of {masked} slices and "
        f"all {n_versions} saved mask versions for good; its {n_runs} training run"
        f"{'s' if n_runs != 1 else ''} and their checkpoints are kept"
    )
