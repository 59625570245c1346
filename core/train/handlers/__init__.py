"""The handlers of a training run (as in MONAI's engines: small objects attached to the loop's
events), each in its own module: :mod:`~core.train.handlers.validation` (scores after every epoch),
:mod:`~core.train.handlers.checkpoints` (``last.pt``, ``best.pt``),
:mod:`~core.train.handlers.catalog` (the run's rows in the catalog) and
:mod:`~core.train.handlers.progress` (ETA and progress for the job's snapshot), over
:mod:`core.train.events` (the hooks, :class:`~core.train.events.Stopped`).
:func:`run_handlers` is the order a run attaches them in."""

from __future__ import annotations

from typing import Callable

import torch

from ..eta import EtaClock
from ..events import Callbacks, Events, StopCheck, Stopped
from ..recorder import RunContext
from .catalog import CatalogRows, EpochRows
from .checkpoints import Checkpoints
from .progress import Progress
from .validation import Validation

__all__ = [
    "Callbacks",
    "Events",
    "StopCheck",
    "Stopped",
    "Validation",
    "Checkpoints",
    "CatalogRows",
    "EpochRows",
    "Progress",
    "run_handlers",
]


def run_handlers(
    ctx: RunContext,
    val_items: list[tuple[torch.Tensor, torch.Tensor]],
    device: torch.device,
    amp_dtype: torch.dtype | None,
    check_stop: Callable[[], None],
) -> list[Callbacks]:
    """A recorded run's handlers, in order: the stop check, validation (its scores fill the row the
    others record), the epoch's catalog row, checkpoints, the run's catalog row, progress (publishes
    what the others wrote)."""
    clock = EtaClock(epoch_end_steps=max(1, len(val_items)) / 4)
    return [
        StopCheck(check_stop),
        Validation(val_items, ctx.config.model.n_classes, device, amp_dtype, check_stop),
        EpochRows(ctx),  # the epoch's row before last.pt: a kill in between never hides an epoch
        Checkpoints(ctx),
        CatalogRows(ctx),
        Progress(ctx, clock),
    ]
