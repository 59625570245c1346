"""The catalog's training runs and their epochs (all their SQL): :class:`RunRows`, what
:class:`~core.store.catalog.Catalog` records a run through, from its creation to its outcome.

A run's row belongs to the process that trains it (``owner_pid``, ``owner_host``, and ``origin``:
the dashboard, the command line, ...). That process beats (:meth:`RunRows.beat`) every few
seconds: the heartbeat time, its progress (epoch, step, ETA) and its state go into the row, and a
stop asked by any other process (:meth:`RunRows.request_stop`) comes back, so a run is seen live
and can be stopped from every process that opens the workspace.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from ..data.owner import Owner, is_gone
from ..errors import SegDashError
from .catalog_db import CatalogDb
from .records import RunRecord
from .schema import ACTIVE_RUN_STATES

__all__ = ["RunRows"]

_RUN_FIELDS = (
    "state",
    "device",
    "dataset_version",
    "best_checkpoint",
    "last_checkpoint",
    "best_dice",
    "wall_time",
    "error",
    "config",
    "extra",
    "owner_pid",
    "owner_host",
    "heartbeat",
    "stop_requested",
    "origin",
    "progress",
)
_JSON_FIELDS = ("config", "extra", "progress")
_ACTIVE_SQL = f"state IN ({','.join(repr(s) for s in ACTIVE_RUN_STATES)})"


class RunRows:
    """Runs and epochs in the catalog ``db``."""

    def __init__(self, db: CatalogDb):
        self.db = db

    def create_run(
        self,
        run_id: str,
        dataset: str,
        config: dict[str, Any],
        state: str = "queued",
        owner: Owner | None = None,
        origin: str = "",
    ) -> None:
        """Record a new run, owned by ``owner`` (default: this process) started from ``origin``
        (``app``, ``cli``, ...; see :data:`~core.store.schema.RUN_ORIGINS`), its heartbeat now."""
        owner = owner or Owner.current()
        now = time.time()
        with self.db.transaction() as con:
            con.execute(
                "INSERT INTO runs (run_id, dataset, created, state, config, owner_pid, owner_host, heartbeat, origin) "
                "VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, dataset, now, state, json.dumps(config), owner.pid, owner.host, now, origin),
            )

    def heartbeat(self, run_id: str) -> None:
        """The owner of ``run_id`` is alive now."""
        self.beat(run_id)

    def beat(self, run_id: str, progress: dict[str, Any] | None = None, state: str | None = None) -> bool:
        """The owner of ``run_id`` is alive now; with ``progress`` (a JSON-able dict: epoch, step, ETA)
        and ``state`` recorded too (a state only replaces an active one: a late beat never undoes an
        outcome). Returns whether a stop was requested through the catalog, in the same transaction."""
        with self.db.transaction() as con:
            con.execute("UPDATE runs SET heartbeat=? WHERE run_id=?", (time.time(), run_id))
            if progress is not None:
                con.execute("UPDATE runs SET progress=? WHERE run_id=?", (json.dumps(progress), run_id))
            if state is not None:
                con.execute(f"UPDATE runs SET state=? WHERE run_id=? AND {_ACTIVE_SQL}", (state, run_id))
            row = con.execute("SELECT stop_requested FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def request_stop(self, run_id: str) -> None:
        """Ask the process that trains ``run_id`` to stop it (whichever process that is: it reads
        the request with its heartbeat, within seconds, and stops as its Stop button would)."""
        with self.db.transaction() as con:
            con.execute("UPDATE runs SET stop_requested=1 WHERE run_id=?", (run_id,))

    def mark_interrupted(self) -> list[str]:
        """Write ``interrupted`` into active runs whose owner is gone; returns their ids."""
        rows = self.db.query(f"SELECT * FROM runs WHERE {_ACTIVE_SQL}")
        gone = [r for r in rows if _owner_gone(r)]
        if gone:
            with self.db.transaction() as con:
                for r in gone:  # only if nobody touched it since it was read
                    con.execute(
                        "UPDATE runs SET state='interrupted' WHERE run_id=? AND state=? AND heartbeat IS ?",
                        (r["run_id"], r["state"], r["heartbeat"]),
                    )
        return [r["run_id"] for r in gone]

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Set columns of a run: any of state, device, dataset_version, best_checkpoint,
        last_checkpoint, best_dice, wall_time, error, config (dict), extra (dict), progress (dict),
        origin, and the owner's columns."""
        unknown = set(fields) - set(_RUN_FIELDS)
        if unknown:
            raise SegDashError(f"unknown run fields: {sorted(unknown)}")
        if not fields:
            return
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in fields.items()]
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.db.transaction() as con:
            con.execute(f"UPDATE runs SET {sets} WHERE run_id=?", (*values, run_id))

    def add_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        with self.db.transaction() as con:
            con.execute("INSERT OR REPLACE INTO epochs VALUES (?,?,?)", (run_id, epoch, json.dumps(metrics)))

    def run(self, run_id: str) -> RunRecord | None:
        rows = self.db.query("SELECT * FROM runs WHERE run_id=?", (run_id,))
        return _run_record(rows[0]) if rows else None

    def runs(self, dataset: str | None = None, active: bool = False) -> list[RunRecord]:
        """Runs, newest first, optionally of one dataset, optionally only the active ones (queued,
        running, stopping, and their owner still there)."""
        where = [_ACTIVE_SQL] if active else []
        params: tuple = ()
        if dataset is not None:
            where.append("dataset=?")
            params = (dataset,)
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created DESC"
        out = [_run_record(r) for r in self.db.query(sql, params)]
        return [r for r in out if r.state in ACTIVE_RUN_STATES] if active else out

    def epochs(self, run_id: str) -> list[dict[str, float]]:
        """Per-epoch metrics of a run, in epoch order, each with its ``epoch`` key."""
        rows = self.db.query("SELECT epoch, metrics FROM epochs WHERE run_id=? ORDER BY epoch", (run_id,))
        return [{"epoch": r["epoch"], **json.loads(r["metrics"])} for r in rows]

    def epoch_counts(self, run_ids: list[str] | None = None) -> dict[str, int]:
        """Number of recorded epochs of each run (all runs, or those of ``run_ids``), in one query."""
        rows = self.db.query("SELECT run_id, COUNT(*) AS n FROM epochs GROUP BY run_id")
        counts = {r["run_id"]: int(r["n"]) for r in rows}
        return counts if run_ids is None else {rid: counts.get(rid, 0) for rid in run_ids}

    def delete_run(self, run_id: str) -> None:
        with self.db.transaction() as con:
            con.execute("DELETE FROM runs WHERE run_id=?", (run_id,))


def _owner_gone(row: sqlite3.Row | dict[str, Any]) -> bool:
    return is_gone(row["owner_pid"], row["owner_host"], row["heartbeat"])


def _run_record(row: sqlite3.Row) -> RunRecord:
    """A run as a :class:`~core.store.records.RunRecord`; an active run whose owner process is gone
    reads as ``interrupted``."""
    out = dict(row)
    for key in _JSON_FIELDS:
        out[key] = json.loads(out[key]) if out.get(key) else {}
    out["origin"] = out.get("origin") or ""
    if out["state"] in ACTIVE_RUN_STATES and _owner_gone(out):
        out["state"] = "interrupted"
    return RunRecord(**out)
