"""How long a training run has left: :class:`EtaClock`, from the wall-clock time of its recent steps
and of its recent epoch ends (validation and checkpoints).

A median over the last steps, not a mean since the start: a run slowed down for a while (the
machine busy with other work) or by its first, warming-up steps gets an estimate that follows its
speed again within ``window / 2`` steps once that passes.

Example:
    >>> clock = EtaClock(window=4)
    >>> for t in (0.0, 10.0, 20.0, 30.0, 31.0, 32.0, 33.0):  # three slow steps, then fast ones
    ...     clock.step(t)
    >>> clock.eta(remaining_steps=100, remaining_epoch_ends=0)
    100.0
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = ["EtaClock"]


class EtaClock:
    """Estimated seconds left, from recent step intervals and epoch-end times.

    Args:
        window: how many recent step intervals the per-step time is the median of.
        min_steps: no estimate (``None``) before this many intervals.
        epoch_end_steps: before the first epoch end was timed, one is taken to cost this many steps.

    Call :meth:`epoch_start` when an epoch starts, :meth:`step` after each optimisation step and
    :meth:`epoch_end` once the epoch's validation and checkpoints are written (``now`` in seconds,
    e.g. ``time.time()``), then :meth:`eta`.
    """

    def __init__(self, window: int = 20, min_steps: int = 3, epoch_end_steps: float = 1.0):
        self._steps: deque[float] = deque(maxlen=max(1, window))
        self._ends: deque[float] = deque(maxlen=3)
        self._min_steps = max(1, min_steps)
        self._end_steps = float(epoch_end_steps)
        self._last: float | None = None

    def epoch_start(self, now: float) -> None:
        self._last = now

    def step(self, now: float) -> None:
        if self._last is not None:
            self._steps.append(max(0.0, now - self._last))
        self._last = now

    def epoch_end(self, now: float) -> None:
        """The epoch's last step to now (validation, checkpoints) is the cost of an epoch end."""
        if self._last is not None:
            self._ends.append(max(0.0, now - self._last))
        self._last = None

    def per_step(self) -> float | None:
        """Median seconds of the recent steps (``None`` before ``min_steps`` of them)."""
        return statistics.median(self._steps) if len(self._steps) >= self._min_steps else None

    def eta(self, remaining_steps: int, remaining_epoch_ends: int) -> float | None:
        """Seconds left for ``remaining_steps`` steps and ``remaining_epoch_ends`` validations."""
        per_step = self.per_step()
        if per_step is None:
            return None
        per_end = statistics.median(self._ends) if self._ends else per_step * self._end_steps
        return max(0.0, remaining_steps * per_step + max(0, remaining_epoch_ends) * per_end)
