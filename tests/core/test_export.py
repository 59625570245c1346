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
    assert not stack[0].any() and not stack[2].any()  # unlabeled slices: empty pages
    np.testing.assert_array_equal(stack[1], ws.read_mask("vol", 1))  # 3 classes: values are class indices
    np.testing.assert_array_equal(stack[3], ws.read_mask("vol", 3))
    assert meta["Labels"] == ["vol_0000 (unlabeled)", "vol_0001", "vol_0002 (unlabeled)", "vol_0003"]
    info = json.loads(meta["Info"])
    assert info["slice_names"] == ["vol_0000", "vol_0001", "vol_0002", "vol_0003"]
    assert info["labeled"] == [1, 3] and info["unlabeled"] == [0, 2]
    assert info["class_names"] == ["bg", "a", "b"]


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
