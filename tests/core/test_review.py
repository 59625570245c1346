"""core.workflow.review (and core.predict.stored/dataset): stored predictions, the correction queue,
per-slice scores, the confusion matrix, accepting a prediction.

The dataset has six slices of synthetic discs: 0 and 1 labeled correctly, 2 labeled with its mask
inverted (a labeling mistake the queue must bring up first among labeled slices), 3 unlabeled and
clean, 4 unlabeled pure noise (the most uncertain), 5 an accepted prediction (``from-prediction``).
A classic U-Net of width 4 is trained on discs for a few seconds so that these differ as expected.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from core.nn.checkpoint import save_checkpoint
from core.nn.metrics import confusion_matrix
from core.nn.model import ModelConfig, build_model
from core.predict.config import PredictConfig
from core.predict.dataset import predict_dataset
from core.predict.probabilities import relabel
from core.predict.stored import list_predictions, load_prediction
from core.store.workspace import Workspace
from core.workflow.review import (
    accept_prediction,
    class_dice,
    collapse_warning,
    correction_queue,
    dataset_confusion,
    per_slice_scores,
)
from tests.synthetic import discs, tiny_checkpoint

H, W = 64, 80


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_thread):
    """A classic U-Net (width 4) trained 100 steps on 48 x 48 discs: segments them, unsure on noise."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = ModelConfig(arch="classic", classic_width=4)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        xs, ys = zip(*(discs(rng, 48, 48) for _ in range(8)))
        x = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32) / 255.0)
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "tiny.pt",
        model,
        cfg,
        class_names=["bg", "cell"],
        norm_window=(0.0, 255.0),
        patch_size=48,
        epoch=3,
        metrics={},
        run_id="run-tiny",
    )


@pytest.fixture(scope="module")
def predicted(tmp_path_factory, checkpoint):
    """A workspace with the six-slice dataset, predicted once: ``(ws, truth masks, run_id)``."""
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    rng = np.random.default_rng(7)
    pairs = [discs(rng, H, W, n=4) for _ in range(6)]
    images = np.stack([p[0] for p in pairs])
    images[4] = rng.integers(0, 256, (H, W))
    truth = [p[1] for p in pairs]
    masks = [truth[0], truth[1], 1 - truth[2], None, None, None]
    ws.create_dataset("cells", images, masks, ["bg", "cell"])
    ws.save_mask("cells", 5, truth[5], status="from-prediction")
    calls = []
    result = predict_dataset(ws, "cells", checkpoint, PredictConfig(), progress=lambda d, t, e: calls.append(d))
    assert calls == [1, 2, 3, 4, 5, 6]
    assert (result.n_done, result.n_total, result.cancelled) == (6, 6, False)
    return ws, truth, "run-tiny"


def test_predict_dataset_stores_masks_probabilities_and_summary(predicted, checkpoint):
    ws, truth, run_id = predicted
    assert list_predictions(ws, "cells") == [run_id]
    masks, probs, summary = load_prediction(ws, "cells", run_id)
    assert masks.shape == probs.shape == (6, H, W) and masks.dtype == probs.dtype == np.uint8
    np.testing.assert_array_equal(relabel(ws.predictions_dir("cells", run_id) / "prob.tif", 0.5), masks)
    assert summary["checkpoint"] == str(checkpoint.resolve()) and summary["threshold"] == 0.5
    assert summary["n_done"] == 6 and summary["class_names"] == ["bg", "cell"]
    slices = summary["slices"]
    assert [s["z"] for s in slices] == list(range(6))
    assert all(0.0 <= s["uncertainty"] <= 1.0 for s in slices)
    assert [("dice" in s) for s in slices] == [True, True, True, False, False, False]  # ground truth only
    assert slices[0]["dice"] > 0.9 and slices[2]["dice"] < 0.2
    assert np.array(summary["confusion"]).shape == (2, 2)


def test_correction_queue_puts_label_next_then_worst_labeled_then_accepted(predicted):
    ws, _, run_id = predicted
    queue = correction_queue(ws, "cells", run_id)
    zs = [r["z"] for r in queue]
    assert zs[:3] == [4, 3, 2] and sorted(zs[3:5]) == [0, 1] and zs[5] == 5
    assert [r["status"] for r in queue] == ["unlabeled"] * 2 + ["labeled"] * 3 + ["from-prediction"]
    assert set(queue[0]) == {"z", "name", "status", "dice", "iou", "pixel_error", "uncertainty", "priority", "reason"}
    prios = [r["priority"] for r in queue]
    assert prios == sorted(prios, reverse=True)
    assert queue[0]["uncertainty"] > queue[1]["uncertainty"] and "label this next" in queue[0]["reason"]
    assert queue[0]["dice"] is None and queue[2]["dice"] < 0.2
    labeled = [r["dice"] for r in queue if r["status"] == "labeled"]
    assert labeled == sorted(labeled)
    assert queue[0]["name"] == ws.dataset("cells").slice_names[4]


def test_per_slice_scores_and_confusion_follow_the_current_masks_and_threshold(predicted):
    ws, truth, run_id = predicted
    rows = per_slice_scores(ws, "cells", run_id)
    assert [r["z"] for r in rows][0] == 2 and sorted(r["z"] for r in rows) == [0, 1, 2]
    assert all(r["dice"] > 0.9 for r in rows[1:])
    assert {"dice", "iou", "pixel_error", "accuracy", "uncertainty"} <= set(rows[0])
    masks, _, _ = load_prediction(ws, "cells", run_id)
    expected = sum(confusion_matrix(masks[z], ws.read_mask("cells", z), 2) for z in (0, 1, 2))
    np.testing.assert_array_equal(dataset_confusion(ws, "cells", run_id), expected)
    # a new threshold re-labels from the stored probabilities: fewer foreground predictions
    strict = dataset_confusion(ws, "cells", run_id, threshold=0.95)
    assert strict[:, 1].sum() < expected[:, 1].sum() and strict.sum() == expected.sum()


def test_accept_prediction_saves_a_from_prediction_version(predicted):
    ws, _, run_id = predicted
    masks, _, _ = load_prediction(ws, "cells", run_id)
    prob_path = ws.predictions_dir("cells", run_id) / "prob.tif"
    try:
        assert accept_prediction(ws, "cells", run_id, 3) == 1
        np.testing.assert_array_equal(ws.read_mask("cells", 3), masks[3])
        assert ws.dataset("cells").statuses[3] == "from-prediction"
        assert ws.mask_history("cells", 3)[-1].source == f"accepted:{run_id}"  # the history names the run
        assert accept_prediction(ws, "cells", run_id, 3, threshold=0.9) == 2
        np.testing.assert_array_equal(ws.read_mask("cells", 3), relabel(prob_path, 0.9, z=3))
        queue = correction_queue(ws, "cells", run_id)
        assert [r["z"] for r in queue if r["status"] == "unlabeled"] == [4]  # 3 moved to the accepted block
        assert queue[-2]["z"] == 3 or queue[-1]["z"] == 3
    finally:
        while ws.can_undo("cells", 3):
            ws.undo_mask("cells", 3)
    assert ws.dataset("cells").statuses[3] == "unlabeled"
    with pytest.raises(ValueError, match="no prediction"):
        accept_prediction(ws, "cells", run_id, 6)


def test_wrong_checkpoint_or_run_is_refused(predicted, tmp_path):
    ws, _, run_id = predicted
    k3 = tiny_checkpoint(tmp_path / "k3.pt", ["a", "b", "c"])
    with pytest.raises(ValueError, match="3 classes"):
        predict_dataset(ws, "cells", k3)
    with pytest.raises(ValueError, match="no prediction 'nope'"):
        load_prediction(ws, "cells", "nope")
    images = np.zeros((1, 16, 16), np.uint8)
    ws.create_dataset("empty", images, None, ["bg", "fg"])
    assert list_predictions(ws, "empty") == []


def test_run_id_defaults_to_the_checkpoint_file_stem_and_cancel_keeps_done_slices(predicted, tmp_path):
    ws, _, _ = predicted
    path = tiny_checkpoint(tmp_path / "my model v2.pt", ["bg", "cell"])
    cancel = threading.Event()
    res = predict_dataset(ws, "cells", path, progress=lambda d, t, e: cancel.set() if d == 2 else None, cancel=cancel)
    assert (res.n_done, res.cancelled) == (2, True)
    assert "my_model_v2" in list_predictions(ws, "cells")
    masks, _, summary = load_prediction(ws, "cells", "my_model_v2")
    assert masks.shape[0] == 2 and summary["cancelled"] and len(summary["slices"]) == 2
    assert [r["z"] for r in correction_queue(ws, "cells", "my_model_v2")] != []


def test_class_dice_and_collapse_warning():
    rows = [{"dice_per_class": [0.0, 0.9, float("nan")]}, {"dice_per_class": [0.2, 0.7, 0.5]}]
    per_class, mean = class_dice(rows, 3)
    assert per_class == pytest.approx([0.1, 0.8, 0.5]) and mean == pytest.approx(1.4 / 3)
    assert class_dice([], 2) == ([None, None], None)
    # everything predicted as 'cell': 'membrane' (20 % of the truth) is never predicted
    warn = collapse_warning(np.array([[0, 20], [0, 80]]), ["membrane", "cell"])
    assert "predicts no 'membrane' pixels" in warn and "0.0 % predicted vs 20.0 % in the masks" in warn
    assert "almost no" in collapse_warning(np.array([[1, 19], [0, 80]]), ["membrane", "cell"])
    assert collapse_warning(np.array([[15, 5], [5, 75]]), ["membrane", "cell"]) is None
    assert collapse_warning(np.array([[199, 0], [1, 0]]), ["bg", "rare"]) is None  # 0.5 % of the pixels: not judged
    assert collapse_warning(np.zeros((2, 2)), ["a", "b"]) is None


def test_predict_dataset_records_fit_warnings_and_a_job_can_be_cancelled(tmp_path):
    from core.predict.dataset import PredictionJob, prediction_jobs

    ws = Workspace(tmp_path / "ws")
    images = np.full((3, 32, 32), 200, np.uint16) + np.arange(32, dtype=np.uint16)[None, None] * 100
    ws.create_dataset("u16", images, [np.zeros((32, 32), np.uint8), None, None], ["bg", "mito"])
    ckpt = tiny_checkpoint(
        tmp_path / "best.pt", ["bg", "cell"], width=4, epoch=1, run_id="r8", extra={"dataset": "isbi"}
    )
    result = predict_dataset(ws, "u16", ckpt)
    assert len(result.warnings) == 3  # other classes, other dataset, 16-bit data on an 8-bit window
    _, _, summary = load_prediction(ws, "u16", "r8")
    assert summary["warnings"] == list(result.warnings) and summary["trained_on"] == "isbi"
    assert summary["model_class_names"] == ["bg", "cell"]

    job = PredictionJob(ws, "u16", ckpt, run_id="r8-cancelled")
    job.cancel()  # before the first slice: nothing written, state says so
    prediction_jobs(ws, "u16", start=job)
    assert job.join(60) and job.snapshot()["state"] == "cancelled" and job.snapshot()["result"].n_done == 0
    assert "r8-cancelled" not in list_predictions(ws, "u16")
    assert prediction_jobs(ws, "u16") is job
