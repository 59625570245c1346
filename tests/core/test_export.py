"""Masks TIFF export: an ImageJ stack that lies on the image stack in Fiji."""

import io
import json

import numpy as np
import pytest
import tifffile

from core.workflow.export import export_labels_tiff, export_masks_tiff, to_bytes
from core.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path):
    w = Workspace(tmp_path / "ws")
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
