"""core.nn.metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.nn.metrics import ConfusionAccumulator, confusion_matrix, scores_from_confusion, slice_scores

TRUTH = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 1, 1]], np.uint8)
PRED = np.array([[0, 1, 1, 1], [0, 0, 1, 0], [0, 0, 1, 1]], np.uint8)


def test_binary_by_hand():
    # truth 0: 6 px, 5 predicted 0, 1 predicted 1; truth 1: 6 px, 5 predicted 1, 1 predicted 0
    assert confusion_matrix(PRED, TRUTH, 2).tolist() == [[5, 1], [1, 5]]
    s = slice_scores(PRED, TRUTH, 2)
    assert s["accuracy"] == pytest.approx(10 / 12)
    assert s["pixel_error"] == pytest.approx(2 / 12)
    # Dice = 2TP / (2TP + FP + FN) = 10 / 12 for both classes; IoU = 5 / 7
    assert s["dice"] == pytest.approx([10 / 12, 10 / 12])
    assert s["iou"] == pytest.approx([5 / 7, 5 / 7])
    assert s["dice_fg"] == pytest.approx(10 / 12) and s["iou_fg"] == pytest.approx(5 / 7)
    assert s["mean_dice"] == pytest.approx(10 / 12) and s["mean_iou"] == pytest.approx(5 / 7)


def test_three_classes_by_hand_and_absent_class():
    truth = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    cm = confusion_matrix(pred, truth, 4)
    assert cm[:3, :3].tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    s = scores_from_confusion(cm)
    assert s["dice"][:3] == pytest.approx([2 / 4, 4 / 5, 2 / 3])
    assert s["iou"][:3] == pytest.approx([1 / 3, 2 / 3, 1 / 2])
    assert math.isnan(s["dice"][3]) and math.isnan(s["iou"][3])  # class 3 nowhere: not scored
    assert s["mean_dice"] == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)
    assert "dice_fg" not in s


def test_empty_foreground_predicted_empty_is_not_scored():
    s = slice_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), 2)
    assert s["accuracy"] == 1.0 and s["dice"][0] == 1.0
    assert math.isnan(s["dice_fg"])
    assert s["mean_dice"] == 1.0


def test_torch_and_numpy_agree_and_accumulator_sums():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 3, (2, 8, 8)), rng.integers(0, 3, (2, 8, 8))
    cm = confusion_matrix(a, b, 3)
    assert cm.dtype == np.int64 and cm.sum() == a.size
    assert (confusion_matrix(torch.from_numpy(a), torch.from_numpy(b), 3) == cm).all()
    acc = ConfusionAccumulator(3)
    acc.update(a[0], b[0]).update(torch.from_numpy(a[1]), torch.from_numpy(b[1]))
    assert (acc.matrix == cm).all()
    assert acc.compute() == scores_from_confusion(cm)
    acc.reset()
    assert acc.matrix.sum() == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="0..1"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ValueError):
        scores_from_confusion(np.zeros((2, 3)))
