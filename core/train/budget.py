"""Training for a time budget: :class:`TimeBudget` turns "train for 20 minutes" into a number of
epochs, from the epochs' measured times, so that the learning-rate schedule (which decays over the
run's planned steps, :func:`~core.train.loop.lr_at`) ends when the time does.

The plan is made again after every epoch: the time left divided by the time an epoch takes now (the
mean of the last three, leaving out the first, which pays one-off warm-up, once there are others),
so a machine that becomes busier (or quieter) moves the end of the schedule rather than the end of
the budget. At least one epoch runs; the run ends after the epoch that leaves less than an epoch's
time. Validation and checkpoints are inside the epochs' times; the end of the run (tuning the
decision, scoring test slices, the bundle) comes after the budget.

Example:
    >>> b = TimeBudget(minutes=10, started=0.0)
    >>> b.epoch_ended(70.0)     # the first epoch (warm-up included) ended 70 s in: 8 fit in 10 min
    8
    >>> b.epoch_ended(130.0)    # the second took 60 s: 7 more fit in the 470 s left
    9
"""

from __future__ import annotations

import math
import time

__all__ = ["TimeBudget"]


class TimeBudget:
    """Epochs that fit in ``minutes`` from ``started`` (``time.time()`` when omitted)."""

    def __init__(self, minutes: float, started: float | None = None):
        self.seconds = float(minutes) * 60.0
        self.started = time.time() if started is None else float(started)
        self.ends: list[float] = []  # when each epoch ended

    def epoch_ended(self, now: float | None = None) -> int:
        """Record an epoch's end; returns the epochs this run should have in all (the epochs so
        far when no further epoch fits)."""
        now = time.time() if now is None else float(now)
        self.ends.append(now)
        starts = [self.started, *self.ends[:-1]]
        took = [e - s for s, e in zip(starts, self.ends)]
        recent = took[1:][-3:] or took
        per_epoch = max(sum(recent) / len(recent), 1e-6)
        left = self.started + self.seconds - now
        return len(self.ends) + max(0, math.floor(left / per_epoch))
