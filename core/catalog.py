"""SQLite catalog of a workspace: datasets, slices, mask versions, training runs, epoch metrics.

One file ``catalog.sqlite`` in WAL mode, opened with a connection per thread (sqlite3 objects may not
cross threads), a generous busy timeout, and short ``BEGIN IMMEDIATE`` transactions, so two browser
sessions and a training thread can write at once without losing a row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

__all__ = ["Catalog", "SLICE_STATUSES"]

SLICE_STATUSES = ("unlabeled", "labeled", "edited", "from-prediction")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    created REAL NOT NULL,
    n_slices INTEGER NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    dtype TEXT NOT NULL,
    class_names TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    notices TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS slices (
    dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    updated REAL NOT NULL,
    PRIMARY KEY (dataset, z)
);
CREATE TABLE IF NOT EXISTS mask_versions (
    dataset TEXT NOT NULL REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z INTEGER NOT NULL,
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    file TEXT NOT NULL,
    created REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dataset, z, version)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    created REAL NOT NULL,
    state TEXT NOT NULL,
    config TEXT NOT NULL,
    device TEXT NOT NULL DEFAULT '',
    dataset_version TEXT NOT NULL DEFAULT '',
    best_checkpoint TEXT NOT NULL DEFAULT '',
    last_checkpoint TEXT NOT NULL DEFAULT '',
    best_dice REAL,
    wall_time REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""

_RUN_FIELDS = ("state", "device", "dataset_version", "best_checkpoint", "last_checkpoint",
               "best_dice", "wall_time", "error", "config", "extra")


class Catalog:
    """Thread-safe access to ``<workspace>/catalog.sqlite``.

    Args:
        path: the SQLite file; created with its schema when missing.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._local = threading.local()
        self._connection().executescript(_SCHEMA)  # idempotent; executescript manages its own commit
        self._migrate_mask_versions()

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
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._connection().execute(sql, params).fetchall()

    # -- datasets ----------------------------------------------------------------------------
    def add_dataset(self, name: str, shape: tuple[int, int, int], dtype: str, class_names: list[str],
                    slice_names: list[str], statuses: list[str], source: str, notices: list[str]) -> None:
        now = time.time()
        with self.transaction() as con:
            con.execute("INSERT INTO datasets VALUES (?,?,?,?,?,?,?,?,?)",
                        (name, now, shape[0], shape[1], shape[2], dtype, json.dumps(class_names),
                         source, json.dumps(notices)))
            con.executemany("INSERT INTO slices VALUES (?,?,?,?,?,?)",
                            [(name, z, n, s, 1 if s != "unlabeled" else 0, now)
                             for z, (n, s) in enumerate(zip(slice_names, statuses))])
            con.executemany("INSERT INTO mask_versions (dataset, z, version, status, file, created, source, parent) "
                            "VALUES (?,?,?,?,?,?,'imported',0)",
                            [(name, z, 1, s, f"masks/{z:05d}.v1.png", now)
                             for z, s in enumerate(statuses) if s != "unlabeled"])

    def dataset_row(self, name: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM datasets WHERE name=?", (name,))
        return rows[0] if rows else None

    def dataset_names(self) -> list[str]:
        return [r["name"] for r in self.query("SELECT name FROM datasets ORDER BY created")]

    def set_class_names(self, name: str, class_names: list[str]) -> None:
        with self.transaction() as con:
            con.execute("UPDATE datasets SET class_names=? WHERE name=?", (json.dumps(class_names), name))

    def rename_dataset(self, old: str, new: str) -> None:
        with self.transaction() as con:
            con.execute("UPDATE datasets SET name=? WHERE name=?", (new, old))
            con.execute("UPDATE runs SET dataset=? WHERE dataset=?", (new, old))

    def delete_dataset(self, name: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM datasets WHERE name=?", (name,))

    # -- slices and mask versions ------------------------------------------------------------
    # A slice's mask versions are append-only rows (one file each, never overwritten). Besides the
    # columns of the first schema, each row has ``source`` (imported, drawn, accepted:<run>,
    # model:<what>, restored:v<n>) and ``parent`` (the version current when it was saved: what it was
    # drawn on; 0 = an unlabeled slice). The slice's current version is ``slices.version`` (0 =
    # unlabeled): undo and redo move that pointer along ``parent``, so no version is ever dropped.
    _MASK_COLUMNS = (("source", "TEXT NOT NULL DEFAULT ''"), ("parent", "INTEGER"))

    def _migrate_mask_versions(self) -> None:
        """Add the columns a workspace made before versions had a source and a parent lacks.

        Old rows get ``imported`` (version 1 written with the dataset), ``accepted`` (from-prediction)
        or ``drawn``, and the previous version number as parent.
        """
        con = self._connection()
        have = {r["name"] for r in con.execute("PRAGMA table_info(mask_versions)")}
        missing = [(c, t) for c, t in self._MASK_COLUMNS if c not in have]
        if not missing:
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            have = {r["name"] for r in con.execute("PRAGMA table_info(mask_versions)")}  # another process?
            for column, decl in self._MASK_COLUMNS:
                if column not in have:
                    con.execute(f"ALTER TABLE mask_versions ADD COLUMN {column} {decl}")
            con.execute("UPDATE mask_versions SET source = CASE "
                        "WHEN version = 1 AND created = (SELECT d.created FROM datasets d WHERE d.name = dataset) "
                        "THEN 'imported' WHEN status = 'from-prediction' THEN 'accepted' ELSE 'drawn' END "
                        "WHERE source = ''")
            con.execute("UPDATE mask_versions SET parent = version - 1 WHERE parent IS NULL")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def slices(self, name: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM slices WHERE dataset=? ORDER BY z", (name,))

    def next_version(self, con: sqlite3.Connection, name: str, z: int) -> int:
        row = con.execute("SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=?",
                          (name, z)).fetchone()
        return int(row["v"] or 0) + 1

    def current_version(self, name: str, z: int, con: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """The mask version slice ``z`` shows now (``slices.version``), or ``None`` when unlabeled."""
        rows = (con or self._connection()).execute(
            "SELECT m.* FROM mask_versions m JOIN slices s ON s.dataset = m.dataset AND s.z = m.z "
            "AND s.version = m.version WHERE m.dataset=? AND m.z=?", (name, z)).fetchall()
        return rows[0] if rows else None

    def version_row(self, name: str, z: int, version: int, con: sqlite3.Connection | None = None
                    ) -> sqlite3.Row | None:
        rows = (con or self._connection()).execute(
            "SELECT * FROM mask_versions WHERE dataset=? AND z=? AND version=?", (name, z, version)).fetchall()
        return rows[0] if rows else None

    def history(self, name: str, z: int) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM mask_versions WHERE dataset=? AND z=? ORDER BY version", (name, z))

    # -- runs --------------------------------------------------------------------------------
    def create_run(self, run_id: str, dataset: str, config: dict[str, Any], state: str = "queued") -> None:
        with self.transaction() as con:
            con.execute("INSERT INTO runs (run_id, dataset, created, state, config) VALUES (?,?,?,?,?)",
                        (run_id, dataset, time.time(), state, json.dumps(config)))

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run: any of state, device, dataset_version, best_checkpoint,
        last_checkpoint, best_dice, wall_time, error, config (dict), extra (dict)."""
        unknown = set(fields) - set(_RUN_FIELDS)
        if unknown:
            raise ValueError(f"unknown run fields: {sorted(unknown)}")
        if not fields:
            return
        values = [json.dumps(v) if k in ("config", "extra") else v for k, v in fields.items()]
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as con:
            con.execute(f"UPDATE runs SET {sets} WHERE run_id=?", (*values, run_id))

    def add_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        with self.transaction() as con:
            con.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?)", (run_id, epoch, json.dumps(metrics)))

    def run(self, run_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM runs WHERE run_id=?", (run_id,))
        return _run_dict(rows[0]) if rows else None

    def runs(self, dataset: str | None = None) -> list[dict[str, Any]]:
        """Runs, newest first, optionally of one dataset."""
        if dataset is None:
            rows = self.query("SELECT * FROM runs ORDER BY created DESC")
        else:
            rows = self.query("SELECT * FROM runs WHERE dataset=? ORDER BY created DESC", (dataset,))
        return [_run_dict(r) for r in rows]

    def epochs(self, run_id: str) -> list[dict[str, float]]:
        """Per-epoch metrics of a run, in epoch order, each with its ``epoch`` key."""
        rows = self.query("SELECT epoch, metrics FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,))
        return [{"epoch": r["epoch"], **json.loads(r["metrics"])} for r in rows]

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as con:
            con.execute("DELETE FROM runs WHERE run_id=?", (run_id,))


def _run_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["config"] = json.loads(out["config"])
    out["extra"] = json.loads(out["extra"])
    return out
