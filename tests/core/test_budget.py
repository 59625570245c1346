"""Training for a time budget (``minutes``): the epochs are planned from their measured times."""

from __future__ import annotations

import numpy as np
import pytest

from core.nn.checkpoint import load_checkpoint
from core.store.workspace import Workspace
from core.train.budget import TimeBudget
from core.train.config import TrainConfig
from core.train.headless import train_headless
from tests.synthetic import TINY_TRAIN, disc_stack

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


@pytest.fixture
def ws(ws: Workspace) -> Workspace:
    rng = np.random.default_rng(0)
    imgs, masks = disc_stack(rng, 8, 64, 64)
    ws.create_dataset("discs", imgs, masks, ["background", "disc"])
    return ws


def test_the_plan_follows_the_measured_epochs():
    b = TimeBudget(minutes=1, started=100.0)
    assert b.epoch_ended(112.0) == 5  # 12 s an epoch (warm-up included): 48 s left hold 4 more
    assert b.epoch_ended(118.0) == 2 + 7  # warm now, 6 s an epoch: 42 s left hold 7
    assert b.epoch_ended(148.0) == 3 + 0  # it became slow (30 s): 12 s left hold none, stop here
    late = TimeBudget(minutes=0.1, started=0.0)
    assert late.epoch_ended(60.0) == 1  # past the budget already: the first epoch is the last


def test_minutes_must_be_a_number_from_zero():
    assert TrainConfig.from_dict({"minutes": 2}).minutes == 2.0
    with pytest.raises(ValueError, match="minutes"):
        TrainConfig.from_dict({"minutes": -1})


def test_a_time_budget_plans_the_epochs_and_the_schedule_ends_with_it(ws):
    out = train_headless(ws, "discs", config={**TINY_TRAIN, "epochs": 1000, "minutes": 0.05})  # 3 s
    assert out["state"] == "done", out["error"]
    hist = ws.run_epochs(out["run_id"])
    n = len(hist)
    assert 2 <= n < 1000 and out["epochs"] == n
    last = load_checkpoint(out["last_checkpoint"])
    assert last.epoch == n and last.extra["train_config"]["epochs"] == n  # the plan is what is stored
    assert hist[-1]["lr"] < 0.5 * TINY_TRAIN["lr"] < hist[0]["lr"]  # the cosine decayed over the planned run
    # a budget resumes a run past its stored epochs (it plans its own)
    again = train_headless(ws, "discs", config={"minutes": 0.02}, resume=out["run_id"])
    assert again["state"] == "done", again["error"]
    assert again["epochs"] > n
