"""core.workflow.assist: a starting mask from a stored prediction, else from the newest run's checkpoint."""

import json

import numpy as np
import pytest
import tifffile

from core.workflow.assist import model_sources, model_suggestion
from tests.synthetic import tiny_checkpoint


@pytest.fixture
def ws(ws):
    """The shared empty workspace (conftest) with a dataset 'tiny' of 3 unlabeled slices."""
    images = np.random.default_rng(0).integers(0, 255, (3, 32, 32), dtype=np.uint8)
    ws.create_dataset("tiny", images, None, ["background", "cell"])
    return ws


def test_no_model_is_a_value_error(ws):
    assert model_sources(ws, "tiny") == {"prediction_folder": False, "run": None, "checkpoint": None}
    with pytest.raises(ValueError, match="no model"):
        model_suggestion(ws, "tiny", 0)
    ws.catalog.create_run("r1", "tiny", {}, state="running")
    ws.catalog.update_run("r1", best_checkpoint="runs/r1/best.pt")  # running, and no file: not a source
    assert model_sources(ws, "tiny")["checkpoint"] is None


def test_stored_prediction_is_used(ws):
    folder = ws.predictions_dir("tiny", "run-0001")
    pred = np.zeros((3, 32, 32), np.uint8)
    pred[1, 3:9, 3:9] = 1
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5}))
    labels, source = model_suggestion(ws, "tiny", 1)
    assert source == "stored prediction run-0001"
    assert np.array_equal(labels, pred[1]) and labels.dtype == np.uint8


def test_checkpoint_of_finished_run_predicts_the_slice(ws):

    path = tiny_checkpoint(ws.run_dir("run-a") / "best.pt", ["background", "cell"], width=4, epoch=1, run_id="run-a")
    ws.catalog.create_run("run-a", "tiny", {}, state="done")
    ws.catalog.update_run("run-a", best_checkpoint=str(path))
    assert model_sources(ws, "tiny")["checkpoint"] == path
    labels, source = model_suggestion(ws, "tiny", 2)
    assert source == "model of run run-a"
    assert labels.shape == (32, 32) and set(np.unique(labels)) <= {0, 1}
