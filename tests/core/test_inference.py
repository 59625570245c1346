"""core.predict: tiling vs whole-slice forward, stacks on disk, cancel, TTA, uncertainty, memory.

Two tiny networks are trained for a few seconds on synthetic discs (48 x 48 patches), so that
they behave like trained models (a random network's output is dominated by far context and says
little about tiling): a classic U-Net of width 4 and an smp U-Net with a 3-stage ResNet-18 encoder.

Tolerances (tiled with the defaults, tile = training patch 48, overlap 0.25, vs one forward pass of
the whole slice; measured on 150x190 to 200x232 slices of discs):

- one tile (slice no bigger than a tile): max |dP| <= 1e-5 (float rounding only);
- several tiles: max |dP| <= 0.25 at every pixel (measured 0.06 to 0.19, largest near the image
  border where tile and image edges meet), mean |dP| <= 1e-3 (measured 5e-5 to 6e-4), labels at
  threshold 0.5 equal on >= 99.9 % of pixels (measured >= 99.96 %).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from core.data.intensity import normalize
from core.data.io import read_stack
from core.nn.checkpoint import load_checkpoint, save_checkpoint
from core.nn.model import ModelConfig, build_model, probabilities, required_multiple
from core.predict.config import PredictConfig
from core.predict.inferer import predict_slice
from core.predict.probabilities import (
    labels_from_probs,
    read_prediction_tiff,
    relabel,
    slice_uncertainty,
    uncertainty_map,
)
from core.predict.stack import predict_headless, predict_stack
from tests.synthetic import discs, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
PATCH = 48
ONE_TILE_TOL = 1e-5
TILED_MAX_TOL = 0.25
TILED_MEAN_TOL = 1e-3
LABEL_AGREEMENT = 0.999


def train_tiny(cfg: ModelConfig, steps: int, lr: float, seed: int = 0) -> torch.nn.Module:
    """A few hundred images' worth of plain BCE training on discs; enough to segment them."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        xs, ys = zip(*(discs(rng, PATCH, PATCH) for _ in range(8)))
        x = torch.from_numpy(np.stack(xs)[:, None].astype(np.float32) / 255.0)
        y = torch.from_numpy(np.stack(ys)[:, None].astype(np.float32))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py


MODELS = {
    "classic": (ModelConfig(arch="classic", classic_width=4), 100, 1e-2),
    "smp": (ModelConfig(arch="Unet", encoder="resnet18", encoder_depth=3), 50, 3e-3),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    """Checkpoint paths of the two tiny trained models, trained once per module."""
    folder = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for name, (cfg, steps, lr) in MODELS.items():
        model = train_tiny(cfg, steps, lr)
        paths[name] = save_checkpoint(
            folder / f"{name}.pt",
            model,
            cfg,
            class_names=["bg", "disc"],
            norm_window=(0.0, 255.0),
            patch_size=PATCH,
            epoch=1,
            metrics={},
            run_id=f"tiny-{name}",
        )
    return paths


def whole_slice_forward(ckpt, image: np.ndarray) -> np.ndarray:
    """Reference: one forward pass of the reflect-padded whole slice, cropped back; (K, Y, X)."""
    h, w = image.shape
    m = required_multiple(ckpt.model_config)
    x = np.pad(normalize(image, ckpt.norm_window), ((0, -h % m), (0, -w % m)), mode="reflect")
    with torch.inference_mode():
        logits = ckpt.model(torch.from_numpy(x)[None, None])
        return probabilities(logits, ckpt.model_config.n_classes)[0, :, :h, :w].numpy()


# -- one slice ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(40, 44), (PATCH, PATCH), (7, 30)])
def test_a_slice_that_fits_one_tile_equals_the_whole_slice_forward(trained, name, shape):
    ckpt = load_checkpoint(trained[name])
    image, _ = discs(np.random.default_rng(1), *shape)
    probs = predict_slice(ckpt, image)
    assert probs.shape == (2,) + shape and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-6)
    assert np.abs(probs - whole_slice_forward(ckpt, image)).max() <= ONE_TILE_TOL


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape,seed", [((160, 200), 6), ((150, 190), 7)])
def test_tiled_prediction_matches_the_whole_slice_within_tolerance(trained, name, shape, seed):
    ckpt = load_checkpoint(trained[name])
    image, mask = discs(np.random.default_rng(seed), *shape, n=10)
    whole = whole_slice_forward(ckpt, image)
    tiled = predict_slice(ckpt, image)  # defaults: tile 48 (the patch), overlap 0.25: about 5 x 6 tiles
    diff = np.abs(tiled - whole)
    assert diff.max() <= TILED_MAX_TOL, f"max |dP| {diff.max():.3f}"
    assert diff.mean() <= TILED_MEAN_TOL, f"mean |dP| {diff.mean():.2e}"
    assert (labels_from_probs(tiled) == labels_from_probs(whole)).mean() >= LABEL_AGREEMENT
    # the model is trained: it finds the discs
    pred = labels_from_probs(tiled)
    assert 2 * (pred & mask).sum() / (pred.sum() + mask.sum()) > 0.9
    # tiles per batch change nothing
    one_by_one = predict_slice(ckpt, image, PredictConfig(batch_size=1))
    assert np.abs(one_by_one - tiled).max() <= 1e-5


def test_tta_is_flip_consistent_and_close_to_the_plain_prediction(trained):
    ckpt = load_checkpoint(trained["classic"])
    image, _ = discs(np.random.default_rng(3), PATCH, 64)
    plain = predict_slice(ckpt, image)
    tta = predict_slice(ckpt, image, PredictConfig(tta=True))
    assert tta.shape == plain.shape == (2, PATCH, 64) and tta.dtype == np.float32
    np.testing.assert_allclose(tta.sum(axis=0), 1.0, atol=1e-6)
    assert (labels_from_probs(tta) == labels_from_probs(plain)).mean() > 0.99
    # averaging over the four flips makes the prediction of a flipped slice the flipped prediction
    flipped = predict_slice(ckpt, np.ascontiguousarray(image[::-1, ::-1]), PredictConfig(tta=True))
    np.testing.assert_allclose(flipped, tta[:, ::-1, ::-1], atol=1e-5)


def test_uncertainty_is_higher_on_a_noise_slice_than_on_a_clean_one(trained):
    ckpt = load_checkpoint(trained["classic"])
    rng = np.random.default_rng(11)
    clean, _ = discs(rng, 96, 96, n=6)
    noise = rng.integers(0, 256, (96, 96)).astype(np.uint8)
    u_clean = slice_uncertainty(predict_slice(ckpt, clean))
    u_noise = slice_uncertainty(predict_slice(ckpt, noise))
    assert 0.0 <= u_clean < u_noise <= 1.0
    assert u_noise > 2 * u_clean, (u_clean, u_noise)


def test_labels_and_uncertainty_of_probabilities():
    sure = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], np.float32)
    even = np.full((3, 1, 2), 1 / 3, np.float32)
    assert labels_from_probs(sure).tolist() == [[0, 1]]
    assert labels_from_probs(np.array([[[0.2]], [[0.5]], [[0.3]]])).tolist() == [[1]]
    assert labels_from_probs(np.array([[[0.3]], [[0.7]]]), threshold=0.8).tolist() == [[0]]
    np.testing.assert_allclose(uncertainty_map(sure), 0.0, atol=1e-5)
    np.testing.assert_allclose(uncertainty_map(even), 1.0, atol=1e-5)
    assert uncertainty_map(even).dtype == np.float32 and uncertainty_map(even).shape == (1, 2)
    assert slice_uncertainty(even) == pytest.approx(1.0, abs=1e-5)


def test_bad_inputs_are_refused_with_value_errors(trained):
    ckpt = load_checkpoint(trained["classic"])
    with pytest.raises(ValueError, match="overlap"):
        PredictConfig(overlap=1.0)
    with pytest.raises(ValueError, match=r"\(Y, X\)"):
        predict_slice(ckpt, np.zeros((2, 3, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="choose a channel"):
        predict_stack(ckpt, np.zeros((2, 3, 16, 16), np.uint8), out_masks=Path("unused.tif"))


# -- stacks ------------------------------------------------------------------------------------


def write_stack(path: Path, stack: np.ndarray) -> Path:
    tifffile.imwrite(path, stack, photometric="minisblack")
    return path


def test_stack_is_written_slice_by_slice_and_relabel_reproduces_the_masks(trained, tmp_path):
    ckpt = load_checkpoint(trained["classic"])
    rng = np.random.default_rng(4)
    stack = np.stack([discs(rng, 40, 52)[0] for _ in range(3)])
    src = read_stack(write_stack(tmp_path / "in.tif", stack))
    assert isinstance(src.data, np.memmap)
    calls = []
    res = predict_stack(
        ckpt,
        src.data,
        out_masks=tmp_path / "out" / "masks.tif",
        out_prob=tmp_path / "out" / "prob.tif",
        progress=lambda d, t, eta: calls.append((d, t, eta)),
    )
    assert (res.n_done, res.n_total, res.cancelled, len(res.uncertainty)) == (3, 3, False, 3)
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)] and calls[-1][2] == 0.0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["masks.tif", "prob.tif"]  # no temp left
    masks, prob = tifffile.imread(res.masks_path), read_prediction_tiff(res.prob_path)
    assert masks.shape == prob.shape == (3, 40, 52) and masks.dtype == prob.dtype == np.uint8
    for z in range(3):
        p = predict_slice(ckpt, stack[z])
        assert np.abs(prob[z] / 255.0 - p[1]).max() <= 0.5 / 255 + 1e-6
        assert (masks[z] == labels_from_probs(p)).mean() > 0.999  # equal but for 1/255 quantisation
        assert res.uncertainty[z] == pytest.approx(slice_uncertainty(p), abs=1e-6)
    np.testing.assert_array_equal(relabel(res.prob_path, 0.5), masks)
    high = relabel(res.prob_path, 0.9)
    assert high.sum() < masks.sum() and not (high & (1 - masks)).any()
    np.testing.assert_array_equal(relabel(res.prob_path, 0.9, z=1), high[1])


def test_cancel_keeps_the_completed_slices_as_valid_tiffs(trained, tmp_path):
    ckpt = load_checkpoint(trained["classic"])
    stack = np.random.default_rng(5).integers(0, 256, (5, 32, 32)).astype(np.uint8)
    cancel = threading.Event()

    def progress(done, total, eta):
        if done == 2:
            cancel.set()

    res = predict_stack(
        ckpt, stack, out_masks=tmp_path / "m.tif", out_prob=tmp_path / "p.tif", progress=progress, cancel=cancel
    )
    assert (res.n_done, res.n_total, res.cancelled) == (2, 5, True)
    assert tifffile.imread(res.masks_path).shape == (2, 32, 32)
    assert read_stack(res.masks_path).data.shape == (2, 32, 32)
    assert read_prediction_tiff(res.prob_path).shape == (2, 32, 32)
    # cancelled before the first slice: nothing written, an existing file is left alone
    before = (tmp_path / "m.tif").read_bytes()
    res0 = predict_stack(ckpt, stack, out_masks=tmp_path / "m.tif", cancel=cancel)
    assert (res0.n_done, res0.masks_path, res0.cancelled) == (0, None, True)
    assert (tmp_path / "m.tif").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif", "p.tif"]


@pytest.mark.parametrize("z", [1, 3])
def test_multiclass_probabilities_are_stored_per_class(tmp_path, z):
    path = tiny_checkpoint(tmp_path / "k3.pt", ["a", "b", "c"], seed=0)
    ckpt = load_checkpoint(path)
    stack = np.random.default_rng(0).integers(0, 256, (z, 20, 24)).astype(np.uint8)
    res = predict_stack(ckpt, stack, out_masks=tmp_path / "m.tif", out_prob=tmp_path / "p.tif", prob_dtype="float16")
    prob = read_prediction_tiff(res.prob_path)
    masks = read_prediction_tiff(res.masks_path)
    assert prob.shape == (z, 3, 20, 24) and prob.dtype == np.float16 and masks.shape == (z, 20, 24)
    np.testing.assert_allclose(prob.astype(np.float32).sum(axis=1), 1.0, atol=3e-3)
    np.testing.assert_array_equal(relabel(res.prob_path), masks)
    np.testing.assert_array_equal(masks, prob.argmax(axis=1))


def test_predict_headless_returns_the_summary(trained, tmp_path):
    stack = np.stack([discs(np.random.default_rng(z), 48, 60)[0] for z in range(2)])
    out = predict_headless(
        trained["classic"],
        write_stack(tmp_path / "s.tif", stack),
        tmp_path / "masks.tif",
        prob=tmp_path / "prob.tif",
        tta=True,
    )
    assert set(out) == {
        "input",
        "out",
        "prob",
        "slices",
        "seconds",
        "slices_per_s",
        "mean_uncertainty",
        "device",
        "cancelled",
        "warnings",
        "checkpoint",
        "decision",
    }
    assert out["decision"] == {"threshold": 0.5, "class_weights": [], "min_size": 0, "hole_size": 0}  # none stored
    assert out["warnings"] == []  # discs in [0, 1] on a model trained on them: nothing to warn about
    assert out["slices"] == 2 and out["device"] == "cpu" and out["cancelled"] is False
    assert 0.0 <= out["mean_uncertainty"] <= 1.0
    assert tifffile.imread(out["out"]).shape == (2, 48, 60)
    json.dumps(out)


# -- memory ------------------------------------------------------------------------------------


def test_a_stack_bigger_than_the_memory_bound_is_predicted_in_a_few_slices_of_memory(tmp_path):
    """48 x 512 x 512 uint8 (12 MB; 48 MB as float32 images, 96 MB more as two-class float
    probabilities), predicted in a fresh process from a memory-mapped TIFF.

    Bound: the whole stack's peak RSS exceeds the peak of predicting one slice of it by less than
    16 float32 slices (16 MB, a third of the float volume). Measured: 8 MB, the same for 24, 48 or
    96 slices (a one-slice prediction itself costs about 70 MB over the imported, loaded process:
    convolution workspaces and per-shape caches that do not grow with the stack).
    """
    z, h, w = 48, 512, 512
    rng = np.random.default_rng(0)
    stack_path = tmp_path / "big.tif"
    with tifffile.TiffWriter(stack_path) as tw:  # written slice by slice: this process stays small too
        for _ in range(z):
            tw.write(rng.integers(0, 256, (h, w), dtype=np.uint8), contiguous=True, photometric="minisblack")
    ckpt = tiny_checkpoint(tmp_path / "m.pt", ["bg", "fg"], patch_size=256, seed=0)
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "core" / "_predict_rss.py"), str(ckpt), str(stack_path), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    m = json.loads(out.stdout.strip().splitlines()[-1])
    assert m["memmap"] and m["slices"] == z
    float_volume, slice_f32 = z * h * w * 4, h * w * 4
    assert m["extra"] < min(16 * slice_f32, float_volume / 3), m
    assert tifffile.imread(tmp_path / "masks.tif").shape == (z, h, w)


@pytest.mark.parametrize("length", [512, 544, 768, 1024, 2048, 4096])
def test_default_tiles_are_spread_to_cover_with_the_least_overlap(length):
    """tile=None: fewest tiles of at most 512 px, each on the pooling grid, neighbours sharing >= 25 %."""
    from monai.data.utils import dense_patch_slices

    from core.predict.inferer import spread_tiles

    tile, frac = spread_tiles(length, 512, 0.25, 32)
    assert tile <= 512 and tile % 32 == 0
    step = int(tile * (1 - frac)) if tile < length else tile
    starts = [s[0].start for s in dense_patch_slices((length,), (tile,), (step,))]
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % 32 == 0 for s in starts)
    shared = [starts[i] + tile - starts[i + 1] for i in range(len(starts) - 1)]
    assert all(o >= 0.25 * tile - 32 for o in shared)
    if length <= 512:
        assert starts == [0] and tile == length
