"""core.workflow.predictions_view and core.workflow.review_prediction: the Predictions page's
decisions (threshold, what is scored, uncertainty) on a small stored prediction, without a network.

Four 16 x 16 slices, two classes: 0 and 1 labeled, 2 unlabeled, 3 an accepted prediction. The stored
probability of 'cell' is 200/255 inside a square, 100/255 in a band beside it and 0 elsewhere, so
the stored masks (threshold 0.5) hold the square and a threshold of 0.3 adds the band.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

import core.workflow.review as review_module
from core.predict.probabilities import uncertainty_map
from core.predict.stored import MASKS, PROB, SUMMARY, load_prediction
from core.workflow.predictions_view import (
    adjustable_threshold,
    headline_classes,
    slice_review,
    status_note,
    threshold_override,
)
from core.workflow.review import correction_queue, dataset_confusion, per_slice_scores, review_prediction

N, H, W = 4, 16, 16
RUN = "run-1"


@pytest.fixture
def ws(ws):
    """The four-slice dataset and its stored prediction (masks, probabilities, summary)."""
    images = np.full((N, H, W), 50, np.uint8)
    truth = np.zeros((N, H, W), np.uint8)
    truth[:, 4:10, 4:10] = 1
    truth[1, 4:10, 10:12] = 1  # slice 1's mask also holds the band: the lower threshold fits it better
    ws.create_dataset("cells", images, [truth[0], truth[1], None, None], ["bg", "cell"])
    ws.save_mask("cells", 3, truth[3], status="from-prediction")
    prob = np.zeros((N, H, W), np.uint8)
    prob[:, 4:10, 4:10] = 200
    prob[:, 4:10, 10:12] = 100
    prob[2, :, :] = np.maximum(prob[2], 120)  # the unlabeled slice: unsure everywhere
    folder = ws.predictions_dir("cells", RUN)
    tifffile.imwrite(folder / MASKS, (prob > 127).astype(np.uint8), photometric="minisblack")
    tifffile.imwrite(folder / PROB, prob, photometric="minisblack")
    slices = [{"z": z, "uncertainty": 0.1 * z} for z in range(N)]
    (folder / SUMMARY).write_text(
        json.dumps({"threshold": 0.5, "n_classes": 2, "class_names": ["bg", "cell"], "created": 1.0, "slices": slices})
    )
    return ws


def _count_truth_reads(ws, monkeypatch) -> dict[int, int]:
    reads: dict[int, int] = {}
    real = ws.read_truth

    def counted(dataset, z):
        reads[z] = reads.get(z, 0) + 1
        return real(dataset, z)

    monkeypatch.setattr(ws, "read_truth", counted)
    return reads


@pytest.mark.parametrize("threshold", [None, 0.3])
def test_review_scores_each_ground_truth_slice_once_and_matches_the_single_calls(ws, monkeypatch, threshold):
    expected = (
        per_slice_scores(ws, "cells", RUN, threshold),
        correction_queue(ws, "cells", RUN, threshold),
        dataset_confusion(ws, "cells", RUN, threshold),
    )
    reads = _count_truth_reads(ws, monkeypatch)
    numbers = review_prediction(ws, "cells", RUN, threshold)
    assert reads == {0: 1, 1: 1}  # the two labeled slices, once each; unlabeled and accepted never
    assert numbers.scores == expected[0] and numbers.queue == expected[1]
    assert np.array_equal(numbers.confusion, expected[2])
    assert [r["z"] for r in numbers.scores] == ([1, 0] if threshold is None else [0, 1])  # worst first
    assert numbers.slice_score(1) is numbers.scores[[r["z"] for r in numbers.scores].index(1)]
    assert numbers.slice_score(2) is None


def test_review_calls_the_scoring_once_per_ground_truth_slice(ws, monkeypatch):
    """Each ground-truth slice goes through the metric (core.nn.metrics.slice_scores) once per review;
    the three single calls it replaces would score it three times."""
    import core.predict.stored as stored

    calls: list[int] = []
    real = stored.slice_scores

    def counted(pred, truth, k):
        calls.append(int(truth.size))
        return real(pred, truth, k)

    monkeypatch.setattr(stored, "slice_scores", counted)
    review_prediction(ws, "cells", RUN, 0.3)
    assert len(calls) == 2  # slices 0 and 1; unlabeled and accepted never
    calls.clear()
    per_slice_scores(ws, "cells", RUN), correction_queue(ws, "cells", RUN), dataset_confusion(ws, "cells", RUN)
    assert len(calls) == 3 * 2  # what the page used to do per render


def test_slice_review_reads_its_score_from_the_review_and_scores_nothing(ws, monkeypatch):
    numbers = review_prediction(ws, "cells", RUN, 0.3)
    masks, probs, summary = load_prediction(ws, "cells", RUN)

    def no_scoring(*a, **k):
        raise AssertionError("the slice was scored again")

    monkeypatch.setattr(review_module, "score_prediction", no_scoring)
    monkeypatch.setattr("core.predict.stored.slice_scores", no_scoring)
    sv = slice_review(ws, "cells", RUN, 1, 0.3, masks, probs, summary, numbers)
    assert sv.scored and sv.status == "labeled" and sv.note == ""
    assert sv.score is numbers.slice_score(1) and sv.score["dice"] == pytest.approx(1.0)
    assert sv.pred[4:10, 4:12].all() and sv.pred.sum() == 6 * 8  # re-labeled at 0.3: square and band
    assert np.array_equal(sv.truth, ws.read_truth("cells", 1)) and sv.image.shape == (H, W)


def test_slice_review_at_the_stored_threshold_shows_the_stored_masks(ws):
    numbers = review_prediction(ws, "cells", RUN)
    masks, probs, summary = load_prediction(ws, "cells", RUN)
    sv = slice_review(ws, "cells", RUN, 1, None, masks, probs, summary, numbers)
    assert np.array_equal(sv.pred, masks[1]) and sv.pred.sum() == 36
    assert sv.score["dice"] == pytest.approx(2 * 36 / (36 + 48))
    assert 0 < sv.score["pixel_error"] == pytest.approx(12 / (H * W))


def test_unlabeled_and_accepted_slices_are_not_scored_and_uncertainty_comes_from_the_probabilities(ws):
    numbers = review_prediction(ws, "cells", RUN)
    masks, probs, summary = load_prediction(ws, "cells", RUN)
    for z, status in ((2, "unlabeled"), (3, "from-prediction")):
        sv = slice_review(ws, "cells", RUN, z, None, masks, probs, summary, numbers)
        assert (sv.status, sv.scored, sv.score) == (status, False, None)
        assert "not scored" in sv.note
    sv = slice_review(ws, "cells", RUN, 2, None, masks, probs, summary, numbers)
    p = probs[2].astype(np.float32) / 255.0
    assert np.allclose(sv.uncertainty, uncertainty_map(p[None]))
    assert sv.uncertainty.max() <= 1.0 and sv.uncertainty.mean() > 0.5  # unsure everywhere
    no_probs = slice_review(ws, "cells", RUN, 2, None, masks, None, summary, numbers)
    assert no_probs.uncertainty is None


def test_threshold_headline_order_and_status_notes():
    assert threshold_override(0.5, 0.5) is None and threshold_override(0.5 + 1e-12, 0.5) is None
    assert threshold_override(0.31, 0.5) == 0.31
    probs = np.zeros((1, 4, 4), np.uint8)
    assert adjustable_threshold(2, probs) and not adjustable_threshold(2, None) and not adjustable_threshold(3, probs)
    assert headline_classes(2) == [1, 0] and headline_classes(4) == [0, 1, 2, 3]
    assert status_note("labeled") == "" and status_note("edited") == ""
    assert "accepted prediction" in status_note("from-prediction") and "unlabeled" in status_note("unlabeled")
