"""Every path and file name under a workspace root, spelled once (pure functions, nothing created).

Layout::

    catalog.sqlite                      datasets, slices, mask versions, runs, epoch metrics
    datasets/<name>/images.tif          (Z, Y, X) uncompressed TIFF in the original dtype (memory-mapped);
                                        none for a Zarr imported by reference (core.store.volumes)
    datasets/<name>/masks/<z>.v<n>.png  version n of slice z's mask: uint8 class indices 0..K-1
    datasets/<name>/dataset.json        what the catalog knows of it (classes, slice names, source, a
                                        referenced volume's path), for ``repair`` (core.store.recovery)
    backups/catalog-<time>.sqlite       the last copies of the catalog (core.store.backups)
    runs/<run_id>/                      best.pt, last.pt, bundle.zip of a training run
    predictions/<name>/<run_id>/        masks.tif, prob.tif, summary.json of a stored prediction

Example:
    >>> mask_file(3, 2)
    'masks/00003.v2.png'
    >>> prediction_dir("/ws", "cells", "run-1").as_posix()
    '/ws/predictions/cells/run-1'
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import SegDashError

__all__ = [
    "CATALOG",
    "IMAGES",
    "MASKS_DIR",
    "DATASET_META",
    "MASK_FILE_RE",
    "BEST",
    "LAST",
    "BUNDLE",
    "PRED_MASKS",
    "PRED_PROB",
    "PRED_SUMMARY",
    "validate_name",
    "catalog_path",
    "datasets_dir",
    "backups_dir",
    "dataset_dir",
    "images_path",
    "mask_file",
    "runs_dir",
    "run_dir",
    "predictions_dir",
    "prediction_dir",
    "work_dir",
    "WORK_DIR_RE",
    "TMP_RE",
]

CATALOG = "catalog.sqlite"
_DATASETS, _RUNS, _PREDICTIONS = "datasets", "runs", "predictions"
IMAGES = "images.tif"
MASKS_DIR = "masks"
DATASET_META = "dataset.json"  # in a dataset's folder: its catalog entry, for repair
_BACKUPS = "backups"
BEST, LAST, BUNDLE = "best.pt", "last.pt", "bundle.zip"  # in a run's folder
PRED_MASKS, PRED_PROB, PRED_SUMMARY = "masks.tif", "prob.tif", "summary.json"  # in a prediction's folder

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: folders of an import or a delete in progress: datasets/.<name>.importing-<host>-<pid>-<ns>
WORK_DIR_RE = re.compile(r"^\.(?P<name>.+)\.(?:importing|deleting)-(?:(?P<host>[A-Za-z0-9]+)-)?(?P<pid>\d+)-\d+$")
#: temporary files of core.data.files.atomic_write: .<file name>.<host>-<pid>.<random>.tmp (older: no owner)
#: a mask version's file (or its provenance, ``src``) in a dataset's ``masks/`` folder
MASK_FILE_RE = re.compile(r"^(?P<z>\d+)\.v(?P<version>\d+)(?P<src>\.src)?\.png$")
TMP_RE = re.compile(r"^\..+?\.(?:(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)\.)?[A-Za-z0-9_]+\.tmp$")


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name (letters, digits, ``._-``; 1-64 chars)."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SegDashError(
            f"dataset name {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def catalog_path(root: str | Path) -> Path:
    return Path(root) / CATALOG


def datasets_dir(root: str | Path) -> Path:
    return Path(root) / _DATASETS


def backups_dir(root: str | Path) -> Path:
    return Path(root) / _BACKUPS


def dataset_dir(root: str | Path, name: str) -> Path:
    return datasets_dir(root) / validate_name(name)


def images_path(root: str | Path, name: str) -> Path:
    return dataset_dir(root, name) / IMAGES


def mask_file(z: int, version: int) -> str:
    """Version ``version`` of slice ``z``'s mask, relative to its dataset's folder (as the catalog stores it)."""
    return f"{MASKS_DIR}/{int(z):05d}.v{int(version)}.png"


def provenance_file(mask_path: str) -> str:
    """The per-pixel provenance beside a mask version file (:mod:`core.data.provenance`)."""
    return mask_path.removesuffix(".png") + ".src.png"


def runs_dir(root: str | Path) -> Path:
    return Path(root) / _RUNS


def run_dir(root: str | Path, run_id: str) -> Path:
    return runs_dir(root) / validate_name(run_id)


def predictions_dir(root: str | Path, dataset: str) -> Path:
    """Folder of every stored prediction of ``dataset``."""
    return Path(root) / _PREDICTIONS / validate_name(dataset)


def prediction_dir(root: str | Path, dataset: str, run_id: str) -> Path:
    return predictions_dir(root, dataset) / validate_name(run_id)


def work_dir(root: str | Path, name: str, kind: str, owner_token: str, ns: int) -> Path:
    """Private folder of an import (``kind="importing"``) or a delete (``"deleting"``) in progress."""
    return datasets_dir(root) / f".{name}.{kind}-{owner_token}-{ns}"
