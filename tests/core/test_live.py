"""The live loop: a round trains on strokes for a bounded time in the background (a request with a
deadline, in the Train page's worker process), then predicts a slice; the next round continues from it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.masks import UNLABELED
from core.store.workspace import Workspace
from core.train import spare
from core.train.process import ProcessJob
from core.train.registry import registry
from core.train.sparse import simulate_strokes
from core.workflow.live import MIN_STEPS, start_round, warm_up
from tests.core.test_training import _discs

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def test_rounds_train_for_their_budget_predict_and_continue(tmp_path):
    ws = Workspace(tmp_path / "ws")
    imgs, truth = _discs(3, 128, 2, seed=1)
    rng = np.random.default_rng(0)
    masks = [simulate_strokes(truth[0], 0.05, rng, length=16, margin=1), None, None]
    ws.create_dataset("live", imgs, masks, ["background", "disc"])
    warm_up()  # what the Label page does as it opens: a worker process started ahead
    assert spare.wait_ready(180)
    t0 = time.time()
    r = start_round(ws, "live", z=1, budget_s=6)
    assert r.source == "a fresh network" and registry().active(ws) is r.job
    assert isinstance(r.job, ProcessJob) and r.job.request.deadline == pytest.approx(t0 + 6, abs=1)
    with pytest.raises(ValueError, match="running already"):
        start_round(ws, "live", z=1)
    assert r.join(120), r.snapshot()
    snap = r.snapshot()
    assert snap["state"] == "done", snap["error"]
    assert r.prediction.shape == (128, 128) and r.prediction.dtype == np.uint8
    # stopped at the deadline once it had taken its first steps (how soon depends on the machine: the
    # target times are measured on the page, not asserted on a shared test machine)
    assert snap["trained_s"] >= 6 and snap["steps"] >= MIN_STEPS and time.time() - t0 >= 6
    run = ws.catalog.run(r.run_id)
    assert run["state"] == "stopped" and run["last_checkpoint"] and run["origin"] == "live"
    assert "-live-" not in r.run_id  # the run id of every run
    assert snap["first_step_s"] is not None and snap["phases"]["step"] == pytest.approx(snap["first_step_s"], abs=0.1)
    r.job.join(60)
    assert registry().active(ws) is None
    ws.save_mask("live", 2, simulate_strokes(truth[2], 0.05, rng, length=16, margin=1))
    r2 = start_round(ws, "live", z=2, budget_s=4)
    assert r2.source == f"live run {r.run_id}"
    assert r2.join(120) and r2.snapshot()["state"] == "done", r2.snapshot()["error"]
    assert r2.prediction.shape == (128, 128)
    assert (ws.read_mask("live", 0) == UNLABELED).any()  # rounds never write masks
