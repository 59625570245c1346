"""Training on sparse labels: the loss ignores not-labeled pixels, patches hold labeled pixels, and a
tiny U-Net trained on strokes of synthetic discs segments the pixels nobody labeled."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data.masks import UNLABELED
from core.nn.checkpoint import load_checkpoint
from core.predict.config import PredictConfig
from core.predict.inferer import predict_slice
from core.predict.probabilities import labels_from_probs
from core.store.workspace import Workspace
from core.train.config import LOSSES
from core.train.headless import train_headless
from core.train.loop import Loss
from core.train.sparse import labeled_patch_coords, simulate_strokes
from tests.core.test_training import _discs

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


def _case(n_classes: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 1 if n_classes == 2 else n_classes, 16, 16, generator=g)
    truth = torch.randint(0, n_classes, (2, 16, 16), generator=g)
    labeled = torch.zeros(2, 16, 16, dtype=torch.bool)
    labeled[:, 3:6, :] = True
    labeled[1, 10:12, 4:9] = True
    return logits, truth, labeled


def _grad(loss_fn, logits, target):
    x = logits.clone().requires_grad_(True)
    loss = loss_fn(x, target)
    loss.backward()
    return float(loss), x.grad


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_ignores_not_labeled_pixels(name, n_classes):
    loss_fn = Loss(name, n_classes)
    logits, truth, labeled = _case(n_classes)
    target = torch.where(labeled, truth, torch.full_like(truth, UNLABELED))
    loss, grad = _grad(loss_fn, logits, target)
    assert np.isfinite(loss) and grad.abs().sum() > 0
    assert torch.all(grad.permute(0, 2, 3, 1)[~labeled] == 0)  # no gradient where nothing is labeled
    # whatever the network says there, and whatever the truth there would have been, nothing changes
    other = logits.clone()
    other.permute(0, 2, 3, 1)[~labeled] = torch.randn(int((~labeled).sum()), other.shape[1]) * 5
    loss2, grad2 = _grad(loss_fn, other, target)
    assert loss2 == pytest.approx(loss, rel=1e-5) and torch.allclose(grad2, grad, atol=1e-6)
    relabeled = torch.where(labeled, truth, (truth + 1) % n_classes)  # other values on those pixels ...
    loss3, grad3 = _grad(loss_fn, logits, torch.where(labeled, relabeled, torch.full_like(truth, UNLABELED)))
    assert loss3 == pytest.approx(loss, rel=1e-6) and torch.equal(grad3, grad)  # ... once not labeled


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", ["bce", "bce+dice"])
def test_edge_weighted_loss_ignores_not_labeled_pixels(name, n_classes):
    loss_fn = Loss(name, n_classes, edge_weight=4.0)
    logits, truth, labeled = _case(n_classes)
    target = torch.where(labeled, truth, torch.full_like(truth, UNLABELED))
    loss, grad = _grad(loss_fn, logits, target)
    assert np.isfinite(loss) and torch.all(grad.permute(0, 2, 3, 1)[~labeled] == 0)
    other = logits.clone()
    other.permute(0, 2, 3, 1)[~labeled] = torch.randn(int((~labeled).sum()), other.shape[1]) * 5
    loss2, _ = _grad(loss_fn, other, target)
    assert loss2 == pytest.approx(loss, rel=1e-5)


def test_edge_weight_weighs_pixels_near_another_class():
    from core.train.loop import EDGE_RADIUS

    target = torch.zeros(1, 12, 12, dtype=torch.long)
    target[0, :, 6:] = 1
    target[0, 0, 0] = UNLABELED
    w = Loss("bce+dice", 2, edge_weight=4.0).edge_weights(target)[0]
    near = torch.zeros(12, 12, dtype=torch.bool)
    near[:, 6 - EDGE_RADIUS : 6 + EDGE_RADIUS] = True  # within EDGE_RADIUS columns of the boundary
    assert torch.all(w[near] == 5.0) and w[0, 0] == 0.0
    rest = ~near
    rest[0, 0] = False
    assert torch.all(w[rest] == 1.0)
    # a weighted mean: with every weight alike it is the plain BCE; near the edge, errors cost more
    logits = torch.zeros(1, 1, 12, 12)
    assert float(Loss("bce", 2, edge_weight=0.0)(logits, target)) == pytest.approx(
        float(Loss("bce", 2)(logits, target))
    )
    wrong_far, wrong_near = torch.zeros(1, 1, 12, 12), torch.zeros(1, 1, 12, 12)
    wrong_far[0, 0, 5, 11] = -8.0  # class 1 pixel far from the edge, called class 0
    wrong_near[0, 0, 5, 6] = -8.0  # class 1 pixel at the edge, called class 0
    weighted = Loss("bce", 2, edge_weight=4.0)
    base = float(weighted(logits, target))
    extra_near, extra_far = float(weighted(wrong_near, target)) - base, float(weighted(wrong_far, target)) - base
    assert extra_near == pytest.approx(5 * extra_far, rel=0.02)  # the same mistake, 1 + 4 times the cost
    # Dice alone has no per-pixel term to weigh: the weight changes nothing
    assert float(Loss("dice", 2, edge_weight=4.0)(wrong_near, target)) == float(Loss("dice", 2)(wrong_near, target))


def test_deep_supervised_loss_upsamples_and_weighs_the_coarser_outputs():
    logits, truth, _ = _case(2)
    loss_fn = Loss("bce+dice", 2)
    h, w = truth.shape[-2:]
    assert float(loss_fn((logits, []), truth)) == pytest.approx(float(loss_fn(logits, truth)))
    coarse = torch.nn.functional.interpolate(logits, size=(h // 2, w // 2), mode="bilinear", align_corners=False)
    up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    expected = (0.5 * float(loss_fn(up, truth)) + float(loss_fn(logits, truth))) / 1.5
    assert float(loss_fn((logits, [coarse]), truth)) == pytest.approx(expected, rel=1e-5)


def test_bce_on_complete_masks_is_the_plain_mean():
    from segmentation_models_pytorch.losses import SoftBCEWithLogitsLoss

    logits, truth, _ = _case(2)
    ours = Loss("bce", 2)(logits, truth)
    assert float(ours) == pytest.approx(float(SoftBCEWithLogitsLoss()(logits, truth[:, None].float())), rel=1e-5)


def test_nothing_labeled_gives_zero_loss_not_nan():
    logits, truth, _ = _case(3)
    loss, grad = _grad(Loss("bce+dice", 3), logits, torch.full_like(truth, UNLABELED))
    assert loss == 0.0 and torch.all(grad == 0)


def test_patches_of_partial_slices_hold_labeled_pixels():
    partial = np.full((100, 120), UNLABELED, np.uint8)
    partial[70:72, 90:100] = 1
    partial[10, 5:9] = 0
    empty = np.full((100, 120), UNLABELED, np.uint8)
    complete = np.zeros((100, 120), np.uint8)
    rows = labeled_patch_coords([partial, empty, complete], 32, 200, np.random.default_rng(1), skip_empty=False)
    masks = [partial, empty, complete]
    assert 1 not in set(rows[:, 0].tolist()) and {0, 2} <= set(rows[:, 0].tolist())
    for s, y, x in rows:
        assert (masks[s][y : y + 32, x : x + 32] != UNLABELED).any()


def test_tiny_model_trained_on_strokes_segments_unlabeled_pixels(tmp_path):
    ws = Workspace(tmp_path / "ws")
    imgs, truth = _discs(8, 64, 2, seed=0)
    rng = np.random.default_rng(0)
    strokes = np.stack([simulate_strokes(t, 0.08, rng, width=3, length=12, margin=1) for t in truth])
    assert (strokes != UNLABELED).mean() <= 0.1
    ws.create_dataset("discs", imgs, strokes, ["background", "disc"])
    assert set(ws.dataset("discs").coverage) == {"partial"}
    config = {
        "model": {"arch": "classic", "classic_width": 4},
        "patch_size": 64,
        "batch_size": 8,
        "steps_per_epoch": 10,
        "epochs": 10,
        "lr": 1e-2,
        "val_fraction": 0.25,
        "val_split": "random",  # independent synthetic images, not adjacent sections: no block, no gap
    }
    out = train_headless(ws, "discs", config=config)
    assert out["state"] == "done", out["error"]
    ckpt = load_checkpoint(out["best_checkpoint"], device="cpu")
    hits = tp = fp = fn = n = 0
    for z in range(8):
        pred = labels_from_probs(predict_slice(ckpt, imgs[z], PredictConfig()), 0.5)
        unl = strokes[z] == UNLABELED
        hits += int((pred[unl] == truth[z][unl]).sum())
        n += int(unl.sum())
        tp += int(((pred == 1) & (truth[z] == 1) & unl).sum())
        fp += int(((pred == 1) & (truth[z] == 0) & unl).sum())
        fn += int(((pred == 0) & (truth[z] == 1) & unl).sum())
    fg = truth[strokes == UNLABELED].mean()
    dice = 2 * tp / max(2 * tp + fp + fn, 1)
    # chance: predicting disc at random with its prior gives Dice = prior (about 0.1-0.2 here)
    assert dice > max(0.4, 3 * fg), (dice, fg)
    assert hits / n > max(fg, 1 - fg), (hits / n, fg)
