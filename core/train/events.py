"""The events of a training run: what :func:`~core.train.loop.fit` calls, and how: :class:`Callbacks`
(the hooks, each a no-op here; a handler overrides the ones it needs, as MONAI's handlers attach to
an engine's events), :class:`Events` (the handlers of a run, called in order) and :class:`Stopped` (a stop, raised by a
``check_stop``). A leaf module: the loop, the handlers and :mod:`core.train.distributed` import it,
it imports none of them."""

from __future__ import annotations

from typing import Any, Callable, Sequence

__all__ = ["Stopped", "Callbacks", "Events", "StopCheck"]


class Stopped(Exception):
    """Raised by a ``check_stop`` when a stop was requested."""


class Callbacks:
    """Hooks of :func:`~core.train.loop.fit`; each does nothing here. ``check_stop`` raises
    :class:`Stopped` to end the run. ``every_rank``: under torchrun the handler runs on every rank
    (validation, the stop check), not on rank 0 alone (what records the run)."""

    every_rank = False

    def check_stop(self) -> None:
        """Called before every step and every validation slice."""

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        """The run continues ``checkpoint`` (:class:`~core.nn.checkpoint.Checkpoint`); ``state``
        holds its weights and history. Called once, before :func:`~core.train.loop.fit`."""

    def on_epoch_start(self, state: Any, epoch: int) -> None:
        """Epoch ``epoch`` (1-based) begins."""

    def on_step(self, state: Any, epoch: int, step: int) -> None:
        """Step ``step`` (1-based) of ``epoch`` is done."""

    def on_validate(self, state: Any, row: dict[str, Any]) -> None:
        """The epoch's steps are done: add its scores to ``row`` (not yet in ``state.history``)."""

    def on_plan(self, state: Any, epochs: int) -> None:
        """A time budget (``minutes``) planned the run anew: it now ends at epoch ``epochs``."""

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        """``row`` (appended to ``state.history``) holds the epoch's losses and validation scores."""

    def on_stop(self, state: Any) -> None:
        """A :class:`Stopped` ended the run mid-epoch (it is raised again afterwards)."""


class StopCheck(Callbacks):
    """The run's stop request as a handler: ``check`` raises :class:`Stopped`; on every rank."""

    every_rank = True

    def __init__(self, check: Callable[[], None]):
        self._check = check

    def check_stop(self) -> None:
        self._check()


class Events(Callbacks):
    """The handlers of a run as one :class:`Callbacks`: every hook calls each handler's, in order
    (validation first, so that the handlers after it see the epoch's scores)."""

    def __init__(self, handlers: Sequence[Callbacks]):
        self.handlers = list(handlers)

    def check_stop(self) -> None:
        for h in self.handlers:
            h.check_stop()

    def on_resume(self, state: Any, checkpoint: Any) -> None:
        for h in self.handlers:
            h.on_resume(state, checkpoint)

    def on_epoch_start(self, state: Any, epoch: int) -> None:
        for h in self.handlers:
            h.on_epoch_start(state, epoch)

    def on_step(self, state: Any, epoch: int, step: int) -> None:
        for h in self.handlers:
            h.on_step(state, epoch, step)

    def on_validate(self, state: Any, row: dict[str, Any]) -> None:
        for h in self.handlers:
            h.on_validate(state, row)

    def on_plan(self, state: Any, epochs: int) -> None:
        for h in self.handlers:
            h.on_plan(state, epochs)

    def on_epoch_end(self, state: Any, row: dict[str, Any]) -> None:
        for h in self.handlers:
            h.on_epoch_end(state, row)

    def on_stop(self, state: Any) -> None:
        for h in self.handlers:
            h.on_stop(state)
