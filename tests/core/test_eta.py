"""core.train.eta: the ETA follows the recent speed, so it recovers after a slow period."""

from __future__ import annotations

import pytest

from core.train.eta import EtaClock


def _clock_through(intervals: list[float], window: int = 20) -> tuple[EtaClock, float]:
    clock, t = EtaClock(window=window), 0.0
    clock.epoch_start(t)
    for dt in intervals:
        t += dt
        clock.step(t)
    return clock, t


def test_no_estimate_before_a_few_steps():
    clock, _ = _clock_through([5.0, 0.5])
    assert clock.eta(100, 1) is None
    clock.step(6.0)
    assert clock.eta(100, 0) is not None


def test_eta_follows_the_speed_after_a_slow_period():
    """200 steps at 2 s (the machine busy), then fast steps at 0.1 s: within half the window the
    estimate is the fast speed times what is left; a mean since the start would still say 20x more."""
    remaining = 1000
    slow = [2.0] * 200
    clock, _ = _clock_through(slow)
    assert clock.eta(remaining, 0) == pytest.approx(2000.0)
    etas = []
    for n_fast in range(1, 31):
        clock, _ = _clock_through(slow + [0.1] * n_fast)
        etas.append(clock.eta(remaining, 0))
    assert etas[0] == pytest.approx(2000.0)  # one fast step is not yet a trend
    assert etas[10] == pytest.approx(100.0)  # 11 fast steps of a window of 20: the median is fast
    assert all(e == pytest.approx(100.0) for e in etas[10:])
    mean_since_start = sum(slow + [0.1] * 30) / 230
    assert mean_since_start * remaining > 15 * etas[-1]


def test_eta_follows_a_slowdown_too_and_ignores_a_single_stall():
    clock, t = _clock_through([0.1] * 50 + [30.0] + [0.1] * 5)  # one stall (a GC, a checkpoint)
    assert clock.eta(100, 0) == pytest.approx(10.0)
    clock, t = _clock_through([0.1] * 50 + [1.0] * 15)
    assert clock.eta(100, 0) == pytest.approx(100.0)


def test_epoch_ends_are_timed_and_counted():
    clock, t = _clock_through([0.5] * 10)
    assert clock.eta(10, 2) == pytest.approx(10 * 0.5 + 2 * 0.5)  # no epoch end timed yet: one step's worth
    clock.epoch_end(t + 7.0)  # validation and checkpoints took 7 s
    clock.epoch_start(t + 7.0)
    assert clock.eta(10, 2) == pytest.approx(10 * 0.5 + 2 * 7.0)
    guessed = EtaClock(epoch_end_steps=4)
    for i in range(4):
        guessed.step(float(i))
    assert guessed.eta(0, 1) == pytest.approx(4.0)
