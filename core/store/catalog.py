"""SQLite catalog of a workspace: datasets, slices, mask versions, training runs, epoch metrics.

One file ``catalog.sqlite`` in WAL mode, opened with a connection per thread (sqlite3 objects may not
cross threads), a generous busy timeout, and short ``BEGIN IMMEDIATE`` transactions, so two browser
sessions and a training thread can write at once without losing a row.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..data.owner import Owner, is_gone
from ..errors import SegDashError
from .layout import dataset_dir, mask_file
from .meta import update_meta
from .recovered_rows import RecoveredRows
from .run_rows import RunRows
from .schema import (
    _ADDED_COLUMNS,
    _PIXEL_SCHEMA,
    _SCHEMA,
    _VOLUME_SCHEMA,
    ACTIVE_RUN_STATES,
    RUN_ORIGINS,
    RUN_STATES,
    SLICE_STATUSES,
)

__all__ = [
    "Catalog",
    "WorkspaceError",
    "CatalogDamaged",
    "catalog_damage",
    "copy_catalog",
    "SLICE_STATUSES",
    "RUN_STATES",
    "ACTIVE_RUN_STATES",
    "RUN_ORIGINS",
]

#: what ``python -m core repair`` is called, in every message about a damaged catalog
REPAIR_HINT = "run python -m core repair (or Repair in the app) to rebuild it from the dataset and run folders"


class WorkspaceError(SegDashError):
    """The workspace cannot do what was asked, for a reason the user can act on: the disk is full,
    the folder is not writable, the name is taken. A ``ValueError``: pages show it, the CLI exits 2."""


class CatalogDamaged(WorkspaceError):
    """The catalog file is not a SQLite database any more, or a damaged one: every page and command
    says so with the repair command (``python -m core repair``), which moves it aside and rebuilds."""


class Catalog(RunRows, RecoveredRows):
    """Thread-safe access to ``<workspace>/catalog.sqlite``: datasets, claims, slices and mask
    versions here; runs and epochs in :class:`~core.store.run_rows.RunRows`, the rows repair rebuilds
    and the backup copy in :class:`~core.store.recovered_rows.RecoveredRows`.

    Args:
        path: the SQLite file; created with its schema when missing.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        try:
            self._connection().executescript(_SCHEMA)  # idempotent; executescript manages its own commit
            self._migrate()
        except sqlite3.Error as exc:
            raise _user_error(exc, self.path) from None

    def _migrate(self) -> None:
        """Add the columns of :data:`_ADDED_COLUMNS` that an older workspace lacks.

        Mask versions saved before versions had a source and a parent get ``imported`` (version 1
        written with the dataset), ``accepted`` (from-prediction) or ``drawn``, and the previous
        version number as parent, in the transaction that adds those columns.
        """

        def missing(con: sqlite3.Connection) -> list[tuple[str, str, str]]:
            have: dict[str, set[str]] = {}
            for table, _, _ in _ADDED_COLUMNS:
                if table not in have:
                    have[table] = {r["name"] for r in con.execute(f"PRAGMA table_info({table})")}
            return [c for c in _ADDED_COLUMNS if c[1] not in have[c[0]]]

        if not missing(self._connection()):
            return
        with self.transaction() as con:  # checked again inside: another process may have just done it
            added = missing(con)
            for table, column, decl in added:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            if any(table == "mask_versions" for table, _, _ in added):
                con.execute(
                    "UPDATE mask_versions SET source = CASE "
                    "WHEN version = 1 AND created = (SELECT d.created FROM datasets d WHERE d.name = dataset) "
                    "THEN 'imported' WHEN status = 'from-prediction' THEN 'accepted' ELSE 'drawn' END "
                    "WHERE source = ''"
                )
                con.execute("UPDATE mask_versions SET parent = version - 1 WHERE parent IS NULL")

    # -- connections -------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
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
        con = self._connection()
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _user_error(exc, self.path) from None
        try:
            yield con
        except sqlite3.DatabaseError as exc:  # operational (disk full, read-only) or a damaged file
            if con.in_transaction:  # SQLite may have rolled back itself (disk full)
                with contextlib.suppress(sqlite3.Error):
                    con.execute("ROLLBACK")
            raise _user_error(exc, self.path) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        try:
            con.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise _user_error(exc, self.path) from None

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):
                raise _user_error(exc, self.path) from None
            raise

    # -- datasets ----------------------------------------------------------------------------
    def claim_dataset(self, name: str, folder: str, owner: Owner | None = None) -> None:
        """Reserve ``name`` for an import in progress (written under ``folder``), in one transaction.

        A claim whose owner process is gone is taken over. ``WorkspaceError`` when a dataset or a
        live claim has the name already. The claimed name is not listed as a dataset.
        """
        owner = owner or Owner.current()
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                raise WorkspaceError(f"a dataset named {name!r} exists already; choose another name or delete it first")
            row = con.execute("SELECT * FROM dataset_claims WHERE name=?", (name,)).fetchone()
            if row is not None and not is_gone(row["owner_pid"], row["owner_host"]):
                raise WorkspaceError(
                    f"a dataset named {name!r} exists already: another session is importing it now; choose another name"
                )
            con.execute(
                "INSERT OR REPLACE INTO dataset_claims VALUES (?,?,?,?,?)",
                (name, owner.pid, owner.host, folder, time.time()),
            )

    def release_claim(self, name: str, owner: Owner | None = None) -> None:
        """Drop ``owner``'s claim on ``name`` (no-op when it holds none)."""
        owner = owner or Owner.current()
        with self.transaction() as con:
            con.execute(
                "DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?",
                (name, owner.pid, owner.host),
            )

    def claims(self) -> list[sqlite3.Row]:
        """Names reserved by imports in progress (or by crashed ones not yet cleaned)."""
        return self.query("SELECT * FROM dataset_claims ORDER BY created")

    def name_taken(self, name: str) -> bool:
        """A dataset or an import in progress has this name."""
        return bool(
            self.query(
                "SELECT 1 FROM datasets WHERE name=? UNION SELECT 1 FROM dataset_claims WHERE name=?", (name, name)
            )
        )

    def add_dataset(
        self,
        name: str,
        shape: tuple[int, int, int],
        dtype: str,
        class_names: list[str],
        slice_names: list[str],
        statuses: list[str],
        source: str,
        notices: list[str],
        labeled: list[float | None] | None = None,
        volume: tuple[str, int | None] | None = None,
    ) -> None:
        """Record a dataset (and release this process's claim on its name, in the same transaction);
        ``labeled``: per slice the share of pixels its mask labels; ``volume``: ``(path, channel)`` of the
        Zarr volume its images are read from, for a dataset imported by reference."""
        labeled = labeled or [None] * len(statuses)
        now = time.time()
        owner = Owner.current()
        with self.transaction() as con:
            con.execute(
                "DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?",
                (name, owner.pid, owner.host),
            )
            con.execute(
                "INSERT INTO datasets VALUES (?,?,?,?,?,?,?,?,?)",
                (name, now, shape[0], shape[1], shape[2], dtype, json.dumps(class_names), source, json.dumps(notices)),
            )
            con.executemany(
                "INSERT INTO slices VALUES (?,?,?,?,?,?)",
                [
                    (name, z, n, s, 1 if s != "unlabeled" else 0, now)
                    for z, (n, s) in enumerate(zip(slice_names, statuses))
                ],
            )
            con.executemany(
                "INSERT INTO mask_versions (dataset, z, version, status, file, created, source, parent, labeled) "
                "VALUES (?,?,?,?,?,?,'imported',0,?)",
                [(name, z, 1, s, mask_file(z, 1), now, labeled[z]) for z, s in enumerate(statuses) if s != "unlabeled"],
            )
            if volume is not None:
                con.execute(_VOLUME_SCHEMA)
                con.execute("INSERT INTO dataset_volumes VALUES (?,?,?)", (name, str(volume[0]), volume[1]))

    def dataset_row(self, name: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM datasets WHERE name=?", (name,))
        return rows[0] if rows else None

    def dataset_names(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM datasets ORDER BY created")]

    def set_class_names(self, name: str, class_names: list[str]) -> None:
        with self.transaction() as con:
            con.execute("UPDATE datasets SET class_names=? WHERE name=?", (json.dumps(class_names), name))

    def rename_dataset(self, old: str, new: str) -> None:
        """Rename in every table (and release this process's claim on ``new``, if it holds one)."""
        owner = Owner.current()
        with self.transaction() as con:
            con.execute(
                "DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?", (new, owner.pid, owner.host)
            )
            con.execute("UPDATE datasets SET name=? WHERE name=?", (new, old))
            con.execute("UPDATE runs SET dataset=? WHERE dataset=?", (new, old))

    def delete_dataset(self, name: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM datasets WHERE name=?", (name,))

    # -- physical pixel size (own table, created on first use: older workspaces open unchanged) --
    def set_pixel_size(self, name: str, z: float, y: float, x: float, unit: str) -> None:
        """Store a dataset's voxel size (``z`` slice step, ``y``, ``x``) in ``unit`` (``micrometer``...), also
        in its ``dataset.json`` (:mod:`core.store.meta`), which repair rebuilds from."""
        row = (float(z), float(y), float(x), str(unit))
        with self.transaction() as con:
            con.execute(_PIXEL_SCHEMA)
            con.execute("INSERT OR REPLACE INTO dataset_pixel_size VALUES (?,?,?,?,?)", (name, *row))
        update_meta(dataset_dir(self.path.parent, name), pixel_size=list(row))

    def pixel_size(self, name: str) -> tuple[float, float, float, str] | None:
        """``(z, y, x, unit)`` of a dataset, or ``None`` when its source did not say."""
        try:
            rows = self.query("SELECT z, y, x, unit FROM dataset_pixel_size WHERE dataset=?", (name,))
        except sqlite3.OperationalError:  # no such table: nothing stored yet in this workspace
            return None
        return (rows[0]["z"], rows[0]["y"], rows[0]["x"], rows[0]["unit"]) if rows else None

    def volume(self, name: str) -> tuple[str, int | None] | None:
        """``(path, channel)`` of the Zarr volume a dataset imported by reference reads, or ``None``."""
        try:
            rows = self.query("SELECT path, channel FROM dataset_volumes WHERE dataset=?", (name,))
        except sqlite3.OperationalError:  # no such table: no dataset was imported by reference here
            return None
        return (rows[0]["path"], rows[0]["channel"]) if rows else None

    # -- slices and mask versions ------------------------------------------------------------
    # A slice's mask versions are append-only rows (one file each, never overwritten). Besides the
    # columns of the first schema, each row has ``source`` (imported, drawn, accepted:<run>,
    # model:<what>, restored:v<n>) and ``parent`` (the version current when it was saved: what it was
    # drawn on; 0 = an unlabeled slice). The slice's current version is ``slices.version`` (0 =
    # unlabeled): undo and redo move that pointer along ``parent``, so no version is ever dropped.
    def slices(self, name: str) -> list[sqlite3.Row]:
        """The slices of ``name`` with ``labeled``, the share of pixels their current mask labels."""
        return self.query(
            "SELECT s.*, m.labeled AS labeled FROM slices s LEFT JOIN mask_versions m ON m.dataset = s.dataset "
            "AND m.z = s.z AND m.version = s.version WHERE s.dataset=? ORDER BY s.z",
            (name,),
        )

    def next_version(self, con: sqlite3.Connection, name: str, z: int) -> int:
        row = con.execute("SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=?", (name, z)).fetchone()
        return int(row["v"] or 0) + 1

    def current_version(self, name: str, z: int, con: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """The mask version slice ``z`` shows now (``slices.version``), or ``None`` when unlabeled."""
        rows = (
            (con or self._connection())
            .execute(
                "SELECT m.* FROM mask_versions m JOIN slices s ON s.dataset = m.dataset AND s.z = m.z "
                "AND s.version = m.version WHERE m.dataset=? AND m.z=?",
                (name, z),
            )
            .fetchall()
        )
        return rows[0] if rows else None

    def version_row(self, name: str, z: int, version: int, con: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        rows = (
            (con or self._connection())
            .execute("SELECT * FROM mask_versions WHERE dataset=? AND z=? AND version=?", (name, z, version))
            .fetchall()
        )
        return rows[0] if rows else None

    def history(self, name: str, z: int) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM mask_versions WHERE dataset=? AND z=? ORDER BY version", (name, z))


def _is_damage(exc: sqlite3.Error) -> bool:
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
        if _is_damage(exc):
            return str(exc)
        raise _user_error(exc, Path(path)) from None
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


def _user_error(exc: sqlite3.Error, path: Path) -> Exception:
    """A SQLite error as the :class:`WorkspaceError` the user can act on, else unchanged."""
    text = str(exc).lower()
    folder = path.parent
    if _is_damage(exc):
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
