"""Progress and ETA as a handler: :class:`Progress` times the steps and epoch ends
(:class:`~core.train.eta.EtaClock`) and publishes the epoch, step, time left, history and
checkpoints to the job's snapshot. Rank 0 only."""

from __future__ import annotations

import time
from typing import Any

from ..eta import EtaClock
from ..events import Callbacks
from ..recorder import RunContext

__all__ = ["Progress"]


class Progress(Callbacks):
    """Publishes through ``ctx.publish``; attach it last (it publishes what the others recorded).

    Args:
        ctx: the run.
        clock: times the steps and epoch ends (default: a new :class:`~core.train.eta.EtaClock`).
    """

    def __init__(self, ctx: RunContext, clock: EtaClock | None = None):
        self.ctx, self.clock = ctx, clock or EtaClock()
        self._first_step = False

    def _eta(self, state: Any, epoch: int, step: int, epoch_ends: int) -> float | None:
        """Seconds left after ``step`` of ``epoch``, from the clock of recent steps (so that the
        estimate recovers after a slow period)."""
        spe = self.ctx.config.steps_per_epoch
        return self.clock.eta((state.epochs - epoch) * spe + (spe - step), epoch_ends)

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        self.ctx.publish(history=[dict(h) for h in state.history], epoch=state.epoch, **self.ctx.updates)

    def on_epoch_start(self, state: Any, epoch: int) -> None:
        self.clock.epoch_start(time.time())
        self.ctx.publish(epoch=epoch - 1, step=0)

    def on_step(self, state: Any, epoch: int, step: int) -> None:
        now = time.time()
        self.clock.step(now)
        first = {} if self._first_step else {"first_step_at": now}  # once: how long the start took
        self._first_step = True
        self.ctx.publish(step=step, eta_s=self._eta(state, epoch, step, state.epochs - epoch + 1), **first)

    def on_plan(self, state: Any, epochs: int) -> None:
        self.ctx.publish(epochs=epochs)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        epoch = int(row["epoch"])
        self.clock.epoch_end(time.time())
        eta = self._eta(state, epoch, self.ctx.config.steps_per_epoch, state.epochs - epoch)
        self.ctx.publish(epoch=epoch, history=[dict(h) for h in state.history], eta_s=eta, **self.ctx.updates)

    def on_stop(self, state: Any) -> None:
        self.ctx.publish(**self.ctx.updates)
