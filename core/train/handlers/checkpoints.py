"""Checkpoints as a handler: :class:`Checkpoints` saves ``last.pt`` after every epoch (and at a stop,
with the weights reached), ``best.pt`` when the validation Dice improves, and takes a resumed run's
``best.pt`` as this run's best so far. Rank 0 only."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ...data.records import finite_or_none
from ...store.layout import BEST
from ..events import Callbacks
from ..recorder import RunContext

__all__ = ["Checkpoints"]


class Checkpoints(Callbacks):
    """Writes the run's checkpoints; what changed goes into ``ctx.updates`` for the handlers after it."""

    def __init__(self, ctx: RunContext):
        self.ctx = ctx

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        ctx = self.ctx
        dice = [h.get("val_dice") for h in state.history if finite_or_none(h.get("val_dice")) is not None]
        source = Path(checkpoint.path).with_name(BEST) if checkpoint.path else None
        ctx.updates = {}
        if dice and source is not None and source.is_file():
            ctx.copy_best(source)
            ctx.best = max(dice)
            ctx.updates = {"best_checkpoint": str(ctx.best_path), "best_dice": ctx.best}

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        ctx = self.ctx
        epoch = int(row["epoch"])
        ctx.save(state, ctx.last_path, epoch, row, partial=False)
        ctx.updates = {"last_checkpoint": str(ctx.last_path)}
        if math.isfinite(row["val_dice"]) and row["val_dice"] > ctx.best:
            ctx.best = row["val_dice"]
            ctx.save(state, ctx.best_path, epoch, row, partial=False)
            ctx.updates.update(best_checkpoint=str(ctx.best_path), best_dice=ctx.best)

    def on_stop(self, state: Any) -> None:
        # keep the weights reached: last.pt with the last completed epoch's count
        history = state.history
        metrics = dict(history[-1]) if history else {}
        self.ctx.save(state, self.ctx.last_path, len(history) and int(history[-1]["epoch"]), metrics, partial=True)
        self.ctx.updates = {"last_checkpoint": str(self.ctx.last_path)}
