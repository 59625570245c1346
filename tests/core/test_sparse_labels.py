"""Sparse labels: "not labeled" pixels (255) in mask versions, coverage, history, import and export."""

import io
import json
import zipfile

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data.masks import UNLABELED, coverage, labeled_fraction, to_export_values, to_labels
from core.nn.metrics import confusion_matrix, slice_scores
from core.store.workspace import Workspace
from core.view.render import error_map, overlay
from core.workflow.export import export_dataset_zip, export_masks_tiff, export_masks_zip, to_bytes
from core.workflow.ingest import import_dataset


@pytest.fixture
def ws(tmp_path):
    w = Workspace(tmp_path / "ws")
    images = (np.arange(3 * 8 * 8) % 251).astype(np.uint8).reshape(3, 8, 8)
    w.create_dataset("d", images, [np.eye(8, dtype=np.uint8), None, None], ["bg", "fg"])
    return w


def _strokes() -> np.ndarray:
    m = np.full((8, 8), UNLABELED, np.uint8)
    m[1, :] = 1
    m[6, :4] = 0
    return m


def test_partial_mask_saves_with_coverage_and_undo_keeps_it(ws):
    info = ws.dataset("d")
    assert info.coverage == ("complete", "unlabeled", "unlabeled")
    ws.save_mask("d", 1, _strokes(), status="labeled")
    assert ws.dataset("d").coverage == ("complete", "partial", "unlabeled")
    s = ws.slices("d")[1]
    assert s.coverage == "partial" and s.labeled == pytest.approx(12 / 64)
    assert np.array_equal(ws.read_mask("d", 1), _strokes())  # 255 kept in the version file
    full = np.where(_strokes() == UNLABELED, 0, _strokes()).astype(np.uint8)
    ws.save_mask("d", 1, full)
    assert ws.slices("d")[1].coverage == "complete"
    ws.undo_mask("d", 1)
    assert ws.slices("d")[1].coverage == "partial" and np.array_equal(ws.read_mask("d", 1), _strokes())
    ws.redo_mask("d", 1)
    assert ws.slices("d")[1].coverage == "complete"
    ws.restore_mask("d", 1, 1)
    assert ws.slices("d")[1].coverage == "partial"
    with pytest.raises(ValueError, match="255 for not labeled"):
        ws.save_mask("d", 2, np.full((8, 8), 7, np.uint8))


def test_labeled_fraction_and_coverage_words():
    assert labeled_fraction(_strokes()) == pytest.approx(12 / 64) and labeled_fraction(None) == 0.0
    assert (coverage(1.0), coverage(0.5), coverage(0.0), coverage(None)) == (
        "complete",
        "partial",
        "unlabeled",
        "complete",
    )


def test_exports_keep_not_labeled_as_255(ws):
    ws.save_mask("d", 1, _strokes())
    with zipfile.ZipFile(io.BytesIO(to_bytes(export_masks_zip, ws, "d"))) as zf:
        files = {n: np.asarray(Image.open(io.BytesIO(zf.read(n)))) for n in zf.namelist()}
    partial = files["d_0001.png"]
    assert np.array_equal(partial, _strokes())  # class indices and 255, not 0/255
    assert set(np.unique(files["d_0000.png"])) == {0, 1}  # the whole dataset is written as class indices
    with tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, ws, "d"))) as tif:
        pages = tif.asarray()
        assert json.loads(tif.imagej_metadata["Info"])["unlabeled_value"] == UNLABELED
    assert np.array_equal(pages[1], _strokes())


def test_complete_binary_export_stays_0_255(ws):
    with zipfile.ZipFile(io.BytesIO(to_bytes(export_masks_zip, ws, "d"))) as zf:
        assert set(np.unique(np.asarray(Image.open(io.BytesIO(zf.read("d_0000.png")))))) == {0, 255}


def test_dataset_zip_round_trip_keeps_partial_masks(ws, tmp_path):
    ws.save_mask("d", 1, _strokes())
    path = tmp_path / "d.zip"
    export_dataset_zip(ws, "d", path)
    with zipfile.ZipFile(path) as zf:
        assert json.loads(zf.read("segdash.json"))["unlabeled_value"] == UNLABELED
    report = import_dataset(ws, "back", str(path))
    assert report.dataset.coverage == ("complete", "partial", "unlabeled")
    assert np.array_equal(ws.read_mask("back", 1), _strokes())


def test_import_reads_a_chosen_value_as_not_labeled(tmp_path):
    ws = Workspace(tmp_path / "ws")
    img = (np.arange(2 * 8 * 8) % 200 + 20).astype(np.uint8).reshape(2, 8, 8)
    masks = np.full((2, 8, 8), 9, np.uint8)
    masks[:, 2, :] = 1
    masks[:, 5, :] = 2
    masks[1, 0, 0] = 0
    tifffile.imwrite(tmp_path / "img.tif", img)
    tifffile.imwrite(tmp_path / "masks.tif", masks)
    report = import_dataset(ws, "ext", str(tmp_path / "img.tif"), str(tmp_path / "masks.tif"), unlabeled_value=9)
    assert report.dataset.n_classes == 3 and report.dataset.coverage == ("partial", "partial")
    m = ws.read_mask("ext", 1)
    assert m[0, 0] == 0 and m[2, 3] == 1 and m[5, 3] == 2 and m[3, 3] == UNLABELED
    assert any("read as not labeled" in n for n in report.notices)


def test_to_labels_with_holes_keeps_binary_reading():
    out = to_labels(np.array([[0, 255, 7], [255, 0, 7]]), unlabeled_value=7)
    assert out.n_classes == 2 and out.labels.tolist() == [[0, 1, 255], [1, 0, 255]]
    assert to_export_values(out.labels, 2, sparse=True).tolist() == [[0, 1, 255], [1, 0, 255]]


def test_scores_and_pictures_leave_not_labeled_pixels_out():
    truth = _strokes()
    pred = np.ones((8, 8), np.uint8)
    assert confusion_matrix(pred, truth, 2).sum() == 12
    assert slice_scores(pred, truth, 2)["accuracy"] == pytest.approx(8 / 12)
    img = np.full((8, 8), 100, np.uint8)
    em = error_map(img, pred, truth)
    assert (em[3] == img[3, :, None]).all()  # not labeled: no error colour
    assert (em[6, :4] != 100).any()  # labeled background predicted 1: a false positive
    assert (overlay(img, truth, 0.5)[3] == 100).all()  # not labeled: no tint


def test_provenance_survives_save_undo_accept_restore_and_scores_count_a_persons_pixels(ws):
    from core.data import provenance as pv

    prov, run = ws.read_provenance("d", 0)
    assert run == "" and (prov[np.eye(8, dtype=bool)] == pv.IMPORTED).all()  # derived from the source
    accepted = np.zeros((8, 8), np.uint8)
    accepted[:, :4] = 1
    ws.save_mask("d", 0, accepted, status="from-prediction", source="accepted:run-9")
    prov, run = ws.read_provenance("d", 0)
    assert run == "run-9" and (prov == pv.ACCEPTED).all()
    paint = np.full((8, 8), -1, np.int16)
    paint[2, :] = 0  # a stroke of background across the accepted prediction
    saved = ws.edit_mask("d", 0, lambda m: np.where(paint >= 0, paint, m).astype(np.uint8), drawn=paint >= 0)
    prov, run = ws.read_provenance("d", 0)
    assert run == "run-9" and (prov[2] == pv.DRAWN).all() and (prov[3] == pv.ACCEPTED).all()
    truth = ws.read_truth("d", 0)  # only the drawn row counts as truth
    assert (truth[2] == 0).all() and (truth[3] == UNLABELED).all()
    pred = np.ones((8, 8), np.uint8)
    assert confusion_matrix(pred, truth, 2).sum() == 8
    ws.undo_mask("d", 0)
    assert (ws.read_provenance("d", 0)[0] == pv.ACCEPTED).all()
    ws.redo_mask("d", 0)
    assert (ws.read_provenance("d", 0)[0][2] == pv.DRAWN).all()
    v = ws.restore_mask("d", 0, 1)  # the imported version: its provenance comes back with it
    prov, run = ws.read_provenance("d", 0)
    assert v == saved.version + 1 and run == "" and (prov[np.eye(8, dtype=bool)] == pv.IMPORTED).all()
    ws.restore_mask("d", 0, saved.version)
    prov, run = ws.read_provenance("d", 0)
    assert run == "run-9" and (prov[2] == pv.DRAWN).all() and (prov[3] == pv.ACCEPTED).all()
    # exports write the mask itself (provenance stays in the workspace); a scribble eraser unlabels
    paint[:] = -1
    paint[2, :3] = UNLABELED
    ws.edit_mask("d", 0, lambda m: np.where(paint >= 0, paint, m).astype(np.uint8), drawn=paint >= 0)
    prov, _ = ws.read_provenance("d", 0)
    assert (prov[2, :3] == pv.NONE).all() and (ws.read_mask("d", 0)[2, :3] == UNLABELED).all()


def test_validation_truth_leaves_out_what_a_model_labeled_unless_nothing_else_is_there(ws):
    """Training validates and tests on a person's pixels: a prediction accepted from a model is no
    truth about a model; a slice holding only accepted pixels is scored against them (and said so)."""
    accepted = np.zeros((8, 8), np.uint8)
    accepted[:, :4] = 1
    ws.save_mask("d", 1, accepted, status="from-prediction", source="accepted:run-9")
    ws.save_mask("d", 2, accepted, status="from-prediction", source="accepted:run-9")
    paint = np.full((8, 8), -1, np.int16)
    paint[5, :] = 0
    ws.edit_mask("d", 1, lambda m: np.where(paint >= 0, paint, m).astype(np.uint8), drawn=paint >= 0)
    masks, whole = ws.read_truths("d", [0, 1, 2])
    assert whole == [2]
    np.testing.assert_array_equal(masks[0], np.eye(8, dtype=np.uint8))  # imported: all of it
    assert (masks[1][5] == 0).all() and (np.delete(masks[1], 5, axis=0) == UNLABELED).all()
    np.testing.assert_array_equal(masks[2], accepted)
