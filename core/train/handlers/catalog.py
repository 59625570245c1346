"""The catalog's rows of a run as a handler: :class:`CatalogRows` adds each epoch's row and writes
the run's checkpoints, best Dice and wall time (a resumed run's source epochs first). Rank 0 only."""

from __future__ import annotations

import time
from typing import Any

from ..events import Callbacks
from ..recorder import RunContext

__all__ = ["CatalogRows"]


class CatalogRows(Callbacks):
    """Records into the catalog what the epoch (and :class:`~core.train.handlers.checkpoints.Checkpoints`
    before it) did; attach it after the checkpoint handler."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def _add(self, row: dict[str, Any]) -> None:
        self.ctx.workspace.add_epoch(self.ctx.run_id, int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        for row in state.history:  # the source's epochs are this run's first ones
            self._add(row)
        if self.ctx.updates:
            self.ctx.workspace.update_run(self.ctx.run_id, **self.ctx.updates)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        self._add(row)
        wall = time.time() - self.ctx.started
        self.ctx.workspace.update_run(self.ctx.run_id, wall_time=wall, **self.ctx.updates)

    def on_stop(self, state: Any) -> None:
        self.ctx.workspace.update_run(self.ctx.run_id, **self.ctx.updates)
