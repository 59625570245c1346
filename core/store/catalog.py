"""SQLite catalog of a workspace: datasets, slices, mask versions, training runs, epoch metrics.

:class:`Catalog` is the one object the store reads and writes the catalog through, each by a named
method: the datasets, their claims, pixel sizes and volumes here; the rest in row modules it holds
(composed, each over the same :class:`~core.store.catalog_db.CatalogDb`): slices and mask versions in
:class:`~core.store.mask_rows.MaskRows` (``mask_rows``), runs and epochs in
:class:`~core.store.run_rows.RunRows` (``run_rows``), the rows repair adds in
:class:`~core.store.recovered_rows.RecoveredRows` (``recovered``). Only these modules and
:mod:`~core.store.schema` hold SQL (``tests/core/test_package.py`` checks it). Code outside
``core/store`` never reaches the catalog: it calls :class:`~core.store.workspace.Workspace`.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..data.owner import Owner, is_gone
from .catalog_db import (
    REPAIR_HINT,
    CatalogDamaged,
    CatalogDb,
    WorkspaceError,
    catalog_damage,
    copy_catalog,
    user_error,
)
from .forward import forward
from .layout import dataset_dir, mask_file
from .mask_rows import MaskRows
from .meta import update_meta
from .records import RunRecord
from .recovered_rows import RecoveredRows
from .run_rows import RunRows
from .schema import (
    ACTIVE_RUN_STATES,
    ADDED_COLUMNS,
    PIXEL_SCHEMA,
    RUN_ORIGINS,
    RUN_STATES,
    SCHEMA,
    SLICE_STATUSES,
    VOLUME_SCHEMA,
)

__all__ = [
    "Catalog",
    "WorkspaceError",
    "CatalogDamaged",
    "REPAIR_HINT",
    "catalog_damage",
    "copy_catalog",
    "SLICE_STATUSES",
    "RUN_STATES",
    "ACTIVE_RUN_STATES",
    "RUN_ORIGINS",
]


class Catalog:
    """Thread-safe access to ``<workspace>/catalog.sqlite``, by named methods.

    Args:
        path: the SQLite file; created with its schema when missing.
    """

    def __init__(self, path: Path):
        self.db = CatalogDb(path)
        self.path = self.db.path
        self.mask_rows = MaskRows(self.db)
        self.run_rows = RunRows(self.db)
        self.recovered = RecoveredRows(self.db)
        try:
            self.db.connection().executescript(SCHEMA)  # idempotent; executescript manages its own commit
            self._migrate()
        except sqlite3.Error as exc:
            raise user_error(exc, self.path) from None

    def _migrate(self) -> None:
        """Add the columns of :data:`ADDED_COLUMNS` that an older workspace lacks.

        Mask versions saved before versions had a source and a parent get ``imported`` (version 1
        written with the dataset), ``accepted`` (from-prediction) or ``drawn``, and the previous
        version number as parent, in the transaction that adds those columns.
        """

        def missing(con: sqlite3.Connection) -> list[tuple[str, str, str]]:
            have: dict[str, set[str]] = {}
            for table, _, _ in ADDED_COLUMNS:
                if table not in have:
                    have[table] = {r["name"] for r in con.execute(f"PRAGMA table_info({table})")}
            return [c for c in ADDED_COLUMNS if c[1] not in have[c[0]]]

        if not missing(self.db.connection()):
            return
        with self.db.transaction() as con:  # checked again inside: another process may have just done it
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

    # -- the file ------------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, rolled back on error."""
        return self.db.transaction()

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        """The rows of one read (for the catalog modules and tests; other code calls a named method)."""
        return self.db.query(sql, params)

    def close(self) -> None:
        """Close this thread's connection (the last one to close folds the WAL into the file)."""
        self.db.close()

    def backup_to(self, dest: Path) -> None:
        """Copy the catalog to ``dest`` with SQLite's online backup API (consistent while others write)."""
        self.db.backup_to(dest)

    # -- datasets ----------------------------------------------------------------------------
    def claim_dataset(self, name: str, folder: str, owner: Owner | None = None) -> None:
        """Reserve ``name`` for an import in progress (written under ``folder``), in one transaction.

        A claim whose owner process is gone is taken over. ``WorkspaceError`` when a dataset or a
        live claim has the name already. The claimed name is not listed as a dataset.
        """
        owner = owner or Owner.current()
        with self.db.transaction() as con:
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
        with self.db.transaction() as con:
            con.execute(
                "DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?",
                (name, owner.pid, owner.host),
            )

    def claims(self) -> list[sqlite3.Row]:
        """Names reserved by imports in progress (or by crashed ones not yet cleaned)."""
        return self.db.query("SELECT * FROM dataset_claims ORDER BY created")

    def name_taken(self, name: str) -> bool:
        """A dataset or an import in progress has this name."""
        return bool(
            self.db.query(
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
        with self.db.transaction() as con:
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
                con.execute(VOLUME_SCHEMA)
                con.execute("INSERT INTO dataset_volumes VALUES (?,?,?)", (name, str(volume[0]), volume[1]))

    def dataset_row(self, name: str) -> sqlite3.Row | None:
        rows = self.db.query("SELECT * FROM datasets WHERE name=?", (name,))
        return rows[0] if rows else None

    def dataset_names(self) -> list[str]:
        return [r["name"] for r in self.db.query("SELECT name FROM datasets ORDER BY created")]

    def set_class_names(self, name: str, class_names: list[str]) -> None:
        with self.db.transaction() as con:
            con.execute("UPDATE datasets SET class_names=? WHERE name=?", (json.dumps(class_names), name))

    def rename_dataset(self, old: str, new: str) -> None:
        """Rename in every table (and release this process's claim on ``new``, if it holds one)."""
        owner = Owner.current()
        with self.db.transaction() as con:
            con.execute(
                "DELETE FROM dataset_claims WHERE name=? AND owner_pid=? AND owner_host=?", (new, owner.pid, owner.host)
            )
            con.execute("UPDATE datasets SET name=? WHERE name=?", (new, old))
            con.execute("UPDATE runs SET dataset=? WHERE dataset=?", (new, old))

    def delete_dataset(self, name: str) -> None:
        with self.db.transaction() as con:
            con.execute("DELETE FROM datasets WHERE name=?", (name,))

    # -- physical pixel size (own table, created on first use: older workspaces open unchanged) --
    def set_pixel_size(self, name: str, z: float, y: float, x: float, unit: str) -> None:
        """Store a dataset's voxel size (``z`` slice step, ``y``, ``x``) in ``unit`` (``micrometer``...), also
        in its ``dataset.json`` (:mod:`core.store.meta`), which repair rebuilds from."""
        row = (float(z), float(y), float(x), str(unit))
        with self.db.transaction() as con:
            con.execute(PIXEL_SCHEMA)
            con.execute("INSERT OR REPLACE INTO dataset_pixel_size VALUES (?,?,?,?,?)", (name, *row))
        update_meta(dataset_dir(self.path.parent, name), pixel_size=list(row))

    def pixel_size(self, name: str) -> tuple[float, float, float, str] | None:
        """``(z, y, x, unit)`` of a dataset, or ``None`` when its source did not say."""
        try:
            rows = self.db.query("SELECT z, y, x, unit FROM dataset_pixel_size WHERE dataset=?", (name,))
        except sqlite3.OperationalError:  # no such table: nothing stored yet in this workspace
            return None
        return (rows[0]["z"], rows[0]["y"], rows[0]["x"], rows[0]["unit"]) if rows else None

    def volume(self, name: str) -> tuple[str, int | None] | None:
        """``(path, channel)`` of the Zarr volume a dataset imported by reference reads, or ``None``."""
        try:
            rows = self.db.query("SELECT path, channel FROM dataset_volumes WHERE dataset=?", (name,))
        except sqlite3.OperationalError:  # no such table: no dataset was imported by reference here
            return None
        return (rows[0]["path"], rows[0]["channel"]) if rows else None

    # -- slices and mask versions (:class:`~core.store.mask_rows.MaskRows`) ----------------------
    def slices(self, name: str) -> list[sqlite3.Row]:
        """The slices of ``name`` with ``labeled``, the share of pixels their current mask labels."""
        return self.mask_rows.slices(name)

    def current_version(self, name: str, z: int) -> sqlite3.Row | None:
        """The mask version slice ``z`` shows now, or ``None`` when unlabeled."""
        return self.mask_rows.current_version(name, z)

    def history(self, name: str, z: int) -> list[sqlite3.Row]:
        """Every mask version row of slice ``z``, oldest first."""
        return self.mask_rows.history(name, z)

    def version_count(self, name: str) -> int:
        """How many mask versions the slices of ``name`` have, all together."""
        return self.mask_rows.version_count(name)

    # -- runs and epochs (:class:`~core.store.run_rows.RunRows`) ----------------------------------
    create_run = forward("run_rows", RunRows.create_run)

    def heartbeat(self, run_id: str) -> None:
        """The owner of ``run_id`` is alive now."""
        self.run_rows.heartbeat(run_id)

    def beat(self, run_id: str, progress: dict[str, Any] | None = None, state: str | None = None) -> bool:
        """A heartbeat with progress and state; whether a stop was requested (:meth:`RunRows.beat`)."""
        return self.run_rows.beat(run_id, progress, state)

    def request_stop(self, run_id: str) -> None:
        """Ask the process that trains ``run_id`` to stop it."""
        self.run_rows.request_stop(run_id)

    def mark_interrupted(self) -> list[str]:
        """Write ``interrupted`` into active runs whose owner is gone; returns their ids."""
        return self.run_rows.mark_interrupted()

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run (:meth:`RunRows.update_run <core.store.run_rows.RunRows.update_run>`)."""
        self.run_rows.update_run(run_id, **fields)

    def add_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Record one epoch's metrics of a run."""
        self.run_rows.add_epoch(run_id, epoch, metrics)

    def run(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, or ``None``."""
        return self.run_rows.run(run_id)

    def runs(self, dataset: str | None = None, active: bool = False) -> list[RunRecord]:
        """Runs, newest first, optionally of one dataset, optionally only the active ones."""
        return self.run_rows.runs(dataset, active)

    def epochs(self, run_id: str) -> list[dict[str, float]]:
        """Per-epoch metrics of a run, in epoch order, each with its ``epoch`` key."""
        return self.run_rows.epochs(run_id)

    def epoch_counts(self, run_ids: list[str] | None = None) -> dict[str, int]:
        """Number of recorded epochs of each run (all runs, or those of ``run_ids``)."""
        return self.run_rows.epoch_counts(run_ids)

    def delete_run(self, run_id: str) -> None:
        self.run_rows.delete_run(run_id)

    # -- what repair adds (:class:`~core.store.recovered_rows.RecoveredRows`) -----------------------
    def version_files(self, name: str) -> set[str]:
        """The mask version files of ``name`` the catalog lists (relative to its folder)."""
        return self.recovered.version_files(name)

    def recover_dataset(self, name: str, meta: dict, versions: list[dict]) -> bool:
        """Record a dataset found on disk without a row (:meth:`RecoveredRows.recover_dataset`)."""
        return self.recovered.recover_dataset(name, meta, versions)

    def recover_versions(self, name: str, versions: list[dict]) -> None:
        """Add mask versions found on disk without a row."""
        self.recovered.recover_versions(name, versions)

    def recover_run(self, run: dict, epochs: list[dict]) -> bool:
        """Record a run found on disk with its epochs; whether a row was added."""
        return self.recovered.recover_run(run, epochs)
