"""The catalog's rows rebuilt from the workspace's folders, and its backup copy (all their SQL):
:class:`RecoveredRows`, what ``python -m core repair`` (:mod:`core.store.recovery`,
:mod:`core.workflow.repair`) adds rows through, by way of :class:`~core.store.catalog.Catalog`.

Recovery only adds: a row that exists is never changed, except a slice's current version, which moves
to a newer version found on disk (the newest save, lost with the catalog's WAL).
"""

from __future__ import annotations

import json
import sqlite3

from ..data.owner import is_gone
from .catalog_db import CatalogDb
from .schema import PIXEL_SCHEMA, VOLUME_SCHEMA

__all__ = ["RecoveredRows"]


class RecoveredRows:
    """Rows rebuilt by repair in the catalog ``db``."""

    def __init__(self, db: CatalogDb):
        self.db = db

    def version_files(self, name: str) -> set[str]:
        """The mask version files of ``name`` the catalog lists (relative to its folder)."""
        return {r["file"] for r in self.db.query("SELECT file FROM mask_versions WHERE dataset=?", (name,))}

    def recover_dataset(self, name: str, meta: dict, versions: list[dict]) -> bool:
        """Record a dataset found on disk without a row: ``meta`` (``created, shape, dtype, class_names,
        slice_names, source, notices, volume, pixel_size``) and its mask ``versions`` (see
        :meth:`recover_versions`). ``False``, nothing written, when the name has become a dataset or
        an import's live claim meanwhile (an import publishes its folder before its row)."""
        with self.db.transaction() as con:
            if con.execute("SELECT 1 FROM datasets WHERE name=?", (name,)).fetchone():
                return False
            claim = con.execute("SELECT * FROM dataset_claims WHERE name=?", (name,)).fetchone()
            if claim is not None and not is_gone(claim["owner_pid"], claim["owner_host"]):
                return False
            z, h, w = meta["shape"]
            con.execute(
                "INSERT INTO datasets VALUES (?,?,?,?,?,?,?,?,?)",
                (name, meta["created"], z, h, w, meta["dtype"], json.dumps(list(meta["class_names"])))
                + (meta["source"], json.dumps(list(meta["notices"]))),
            )
            con.executemany(
                "INSERT INTO slices VALUES (?,?,?,'unlabeled',0,?)",
                [(name, i, n, meta["created"]) for i, n in enumerate(meta["slice_names"])],
            )
            if meta.get("volume"):
                con.execute(VOLUME_SCHEMA)
                con.execute("INSERT INTO dataset_volumes VALUES (?,?,?)", (name, *meta["volume"]))
            if meta.get("pixel_size"):
                con.execute(PIXEL_SCHEMA)
                con.execute("INSERT INTO dataset_pixel_size VALUES (?,?,?,?,?)", (name, *meta["pixel_size"]))
            _insert_versions(con, name, versions)
        return True

    def recover_versions(self, name: str, versions: list[dict]) -> None:
        """Add mask versions found on disk without a row (``z, version, status, file, created, source,
        parent, labeled, accepted_from``); a slice whose newest version is among them shows it."""
        with self.db.transaction() as con:
            _insert_versions(con, name, versions)

    def recover_run(self, run: dict, epochs: list[dict]) -> bool:
        """Record a run found on disk (``run``: ``run_id, dataset, created, state, config, device,
        dataset_version, best_checkpoint, last_checkpoint, best_dice, wall_time, extra``) with its
        ``epochs`` (dicts with ``epoch``). A run the catalog has keeps its row and gains only the
        epochs it lacks; returns whether a row was added."""
        rows = [
            (run["run_id"], int(e["epoch"]), json.dumps({k: v for k, v in e.items() if k != "epoch"})) for e in epochs
        ]
        with self.db.transaction() as con:
            known = con.execute("SELECT 1 FROM runs WHERE run_id=?", (run["run_id"],)).fetchone() is not None
            if not known:
                con.execute(
                    "INSERT INTO runs (run_id, dataset, created, state, config, device, dataset_version, "
                    "best_checkpoint, last_checkpoint, best_dice, wall_time, error, extra) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,'',?)",
                    (run["run_id"], run["dataset"], run["created"], run["state"], json.dumps(run["config"]))
                    + (run["device"], run["dataset_version"], run["best_checkpoint"], run["last_checkpoint"])
                    + (run["best_dice"], run["wall_time"], json.dumps(run["extra"])),
                )
            con.executemany("INSERT OR IGNORE INTO epochs VALUES (?,?,?)", rows)
        return not known


def _insert_versions(con: sqlite3.Connection, name: str, versions: list[dict]) -> None:
    con.executemany(
        "INSERT OR IGNORE INTO mask_versions (dataset, z, version, status, file, created, undone, source, parent, "
        "labeled, accepted_from) VALUES (?,?,?,?,?,?,0,?,?,?,?)",
        [
            (name, v["z"], v["version"], v["status"], v["file"], v["created"], v["source"], v["parent"])
            + (v["labeled"], v["accepted_from"])
            for v in versions
        ],
    )
    newest: dict[int, dict] = {}
    for v in versions:
        if v["version"] > newest.get(v["z"], {"version": 0})["version"]:
            newest[v["z"]] = v
    con.executemany(
        "UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=? AND version < ?",
        [(v["status"], v["version"], v["created"], name, z, v["version"]) for z, v in newest.items()],
    )
