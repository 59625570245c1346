"""The catalog's SQLite file: one connection per thread, write transactions, and its errors in the
user's words (:class:`WorkspaceError`, :class:`CatalogDamaged`). :class:`CatalogDb` is what every row
module of the catalog (:mod:`~core.store.catalog`, :mod:`~core.store.run_rows`,
:mod:`~core.store.mask_rows`, :mod:`~core.store.recovered_rows`) runs its SQL through.

One file ``catalog.sqlite`` in WAL mode, opened with a connection per thread (sqlite3 objects may not
cross threads), a generous busy timeout, and short ``BEGIN IMMEDIATE`` transactions, so two browser
sessions and a training thread can write at once without losing a row.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import SegDashError

__all__ = [
    "CatalogDb",
    "WorkspaceError",
    "CatalogDamaged",
    "REPAIR_HINT",
    "catalog_damage",
    "copy_catalog",
    "is_damage",
    "user_error",
]

#: what ``python -m core repair`` is called, in every message about a damaged catalog
REPAIR_HINT = "run python -m core repair (or Repair in the app) to rebuild it from the dataset and run folders"


class WorkspaceError(SegDashError):
    """The workspace cannot do what was asked, for a reason the user can act on: the disk is full,
    the folder is not writable, the name is taken. A ``ValueError``: pages show it, the CLI exits 2."""


class CatalogDamaged(WorkspaceError):
    """The catalog file is not a SQLite database any more, or a damaged one: every page and command
    says so with the repair command (``python -m core repair``), which moves it aside and rebuilds."""


class CatalogDb:
    """Thread-safe access to one SQLite file: a connection per thread (:meth:`connection`), write
    transactions (:meth:`transaction`), reads (:meth:`query`); SQLite's errors as the user's.

    Args:
        path: the SQLite file (created when missing, empty).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use: WAL, foreign keys on)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA foreign_keys=ON")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        con = self.connection()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise user_error(exc, self.path) from None
        try:
            yield con
        except sqlite3.DatabaseError as exc:  # operational (disk full, read-only) or a damaged file
            if con.in_transaction:  # SQLite may have rolled back itself (disk full)
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            raise user_error(exc, self.path) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise user_error(exc, self.path) from None

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """The rows of one read (a damaged file: :class:`CatalogDamaged`)."""
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if is_damage(exc):
                raise user_error(exc, self.path) from None
            raise

    def close(self) -> None:
        """Close this thread's connection (the last one to close folds the WAL into the file)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            con.close()
            self._local.con = None

    def backup_to(self, dest: Path) -> None:
        """Copy the file to ``dest`` with SQLite's online backup API (consistent while others write)."""
        out = sqlite3.connect(dest)
        try:
            self.connection().backup(out)
        finally:
            out.close()


def is_damage(exc: sqlite3.Error) -> bool:
    """``exc`` says the file is not a database, or a damaged one (SQLITE_CORRUPT, SQLITE_NOTADB)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    text = str(exc).lower()
    return code in (11, 26) or "not a database" in text or "malformed" in text


def catalog_damage(path: Path) -> str:
    """What is wrong with the catalog file at ``path``: ``""`` when it reads as a SQLite database whose
    pages check out (``PRAGMA quick_check``) or is missing, else SQLite's words."""
    if not Path(path).exists():
        return ""
    con = None
    try:
        con = sqlite3.connect(path, timeout=30.0)
        found = [r[0] for r in con.execute("PRAGMA quick_check").fetchall()]
        return "" if found == ["ok"] else "; ".join(str(f) for f in found[:3])
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            return str(exc)
        raise user_error(exc, Path(path)) from None
    finally:
        if con is not None:
            con.close()


def copy_catalog(source: Path, dest: Path) -> None:
    """Copy the SQLite catalog at ``source`` to ``dest`` with SQLite's online backup API: a consistent
    copy while other processes write. ``dest`` is replaced."""
    src, out = sqlite3.connect(source, timeout=30.0), sqlite3.connect(dest)
    try:
        src.backup(out)
    finally:
        out.close()
        src.close()


def user_error(exc: sqlite3.Error, path: Path) -> Exception:
    """A SQLite error as the :class:`WorkspaceError` the user can act on, else unchanged."""
    text = str(exc).lower()
    folder = path.parent
    if is_damage(exc):
        return CatalogDamaged(
            f"the workspace's catalog ({path.name}) is damaged ({exc}); nothing in the dataset and run "
            f"folders is lost: {REPAIR_HINT}"
        )
    if "full" in text:
        try:
            free = f"{shutil.disk_usage(folder).free / 2**20:.1f} MB free"
        except OSError:
            free = "no space free"
        return WorkspaceError(
            f"not enough space in {folder}: {free}; the catalog cannot be written ({exc}); free "
            "some space and try again"
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text or "permission" in text:
        return WorkspaceError(
            f"workspace folder {folder} is not writable: SegDash needs to write its catalog "
            f"there ({exc}); choose a writable folder with SEGDASH_WORKSPACE or --workspace"
        )
    return exc
