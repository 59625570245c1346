"""What interrupted processes left in a workspace, found and removed when it is opened: their import
folders and name claims, temporary files of atomic writes; their runs marked interrupted. Only what
belongs to a process that is gone."""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from pathlib import Path

from ..data.owner import Owner, host_token, is_gone
from .catalog import Catalog, WorkspaceError
from .layout import BEST, LAST, TMP_RE, WORK_DIR_RE, datasets_dir, runs_dir

__all__ = ["clean_leftovers"]

log = logging.getLogger("core.store.workspace")

_OLD_TMP_AGE_S = 24 * 3600  # a temporary file with no owner in its name is left over after this


def clean_leftovers(root: Path, catalog: Catalog) -> list[str]:
    """Remove what interrupted processes left: their import folders and name claims, temporary
    files of atomic writes; mark their runs interrupted. Only what belongs to a process that is
    gone. Returns the removed paths (relative to the root), for the record."""
    removed: list[str] = []
    for row in catalog.claims():
        if is_gone(row["owner_pid"], row["owner_host"]):
            if WORK_DIR_RE.match(row["folder"]):  # never a published dataset's folder
                _remove(root, datasets_dir(root) / row["folder"], removed)
            catalog.release_claim(row["name"], Owner(row["owner_pid"], row["owner_host"]))
    datasets = datasets_dir(root)
    if datasets.is_dir():
        for entry in datasets.iterdir():
            m = WORK_DIR_RE.match(entry.name)
            if m and entry.is_dir() and _owner_gone(m, entry):
                _remove(root, entry, removed)
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not WORK_DIR_RE.match(d)]
        for f in files:
            m = TMP_RE.match(f)
            if m and _owner_gone(m, Path(folder) / f):
                _remove(root, Path(folder) / f, removed)
    try:
        for run_id in catalog.mark_interrupted():
            _recover_checkpoints(root, catalog, run_id)
    except WorkspaceError:  # a full disk: the runs still read as interrupted
        pass
    if removed:
        log.info("removed leftovers of interrupted work in %s: %s", root, removed)
    return removed


def _recover_checkpoints(root: Path, catalog: Catalog, run_id: str) -> None:
    """Record the checkpoints an interrupted run saved but did not get to record (killed between
    writing ``last.pt`` and updating the catalog), so it can be resumed from them."""
    run = catalog.run(run_id)
    folder = runs_dir(root) / run_id
    found = {
        key: str(folder / name)
        for key, name in (("last_checkpoint", LAST), ("best_checkpoint", BEST))
        if run is not None and not run[key] and (folder / name).is_file()
    }
    if found:
        catalog.update_run(run_id, **found)


def _owner_gone(m: re.Match, path: Path) -> bool:
    """The process named in a leftover's name is gone. A name without one (an older SegDash) or
    from another host: only when the leftover is a day old."""
    if m["pid"] is None or (m["host"] and m["host"] != host_token()):
        try:
            return time.time() - path.stat().st_mtime > _OLD_TMP_AGE_S
        except OSError:
            return False
    return is_gone(int(m["pid"]), host_token())


def _remove(root: Path, path: Path, removed: list[str]) -> None:
    try:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            return
        removed.append(str(path.relative_to(root)))
    except OSError as exc:
        log.warning("could not remove leftover %s: %s", path, exc)
