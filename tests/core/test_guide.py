"""core.workflow.guide: next steps follow the workflow import -> label -> train -> predict -> export."""

import numpy as np

from core.store.workspace import Workspace
from core.workflow.guide import last_run, next_steps


def _pages(ws, ds):
    return [s.page for s in next_steps(ws, ds)]


def test_steps_follow_the_workflow(tmp_path):
    ws = Workspace(tmp_path)
    assert _pages(ws, None) == ["pages/data.py"]
    ws.create_dataset("d", np.zeros((3, 8, 8), np.uint8), None, ["bg", "fg"])
    assert _pages(ws, "d")[0] == "pages/label.py"
    ws.save_mask("d", 0, np.ones((8, 8), np.uint8), status="labeled")
    assert _pages(ws, "d")[0] == "pages/train.py" and _pages(ws, "d")[-1] == "pages/export.py"
    ws.catalog.create_run("r1", "d", {}, state="running")
    assert "is running" in next_steps(ws, "d")[0].why
    ws.catalog.update_run("r1", state="done", best_checkpoint="runs/r1/best.pt", best_dice=0.5)
    assert last_run(ws, "d")["run_id"] == "r1"
    steps = next_steps(ws, "d")
    assert steps[0].page == "pages/predictions.py" and steps[0].label == "Predict the dataset"
    assert "pages/label.py" in [s.page for s in steps]  # unlabeled slices can start from the model
