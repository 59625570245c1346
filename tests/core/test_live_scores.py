"""Live-loop rounds are never scored: the catalog keeps no best Dice for them (their "validation"
scores crops of the slices they trained on, which read 1.0), and every view says "not scored"."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import core.workflow.live as live
from core.store.workspace import Workspace
from core.train.sparse import simulate_strokes
from core.workflow.listing import workspace_listing
from core.workflow.runs import NOT_SCORED, picker_runs, run_views
from tests.core.test_training import _discs
from tests.synthetic import add_tiny_run

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def test_a_round_records_no_best_dice_and_reads_not_scored(tmp_path, monkeypatch):
    quick = live.live_config
    monkeypatch.setattr(live, "live_config", lambda n: replace(quick(n), steps_per_epoch=2, batch_size=2))
    ws = Workspace(tmp_path / "ws")
    imgs, truth = _discs(3, 128, 2, seed=1)
    rng = np.random.default_rng(0)
    masks = [simulate_strokes(truth[0], 0.05, rng, length=16, margin=1), None, None]
    ws.create_dataset("live", imgs, masks, ["background", "disc"])
    add_tiny_run(ws, "live-20261207-000000-beef", "live", best_dice=0.6)  # a real run, older
    r = live.start_round(ws, "live", z=1, budget_s=4)
    assert r.join(120) and r.snapshot()["state"] == "done", r.snapshot()["error"]
    epochs = ws.catalog.epochs(r.run_id)
    assert epochs and all(np.isfinite(e["val_dice"]) for e in epochs)  # it did "validate", on its own strokes
    assert ws.catalog.run(r.run_id)["best_dice"] is None
    views = {v.run_id: v for v in run_views(ws, "live")}
    assert views[r.run_id].live and views[r.run_id].score_text == NOT_SCORED
    ordered, default = picker_runs(list(views.values()), "live")
    assert ordered[-1].run_id == r.run_id and ordered[default].run_id == "live-20261207-000000-beef"
    listed = {row["run_id"]: row for row in workspace_listing(ws)["runs"]}
    assert listed[r.run_id]["best_dice"] is None and listed[r.run_id]["score_text"] == NOT_SCORED
