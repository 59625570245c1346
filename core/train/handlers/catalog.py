"""The catalog's rows of a run as two handlers: :class:`EpochRows` adds each epoch's row (a resumed
run's source epochs first) before the checkpoint handler writes ``last.pt``, so that a run killed at
any moment never has a ``last.pt`` the catalog does not count (``list`` calls it resumable with its
epochs); :class:`CatalogRows`, after the checkpoint handler, writes the run's checkpoints, best Dice
and wall time. Rank 0 only."""

from __future__ import annotations

import time
from typing import Any

from ..events import Callbacks
from ..recorder import RunContext

__all__ = ["CatalogRows", "EpochRows"]


class EpochRows(Callbacks):
    """Adds each epoch's row to the catalog; attach it before
    :class:`~core.train.handlers.checkpoints.Checkpoints`."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def _add(self, row: dict[str, Any]) -> None:
        self.ctx.workspace.add_epoch(self.ctx.run_id, int(row["epoch"]), {k: v for k, v in row.items() if k != "epoch"})

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        for row in state.history:  # the source's epochs are this run's first ones
            self._add(row)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        self._add(row)


class CatalogRows(Callbacks):
    """Records into the run's row what :class:`~core.train.handlers.checkpoints.Checkpoints` (before
    it) wrote; attach it after the checkpoint handler."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        if self.ctx.updates:
            self.ctx.workspace.update_run(self.ctx.run_id, **self.ctx.updates)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        wall = time.time() - self.ctx.started
        self.ctx.workspace.update_run(self.ctx.run_id, wall_time=wall, **self.ctx.updates)

    def on_stop(self, state: Any) -> None:
        self.ctx.workspace.update_run(self.ctx.run_id, **self.ctx.updates)
