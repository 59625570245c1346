"""Copies of the catalog in ``<workspace>/backups/``: ``catalog-<UTC time>.sqlite``, made with SQLite's
online backup API (a consistent copy while other processes write), the last N kept.

A copy is made when the workspace opens in the app or for a command that writes (``import``,
``train``, ``delete``, ``repair``), and while the app runs, whenever the newest copy is a day old:
at most one a day, so a burst of commands never pushes the older copies out. A catalog with no
dataset and no run is not copied (an emptied catalog never replaces a good copy). N is
``SEGDASH_CATALOG_BACKUPS`` (default 7; 0 turns copies off). ``python -m core repair`` lists them and
``repair --from-backup FILE`` starts from one.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from ..data.files import AtomicFile
from .catalog import Catalog
from .layout import backups_dir

__all__ = ["backup_catalog", "list_backups", "keep_count", "BACKUP_EVERY_S", "KEEP_ENV"]

log = logging.getLogger(__name__)

BACKUP_EVERY_S = 24 * 3600
KEEP_ENV = "SEGDASH_CATALOG_BACKUPS"
_DEFAULT_KEEP = 7
_NAME_RE = re.compile(r"^catalog-\d{8}-\d{6}-\d{3}\.sqlite$")


def keep_count() -> int:
    """How many copies are kept: ``$SEGDASH_CATALOG_BACKUPS`` (default 7, 0: none)."""
    raw = os.environ.get(KEEP_ENV, "").strip()
    try:
        return max(0, int(raw)) if raw else _DEFAULT_KEEP
    except ValueError:
        log.warning("%s=%r is not a whole number: keeping %d catalog copies", KEEP_ENV, raw, _DEFAULT_KEEP)
        return _DEFAULT_KEEP


def list_backups(root: str | Path) -> list[Path]:
    """The catalog copies of the workspace at ``root``, newest first."""
    folder = backups_dir(root)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if _NAME_RE.match(p.name)), key=lambda p: p.name, reverse=True)


def backup_catalog(root: str | Path, catalog: Catalog, *, force: bool = False, now: float | None = None) -> Path | None:
    """Copy ``catalog`` into ``root/backups/`` when due (no copy yet, or the newest a day old) or
    ``force``, then keep the newest :func:`keep_count`; returns the new copy, or ``None``."""
    keep = keep_count()
    now = time.time() if now is None else now
    existing = list_backups(root)
    if keep == 0 or (not force and existing and now - existing[0].stat().st_mtime < BACKUP_EVERY_S):
        return None
    if not catalog.dataset_names() and not catalog.runs():
        return None
    target = _target(root, now)
    while target.exists():  # two copies in one millisecond
        now += 0.001
        target = _target(root, now)
    out = AtomicFile(target)
    try:
        catalog.backup_to(out.tmp)
        out.commit()
        os.utime(target, (now, now))
    except BaseException:
        out.discard()
        raise
    for old in list_backups(root)[keep:]:
        old.unlink(missing_ok=True)
    return target


def _target(root: str | Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
    return backups_dir(root) / f"catalog-{stamp}-{int(now * 1000) % 1000:03d}.sqlite"
