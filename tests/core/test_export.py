"""Masks TIFF export: an ImageJ stack that lies on the image stack in Fiji."""

import io
import json

import numpy as np
import pytest
import tifffile

from core.store.workspace import Workspace
from core.workflow.export import export_labels_tiff, export_masks_tiff, to_bytes


@pytest.fixture
def ws(ws):
    """The shared empty workspace (conftest) with a dataset 'vol' of 4 slices, 1 and 3 labeled."""
    w = ws
    images = np.arange(4 * 6 * 7, dtype=np.uint16).reshape(4, 6, 7)
    m1 = np.zeros((6, 7), np.uint8)
    m1[1:3, 2:5] = 2
    m3 = np.ones((6, 7), np.uint8)
    w.create_dataset("vol", images, [None, m1, None, m3], ["bg", "a", "b"])
    return w


def test_masks_tiff_has_one_page_per_image_slice_and_imagej_labels(ws, tmp_path):
    out = tmp_path / "masks.tif"
    export_masks_tiff(ws, "vol", out)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_imagej
        meta = tif.imagej_metadata
        stack = tif.asarray()
    assert stack.shape == (4, 6, 7) and stack.dtype == np.uint8
    # unlabeled slices: pages of 255 (not labeled), not 0 (that reads as "all background")
    assert (stack[0] == 255).all() and (stack[2] == 255).all()
    np.testing.assert_array_equal(stack[1], ws.read_mask("vol", 1))  # 3 classes: values are class indices
    np.testing.assert_array_equal(stack[3], ws.read_mask("vol", 3))
    assert meta["Labels"] == ["vol_0000 (unlabeled)", "vol_0001", "vol_0002 (unlabeled)", "vol_0003"]
    info = json.loads(meta["Info"])
    assert info["slice_names"] == ["vol_0000", "vol_0001", "vol_0002", "vol_0003"]
    assert info["labeled"] == [1, 3] and info["unlabeled"] == [0, 2]
    assert info["class_names"] == ["bg", "a", "b"] and info["unlabeled_value"] == 255


def test_binary_masks_tiff_with_unlabeled_slices_never_reads_as_background(tmp_path):
    from core.store.workspace import Workspace

    w = Workspace(tmp_path / "w")
    fg = np.zeros((6, 7), np.uint8)
    fg[2:4, 2:4] = 1
    w.create_dataset("bin", np.zeros((3, 6, 7), np.uint8), [fg, None, np.zeros((6, 7), np.uint8)], ["bg", "cell"])
    with tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, w, "bin"))) as tif:
        stack, meta = tif.asarray(), tif.imagej_metadata
    # class indices (0/1, not 0/255: 255 is "not labeled" here), the unlabeled slice all 255, stated in Info
    assert np.array_equal(stack[0], fg) and (stack[1] == 255).all() and not stack[2].any()
    assert meta["Labels"][1] == "bin_0001 (unlabeled)"
    assert json.loads(meta["Info"])["unlabeled_value"] == 255 and json.loads(meta["Info"])["unlabeled"] == [1]
    with tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, w, "bin", labeled_only=True))) as tif:
        assert set(np.unique(tif.asarray())) == {0, 255}  # no unlabeled page: binary stays 0/255
        assert "unlabeled_value" not in json.loads(tif.imagej_metadata["Info"])


def test_masks_tiff_labeled_only(ws):
    with tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, ws, "vol", labeled_only=True))) as tif:
        assert tif.asarray().shape == (2, 6, 7)
        assert tif.imagej_metadata["Labels"] == ["vol_0001", "vol_0003"]
        assert json.loads(tif.imagej_metadata["Info"])["labeled"] == [1, 3]


def test_labels_tiff_binary_is_0_255_and_names_must_match_pages():
    data = to_bytes(export_labels_tiff, ["p0", "p1"], (np.eye(3, dtype=np.uint8) for _ in range(2)), (2, 3, 3), 2)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        assert tif.imagej_metadata["Labels"] == ["p0", "p1"] and set(np.unique(tif.asarray())) == {0, 255}
    with pytest.raises(ValueError, match="3 slice names for 2 pages"):
        to_bytes(export_labels_tiff, ["a", "b", "c"], [], (2, 3, 3), 2)


def test_no_masks_is_refused(tmp_path):
    w = Workspace(tmp_path / "ws")
    w.create_dataset("bare", np.zeros((2, 4, 4), np.uint8), [None, None], ["bg", "fg"])
    with pytest.raises(ValueError, match="no masks"):
        to_bytes(export_masks_tiff, w, "bare")


def test_export_prediction_masks_and_scores_without_the_page(tmp_path):
    """The prediction export the Export page offers, from core (so the command line can use it too)."""
    import csv

    from core.errors import SegDashError
    from core.workflow.export import PREDICTION_FORMATS, export_prediction

    ws = Workspace(tmp_path / "ws")
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    ws.create_dataset("d", np.zeros((2, 8, 8), np.uint8), [truth, None], ["bg", "fg"])
    folder = ws.predictions_dir("d", "r1")
    pred = np.zeros((2, 8, 8), np.uint8)
    pred[:, 2:6, 2:4] = 1
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "slices": []}))
    out = tmp_path / f"d_r1_{PREDICTION_FORMATS['tiff']}"
    export_prediction(ws, "d", "r1", "tiff", out)
    assert (tifffile.imread(out) > 0).sum() == 2 * 8
    rows = list(csv.DictReader(io.StringIO(to_bytes(export_prediction, ws, "d", "r1", "csv").decode())))
    assert [r["name"] for r in rows] == ["d_0000"] and abs(float(rows[0]["dice"]) - 2 * 8 / (16 + 8)) < 1e-6
    with pytest.raises(SegDashError, match="format must be one of"):
        export_prediction(ws, "d", "r1", "png", tmp_path / "x")


# -- prediction TIFFs as ImageJ hyperstacks (issue 15) ---------------------------------------------


def _imagej(source):
    """(array, ImageJ metadata, x resolution in pixels per unit, Info JSON) of a TIFF path or bytes."""
    with tifffile.TiffFile(io.BytesIO(source) if isinstance(source, bytes) else source) as tif:
        assert tif.is_imagej
        meta = tif.imagej_metadata
        xres = tif.pages[0].tags["XResolution"].value
        return tif.asarray(), meta, xres[0] / xres[1], json.loads(meta["Info"])


def _checkpoint(path, class_names):
    import torch

    from core.nn.checkpoint import save_checkpoint
    from core.nn.model import ModelConfig, build_model

    cfg = ModelConfig(arch="classic", classic_width=2, n_classes=len(class_names))
    torch.manual_seed(0)
    return save_checkpoint(
        path,
        build_model(cfg),
        cfg,
        class_names=class_names,
        norm_window=(0.0, 255.0),
        patch_size=16,
        epoch=0,
        metrics={},
    )


@pytest.mark.parametrize("classes, z", [(("bg", "fg"), 3), (("bg", "a", "b"), 3), (("bg", "a", "b"), 1)])
def test_predicted_masks_and_probabilities_are_imagej_hyperstacks(tmp_path, classes, z):
    """predict_stack writes masks (ZYX) and probabilities (ZYX binary, ZCYX for K classes) as ImageJ
    hyperstacks with the slice names as labels and the pixel size; SegDash reads them back as before."""
    from core.data.pixelsize import PixelSize
    from core.nn.checkpoint import load_checkpoint
    from core.predict.probabilities import read_prediction_tiff, relabel
    from core.predict.stack import predict_stack

    ckpt = load_checkpoint(_checkpoint(tmp_path / "m.pt", list(classes)), device="cpu")
    images = np.random.default_rng(0).integers(0, 256, (z, 16, 24), dtype=np.uint8)
    names = [f"cell_{i}" for i in range(z)]
    px = PixelSize(z=2.0, y=0.5, x=0.25, unit="micrometer")
    result = predict_stack(
        ckpt,
        images,
        out_masks=tmp_path / "masks.tif",
        out_prob=tmp_path / "prob.tif",
        slice_names=names,
        pixel_size=px,
    )
    k = len(classes)
    masks, meta, xres, info = _imagej(result.masks_path)
    assert masks.reshape(z, 16, 24).dtype == np.uint8
    assert meta["Labels"] == (names if z > 1 else names[0])  # tifffile gives one label as a string
    assert xres == pytest.approx(4.0) and meta["unit"] == "micron" and meta["spacing"] == 2.0
    assert info["segdash"] == "masks" and info["classes"] == k and info["slice_names"] == names
    probs, pmeta, pxres, pinfo = _imagej(result.prob_path)
    if k == 2:
        assert pmeta["Labels"] == (names if z > 1 else names[0]) and probs.size == z * 16 * 24
    else:
        assert pmeta["channels"] == k and pmeta.get("slices", 1) == z
        assert pmeta["Labels"] == [f"{n} P({c})" for n in names for c in classes]
    assert pxres == pytest.approx(4.0) and pinfo["segdash"] == "prob" and pinfo["scale"] == 255.0
    stored = read_prediction_tiff(result.prob_path)
    assert stored.shape == ((z, 16, 24) if k == 2 else (z, k, 16, 24))
    np.testing.assert_array_equal(read_prediction_tiff(result.masks_path), relabel(result.prob_path, 0.5))


def test_predict_headless_names_slices_and_keeps_the_input_pixel_size(tmp_path):
    from core.predict.stack import predict_headless

    ckpt = _checkpoint(tmp_path / "m.pt", ["bg", "fg"])
    stack = np.random.default_rng(1).integers(0, 256, (2, 16, 16), dtype=np.uint8)
    tifffile.imwrite(
        tmp_path / "in.tif",
        stack,
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"axes": "ZYX", "unit": "micron", "spacing": 3.0},
    )
    summary = predict_headless(ckpt, tmp_path / "in.tif", tmp_path / "out.tif", prob=tmp_path / "p.tif")
    for path in (summary["out"], summary["prob"]):
        _, meta, xres, _ = _imagej(path)
        assert meta["Labels"] == ["in_0000", "in_0001"] and xres == pytest.approx(2.0) and meta["spacing"] == 3.0


def _stored_prediction(ws, k, plain=True):
    """A stored prediction ``r1`` of dataset ``d`` (2 slices of 8 x 8) in the layout of earlier versions
    (plain page stacks with tifffile metadata), with a pixel size on the dataset."""
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    names = ["bg", "fg"] if k == 2 else ["bg", "a", "b"]
    ws.create_dataset("d", np.zeros((2, 8, 8), np.uint8), [truth, None], names, ["s1", "s2"])
    ws.catalog.set_pixel_size("d", 3.0, 0.5, 0.5, "micrometer")
    folder = ws.predictions_dir("d", "r1")
    prob = np.random.default_rng(0).integers(0, 256, (2, 8, 8) if k == 2 else (2, k, 8, 8), dtype=np.uint8)
    masks = (prob > 127).astype(np.uint8) if k == 2 else prob.argmax(1).astype(np.uint8)
    tifffile.imwrite(folder / "masks.tif", masks, photometric="minisblack", metadata={"segdash": "masks", "classes": k})
    tifffile.imwrite(
        folder / "prob.tif", prob, photometric="minisblack", metadata={"segdash": "prob", "classes": k, "scale": 255.0}
    )
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "prob_scale": 255.0, "slices": []}))
    return masks, prob


@pytest.mark.parametrize("k", [2, 3])
def test_export_stored_prediction_tiffs_are_imagej_hyperstacks(tmp_path, k):
    from core.workflow.export import PREDICTION_FORMATS, export_prediction

    ws = Workspace(tmp_path / "ws")
    masks, prob = _stored_prediction(ws, k)
    got, meta, xres, info = _imagej(to_bytes(export_prediction, ws, "d", "r1", "tiff"))
    assert meta["Labels"] == ["s1", "s2"] and xres == pytest.approx(2.0) and meta["spacing"] == 3.0
    assert info["run_id"] == "r1" and got.shape == (2, 8, 8)
    out = tmp_path / f"d_r1_{PREDICTION_FORMATS['prob-tiff']}"
    export_prediction(ws, "d", "r1", "prob-tiff", out)
    got, meta, xres, info = _imagej(out)
    np.testing.assert_array_equal(got, prob)  # as stored: (Z, Y, X) binary, (Z, K, Y, X) otherwise
    assert xres == pytest.approx(2.0) and meta["unit"] == "micron" and info["scale"] == 255.0
    assert meta["Labels"] == (
        ["s1", "s2"] if k == 2 else [f"{s} P({c})" for s in ("s1", "s2") for c in ("bg", "a", "b")]
    )


def test_export_stored_prediction_without_probabilities_is_refused(tmp_path):
    from core.errors import SegDashError
    from core.workflow.export import export_prediction

    ws = Workspace(tmp_path / "ws")
    _stored_prediction(ws, 2)
    (ws.predictions_dir("d", "r1") / "prob.tif").unlink()
    with pytest.raises(SegDashError, match="kept no probabilities"):
        export_prediction(ws, "d", "r1", "prob-tiff", tmp_path / "p.tif")
