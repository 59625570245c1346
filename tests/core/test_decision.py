"""Decisions tuned on validation (core.nn.decision), stored in the checkpoint and used by predict;
dihedral test-time augmentation; 2.5D context (core.data.neighbours) in training and prediction."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from core.data.neighbours import context_indices, mirrored_index, neighbourhood
from core.nn.checkpoint import load_checkpoint, save_checkpoint
from core.nn.decision import Decision, apply_decision, cleanup, estimate_priors, tune_decision
from core.nn.model import ModelConfig, build_model
from core.predict.config import PredictConfig
from core.predict.inferer import decision_for, predict_slice, slice_input
from core.predict.stack import predict_stack
from core.train.data import PatchDataset, context_images, validation_tensors


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _ckpt(tmp_path, *, decision=None, context=0, n_classes=2, seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="classic", classic_width=4, n_classes=n_classes, in_channels=2 * context + 1)
    names = [f"c{i}" for i in range(n_classes)]
    path = save_checkpoint(
        tmp_path / f"m{seed}-{context}.pt", build_model(cfg), cfg, class_names=names, norm_window=(0, 255),
        patch_size=64, epoch=1, metrics={}, decision=decision, context=context,
    )  # fmt: skip
    return path


# -- decisions ---------------------------------------------------------------------------------


def test_tuning_finds_the_threshold_that_separates_validation_slices():
    rng = np.random.default_rng(0)
    truths = [rng.random((32, 32)) < 0.3 for _ in range(3)]
    # calibrated badly: foreground has P 0.25-0.35, background P 0.05-0.15
    probs = [np.where(t, 0.25, 0.05)[None] + 0.1 * rng.random((1, 32, 32)) for t in truths]
    d, scores = tune_decision(probs, [t.astype(np.uint8) for t in truths], 2)
    assert 0.15 <= d.threshold <= 0.25 and scores["mean_iou_tuned"] == pytest.approx(1.0)
    assert scores["mean_iou_default"] < 0.6 and d.min_size == 0 and d.hole_size == 0


def test_tuning_weights_classes_and_chooses_cleanup_only_when_it_helps():
    truth = np.zeros((40, 40), np.uint8)
    truth[5:20, 5:20] = 1
    truth[25:35, 25:35] = 2
    probs = np.full((3, 40, 40), 0.1, np.float32)
    probs[0] = 0.8
    probs[1][truth == 1] = 0.85
    probs[2][truth == 2] = 0.6  # under-confident class 2: needs a weight above 1
    probs[0][truth == 2] = 0.65
    noisy = probs.copy()
    noisy[1, 30, 2] = noisy[1, 2, 30] = 0.95  # two specks of class 1
    d, s = tune_decision([noisy], [truth], 3)
    assert d.class_weights[2] > 1.0 and d.min_size > 2 and s["mean_iou_tuned"] == pytest.approx(1.0)
    assert np.array_equal(apply_decision(noisy, d), truth)
    clean, _ = tune_decision([probs], [truth], 3)
    assert clean.min_size == 0, "no cleanup when it does not help"


def test_strokes_drawn_in_equal_shares_are_reweighed_to_the_slices_class_shares():
    """A model that learnt from strokes of both classes in equal shares (its P(class 1) is the
    posterior under a 50/50 prior) on slices that are 80 % class 1: the priors come back near 0.8,
    and the decision tuned with them beats the one tuned on the strokes as they are, on every pixel."""
    rng = np.random.default_rng(1)
    truths, probs, strokes = [], [], []
    for _ in range(3):
        t = (rng.random((64, 64)) < 0.8).astype(np.uint8)
        x = rng.normal(np.where(t == 1, 0.6, -0.6), 1.0)
        probs.append((1 / (1 + np.exp(-2 * 0.6 * x)))[None].astype(np.float32))  # posterior under 50/50
        s = np.full_like(t, 255)
        for k in (0, 1):  # 150 pixels of each class: equal shares, as strokes are drawn
            idx = rng.choice(np.flatnonzero(t.ravel() == k), 150, replace=False)
            s.ravel()[idx] = k
        truths.append(t)
        strokes.append(s)
    priors = estimate_priors(probs, strokes, 2)
    assert priors is not None and priors[1] == pytest.approx(0.8, abs=0.04)
    assert estimate_priors(probs, truths, 2) is None  # complete labels: nothing to estimate
    plain, _ = tune_decision(probs, strokes, 2, cleanup_sizes=(0,))
    weighed, _ = tune_decision(probs, strokes, 2, cleanup_sizes=(0,), priors=priors)
    assert weighed.threshold < 0.4 < plain.threshold

    def accuracy(d):
        return np.mean([(apply_decision(p, d) == t).mean() for p, t in zip(probs, truths)])

    assert accuracy(weighed) > accuracy(plain) + 0.03


def test_cleanup_removes_small_objects_and_fills_small_holes():
    m = np.zeros((20, 20), np.uint8)
    m[2:12, 2:12] = 1
    m[5:7, 5:7] = 0  # hole of 4 px
    m[15, 15] = 1  # speck of 1 px
    out = cleanup(m, min_size=3, hole_size=5)
    assert out[15, 15] == 0 and out[5:7, 5:7].all() and out.sum() == 100
    assert np.array_equal(cleanup(m, 0, 0), m) and m[15, 15] == 1, "the input is not changed"
    three = np.zeros((12, 12), np.uint8)
    three[1:10, 1:10] = 2
    three[4, 4] = 0
    assert cleanup(three, hole_size=2)[4, 4] == 2, "a hole takes the class around it"


def test_stored_threshold_is_used_by_predict_unless_overridden(tmp_path):
    images = np.random.default_rng(1).integers(0, 255, (2, 32, 32), dtype=np.uint8)
    legacy = load_checkpoint(_ckpt(tmp_path, seed=3))
    assert legacy.decision == Decision() and legacy.context == 0, "older checkpoints load with the defaults"
    for threshold, expected in ((0.0, 1), (1.0, 0)):
        path = _ckpt(tmp_path, decision={"threshold": threshold}, seed=3)
        ckpt = load_checkpoint(path)
        assert ckpt.decision.threshold == threshold
        res = predict_stack(ckpt, images, out_masks=tmp_path / f"m{threshold}.tif")
        assert (tifffile.imread(res.masks_path) == expected).all()
        over = predict_stack(ckpt, images, out_masks=tmp_path / f"o{threshold}.tif", cfg=PredictConfig(threshold=0.5))
        plain = predict_stack(legacy, images, out_masks=tmp_path / f"p{threshold}.tif")
        assert np.array_equal(tifffile.imread(over.masks_path), tifffile.imread(plain.masks_path))
    d = decision_for(load_checkpoint(_ckpt(tmp_path, decision={"threshold": 0.3, "min_size": 9})), PredictConfig())
    assert (d.threshold, d.min_size) == (0.3, 9)
    assert (
        decision_for(load_checkpoint(_ckpt(tmp_path, decision={"min_size": 9})), PredictConfig(cleanup=False)).min_size
        == 0
    )


# -- test-time augmentation --------------------------------------------------------------------


@pytest.mark.parametrize(
    "dihedral, transforms",
    [
        (False, [lambda a: a[..., ::-1], lambda a: a[..., ::-1, :]]),
        (True, [lambda a: np.rot90(a, 1, (-2, -1)), lambda a: np.swapaxes(a, -2, -1), lambda a: a[..., ::-1]]),
    ],
)
def test_tta_is_equivariant(tmp_path, dihedral, transforms):
    ckpt = load_checkpoint(_ckpt(tmp_path, seed=5))
    image = np.random.default_rng(2).integers(0, 255, (48, 48)).astype(np.uint8)
    cfg = PredictConfig(tta=True, dihedral=dihedral, device="cpu")
    probs = predict_slice(ckpt, image, cfg)
    for t in transforms:
        moved = predict_slice(ckpt, np.ascontiguousarray(t(image)), cfg)
        np.testing.assert_allclose(moved, t(probs), atol=2e-5)
    plain = predict_slice(ckpt, image, PredictConfig(device="cpu"))
    assert not np.allclose(plain, probs, atol=1e-4), "the transforms changed something"


# -- 2.5D context ------------------------------------------------------------------------------


def test_neighbourhood_mirrors_at_the_ends_of_the_stack():
    stack = np.arange(5, dtype=np.uint8)[:, None, None] * np.ones((5, 3, 4), np.uint8)
    assert neighbourhood(stack, 2, 2).shape == (5, 3, 4)
    assert neighbourhood(stack, 0, 2)[:, 0, 0].tolist() == [2, 1, 0, 1, 2]
    assert neighbourhood(stack, 4, 2)[:, 0, 0].tolist() == [2, 3, 4, 3, 2]
    assert context_indices(0, 3, 2) == [1, 0, 1, 0, 1, 0, 1] and mirrored_index(7, 1) == 0
    assert neighbourhood(stack, 3, 0).shape == (1, 3, 4)
    with pytest.raises(ValueError):
        neighbourhood(stack, 5, 1)


def test_training_inputs_carry_the_neighbours_as_channels():
    stack = np.random.default_rng(0).integers(0, 255, (6, 40, 40), dtype=np.uint8)
    imgs = context_images(stack, [0, 3], 2)
    assert [a.shape for a in imgs] == [(5, 40, 40)] * 2 and np.array_equal(imgs[1][2], stack[3])
    masks = [np.zeros((40, 40), np.uint8)] * 2
    x, y = PatchDataset(imgs, masks, np.array([[0, 4, 8]]), 32, (0.0, 255.0))[0]
    assert x.shape == (5, 32, 32) and y.shape == (32, 32)
    assert torch.allclose(x[0], torch.from_numpy(stack[2, 4:36, 8:40] / 255.0).float())
    (vx, vy), _ = validation_tensors(imgs, masks, (0.0, 255.0), 16, 24)
    assert vx.shape == (1, 5, 32, 32) and vy.shape == (1, 24, 24)
    assert context_images(stack, [1], 0)[0].shape == (40, 40)


def test_prediction_reads_the_same_neighbourhood_as_training(tmp_path):
    stack = np.random.default_rng(4).integers(0, 255, (4, 32, 32), dtype=np.uint8)
    ckpt = load_checkpoint(_ckpt(tmp_path, context=1, seed=7))
    assert ckpt.context == 1 and ckpt.model_config.in_channels == 3
    assert np.array_equal(slice_input(ckpt, stack, 0), stack[[1, 0, 1]])
    res = predict_stack(
        ckpt, stack, out_masks=tmp_path / "m.tif", out_prob=tmp_path / "p.tif", cfg=PredictConfig(device="cpu")
    )
    prob = tifffile.imread(res.prob_path)
    for z in (0, 3):
        one = predict_slice(ckpt, slice_input(ckpt, stack, z), PredictConfig(device="cpu"))[1]
        assert np.abs(prob[z] / 255.0 - one).max() <= 1 / 255 + 1e-6
