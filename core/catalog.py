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

_PIXEL_SCHEMA = """
CREATE TABLE IF NOT EXISTS dataset_pixel_size (
    dataset TEXT PRIMARY KEY REFERENCES datasets(name) ON DELETE CASCADE ON UPDATE CASCADE,
    z REAL NOT NULL,
    y REAL NOT NULL,
    x REAL NOT NULL,
    unit TEXT NOT NULL
)"""

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
            con.executemany("INSERT INTO mask_versions VALUES (?,?,?,?,?,?,0)",
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

    # -- physical pixel size (own table, created on first use: older workspaces open unchanged) --
    def set_pixel_size(self, name: str, z: float, y: float, x: float, unit: str) -> None:
        """Store a dataset's voxel size (``z`` slice step, ``y``, ``x``) in ``unit`` (``micrometer``...)."""
        with self.transaction() as con:
            con.execute(_PIXEL_SCHEMA)
            con.execute("INSERT OR REPLACE INTO dataset_pixel_size VALUES (?,?,?,?,?)",
                        (name, float(z), float(y), float(x), str(unit)))

    def pixel_size(self, name: str) -> tuple[float, float, float, str] | None:
        """``(z, y, x, unit)`` of a dataset, or ``None`` when its source did not say."""
        try:
            rows = self.query("SELECT z, y, x, unit FROM dataset_pixel_size WHERE dataset=?", (name,))
        except sqlite3.OperationalError:  # no such table: nothing stored yet in this workspace
            return None
        return (rows[0]["z"], rows[0]["y"], rows[0]["x"], rows[0]["unit"]) if rows else None

    # -- slices and mask versions ------------------------------------------------------------
    def slices(self, name: str) -> list[sqlite3.Row]:
        return self.query("SELECT * FROM slices WHERE dataset=? ORDER BY z", (name,))

    def next_version(self, con: sqlite3.Connection, name: str, z: int) -> int:
        row = con.execute("SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=?",
                          (name, z)).fetchone()
        return int(row["v"] or 0) + 1

    def current_version(self, name: str, z: int) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM mask_versions WHERE dataset=? AND z=? AND undone=0 "
                          "ORDER BY version DESC LIMIT 1", (name, z))
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
