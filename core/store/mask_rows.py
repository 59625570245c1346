"""The catalog's slices and mask versions (all their SQL): :class:`MaskRows`, what
:class:`~core.store.mask_history.MaskHistory` reads and writes a slice's history through.

A slice's mask versions are append-only rows (one file each, never overwritten). Besides the columns
of the first schema, each row has ``source`` (imported, drawn, accepted:<run>, model:<what>,
restored:v<n>) and ``parent`` (the version current when it was saved: what it was drawn on; 0 = an
unlabeled slice). The slice's current version is ``slices.version`` (0 = unlabeled): undo and redo
move that pointer along ``parent``, so no version is ever dropped.

The methods that write take the connection of a transaction the caller holds
(:meth:`CatalogDb.transaction <core.store.catalog_db.CatalogDb.transaction>`), so reading the
current version, writing the file and recording it are one transaction; the reads take it too.
"""

from __future__ import annotations

import sqlite3
import time

from ..errors import SegDashError
from .catalog_db import CatalogDb

__all__ = ["MaskRows"]


class MaskRows:
    """Slices' mask version rows in the catalog ``db``."""

    def __init__(self, db: CatalogDb):
        self.db = db

    def _con(self, con: sqlite3.Connection | None) -> sqlite3.Connection:
        return con or self.db.connection()

    def slices(self, name: str) -> list[sqlite3.Row]:
        """The slices of ``name`` with ``labeled``, the share of pixels their current mask labels."""
        return self.db.query(
            "SELECT s.*, m.labeled AS labeled FROM slices s LEFT JOIN mask_versions m ON m.dataset = s.dataset "
            "AND m.z = s.z AND m.version = s.version WHERE s.dataset=? ORDER BY s.z",
            (name,),
        )

    def next_version(self, con: sqlite3.Connection, name: str, z: int) -> int:
        """One more than the highest version number slice ``z`` has a row for."""
        row = con.execute("SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=?", (name, z)).fetchone()
        return int(row["v"] or 0) + 1

    def current(self, name: str, z: int, con: sqlite3.Connection | None = None) -> int:
        """The version number slice ``z`` shows now (0: unlabeled); ``SegDashError`` when there is no such slice."""
        row = self._con(con).execute("SELECT version FROM slices WHERE dataset=? AND z=?", (name, z)).fetchone()
        if row is None:
            raise SegDashError(f"dataset {name!r} has no slice {z}")
        return int(row["version"])

    def current_version(self, name: str, z: int, con: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """The mask version slice ``z`` shows now (``slices.version``), or ``None`` when unlabeled."""
        rows = (
            self._con(con)
            .execute(
                "SELECT m.* FROM mask_versions m JOIN slices s ON s.dataset = m.dataset AND s.z = m.z "
                "AND s.version = m.version WHERE m.dataset=? AND m.z=?",
                (name, z),
            )
            .fetchall()
        )
        return rows[0] if rows else None

    def version_row(self, name: str, z: int, version: int, con: sqlite3.Connection | None = None) -> sqlite3.Row | None:
        """The row of version ``version`` of slice ``z``, or ``None``."""
        rows = (
            self._con(con)
            .execute("SELECT * FROM mask_versions WHERE dataset=? AND z=? AND version=?", (name, z, version))
            .fetchall()
        )
        return rows[0] if rows else None

    def history(self, name: str, z: int) -> list[sqlite3.Row]:
        """Every version row of slice ``z``, oldest first."""
        return self.db.query("SELECT * FROM mask_versions WHERE dataset=? AND z=? ORDER BY version", (name, z))

    def version_count(self, name: str) -> int:
        """How many mask versions the slices of ``name`` have, all together."""
        return int(self.db.query("SELECT COUNT(*) AS n FROM mask_versions WHERE dataset=?", (name,))[0]["n"])

    def redo_target(self, name: str, z: int, con: sqlite3.Connection | None = None) -> int | None:
        """The newest version made from slice ``z``'s current one (what Undo left), or ``None``."""
        current = self.current(name, z, con)
        row = (
            self._con(con)
            .execute(
                "SELECT MAX(version) AS v FROM mask_versions WHERE dataset=? AND z=? AND parent=? AND version > ?",
                (name, z, current, current),
            )
            .fetchone()
        )
        return None if row["v"] is None else int(row["v"])

    def add_version(
        self,
        con: sqlite3.Connection,
        name: str,
        z: int,
        version: int,
        *,
        status: str,
        file: str,
        source: str,
        parent: int,
        labeled: float,
        accepted_from: str,
    ) -> None:
        """Record version ``version`` of slice ``z`` (its file written already) and make it current."""
        now = time.time()
        con.execute(
            "INSERT INTO mask_versions (dataset, z, version, status, file, created, undone, source, parent, labeled, "
            "accepted_from) VALUES (?,?,?,?,?,?,0,?,?,?,?)",
            (name, z, version, status, file, now, source, parent, labeled, accepted_from),
        )
        con.execute(
            "UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?", (status, version, now, name, z)
        )

    def set_undone(self, con: sqlite3.Connection, name: str, z: int, version: int, undone: bool) -> None:
        """Mark version ``version`` of slice ``z`` as left by Undo (or brought back by Redo)."""
        con.execute(
            "UPDATE mask_versions SET undone=? WHERE dataset=? AND z=? AND version=?", (int(undone), name, z, version)
        )

    def point(self, con: sqlite3.Connection, name: str, z: int, version: int) -> None:
        """Make ``version`` (0 = none: unlabeled) the current version of slice ``z``."""
        status = "unlabeled"
        if version:
            status = self.version_row(name, z, version, con)["status"]
        con.execute(
            "UPDATE slices SET status=?, version=?, updated=? WHERE dataset=? AND z=?",
            (status, version, time.time(), name, z),
        )
