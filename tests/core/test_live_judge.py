"""A live round's prediction judged against a fixed threshold of the raw slice (issue 27 point 3):
Otsu's threshold with the foreground on the side the strokes say, both scored on the strokes."""

from __future__ import annotations

import numpy as np

from core.data.masks import UNLABELED
from core.workflow.live import foreground_above, judge, round_message, threshold_baseline


def _slice():
    """Dark discs (the foreground) on a bright background, and strokes of both classes."""
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 20) ** 2 + (xx - 20) ** 2 < 100
    image = np.where(disc, 60, 200).astype(np.uint8)
    strokes = np.full((64, 64), UNLABELED, np.uint8)
    strokes[18:22, 14:26] = 1  # inside the disc
    strokes[50:54, 10:50] = 0  # the background
    return image, disc, strokes


def test_the_threshold_takes_the_foreground_side_the_strokes_say():
    image, disc, strokes = _slice()
    assert not foreground_above([image], [strokes])  # dark foreground
    assert (threshold_baseline(image, above=False) == disc).all()
    assert foreground_above([255 - image], [strokes])


def test_a_prediction_worse_than_the_threshold_is_not_usable():
    image, disc, strokes = _slice()
    good = judge(disc.astype(np.uint8), image, strokes)
    assert good == {"model": 1.0, "baseline": 1.0, "pixels": int((strokes != UNLABELED).sum()), "usable": True}
    everything = judge(np.ones((64, 64), np.uint8), image, strokes)  # "most dark structures" and more
    assert everything["model"] < everything["baseline"] and not everything["usable"]
    assert judge(disc.astype(np.uint8), image, np.full((64, 64), UNLABELED, np.uint8)) is None  # no strokes
    only_fg = np.where(strokes == 1, 1, UNLABELED).astype(np.uint8)
    assert judge(disc.astype(np.uint8), image, only_fg) is None  # one class drawn: nothing to compare


def _snap(**kw):
    base = {
        "state": "done",
        "error": "",
        "z": 3,
        "run_id": "d-live-1",
        "source": "a fresh network",
        "budget_s": 40.0,
        "elapsed_s": 43.2,
        "trained_s": 41.0,
        "steps": 175,
        "first_step_s": 5.6,
    }
    return {**base, **kw}


def test_the_round_says_its_first_step_and_whether_it_is_usable():
    assert round_message(_snap(state="training", steps=0, first_step_s=None, elapsed_s=3.0)) == [
        ("caption", "Starting: reading the labeled slices and building the network (no step yet): 3 s of about 40 s.")
    ]
    [(kind, words)] = round_message(_snap(state="training", steps=12, elapsed_s=9.0))
    assert kind == "caption" and "12 steps, first step after 6 s" in words
    usable = round_message(_snap(judgement={"model": 0.9, "baseline": 0.7, "pixels": 80, "usable": True}))
    assert [k for k, _ in usable] == ["caption"]
    assert "Prediction of slice 3 after 43 s" in usable[0][1] and "first step after 6 s" in usable[0][1]
    assert "foreground Dice on your strokes 0.90, a plain threshold 0.70" in usable[0][1]
    poor = round_message(_snap(judgement={"model": 0.5, "baseline": 0.7, "pixels": 80, "usable": False}))
    assert [k for k, _ in poor] == ["caption", "warning"] and "not yet usable" in poor[1][1]
    assert [k for k, _ in round_message(_snap())] == ["caption"]  # not judged: nothing claimed
    assert round_message(_snap(state="failed", error="disk full")) == [("error", "The round failed: disk full")]


def test_round_budgets_from_the_environment(monkeypatch):
    import pytest

    from core.errors import SegDashError
    from core.workflow.live import FIRST_BUDGET_S, LATER_BUDGET_S, budgets

    monkeypatch.delenv("SEGDASH_LIVE_BUDGET_S", raising=False)
    assert budgets() == (FIRST_BUDGET_S, LATER_BUDGET_S)
    monkeypatch.setenv("SEGDASH_LIVE_BUDGET_S", "12, 8")
    assert budgets() == (12.0, 8.0)
    for bad in ("12", "a,b", "0,5", "12,8,4"):
        monkeypatch.setenv("SEGDASH_LIVE_BUDGET_S", bad)
        with pytest.raises(SegDashError, match="SEGDASH_LIVE_BUDGET_S"):
            budgets()
