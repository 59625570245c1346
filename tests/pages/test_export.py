"""Export page: files are built on Prepare, named like the slices, and a stored prediction exports too."""

import csv
import io
import json
import zipfile

import numpy as np
import pytest
import tifffile
from streamlit.testing.v1 import AppTest

from core.workflow.ingest import import_dataset


def _open(page) -> AppTest:
    at = AppTest.from_file(page("export.py"), default_timeout=60).run()
    assert not at.exception
    return at


def _prepare(at: AppTest, radio: str, choice: str, button: str) -> dict:
    at.radio(key=radio).set_value(choice).run()
    at.button(key=button).click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    return at.session_state["export_ready"]


def test_masks_zip_tiff_and_dataset_zip(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page)
    assert at.session_state["export_ready"] is None  # nothing is built before Prepare
    formats = at.radio(key="export_format").options
    ready = _prepare(at, "export_format", formats[0], "export_prepare")
    assert ready["file_name"] == "tiny_masks.zip"
    with zipfile.ZipFile(io.BytesIO(ready["data"])) as zf:
        assert sorted(zf.namelist()) == ["tiny_0000.png", "tiny_0002.png"]
    assert at.get("download_button")  # the download appears once prepared

    ready = _prepare(at, "export_format", formats[1], "export_prepare")
    with tifffile.TiffFile(io.BytesIO(ready["data"])) as tif:  # ImageJ stack, one page per image slice
        stack, labels = tif.asarray(), tif.imagej_metadata["Labels"]
    # the unlabeled slice is a page of 255 (not labeled), so the masks are class indices 0/1 around it
    assert stack.shape == (3, 32, 48) and set(np.unique(stack)) == {0, 1, 255} and (stack[1] == 255).all()
    assert set(np.unique(stack[0])) == {0, 1}
    assert labels == ["tiny_0000", "tiny_0001 (unlabeled)", "tiny_0002"]

    ready = _prepare(at, "export_format", formats[2], "export_prepare")
    report = import_dataset(ws_env, "again", ("tiny_dataset.zip", ready["data"]))
    assert report.dataset.slice_names == ws_env.dataset("tiny").slice_names
    assert np.array_equal(ws_env.read_mask("again", 2), ws_env.read_mask("tiny", 2))


def test_no_masks_is_an_error_message(ws_env, page, make_dataset):
    make_dataset("bare", z=2, labeled=())
    at = _open(page)
    at.button(key="export_prepare").click().run()
    assert not at.exception and at.error and "no masks" in at.error[0].value
    assert any("No stored prediction" in i.value for i in at.info)


@pytest.mark.slow  # imports torch and MONAI through core.workflow.review
def test_prediction_masks_and_metrics_csv(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0,))
    folder = ws_env.predictions_dir("tiny", "run-0001")
    pred = np.zeros((3, 32, 48), np.uint8)
    pred[:, 4:12, 4:10] = 1
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "slices": []}))
    at = _open(page)
    assert at.selectbox(key="export_pred_run").value == "run-0001"
    formats = at.radio(key="export_pred_format").options
    ready = _prepare(at, "export_pred_format", formats[0], "export_pred_prepare")
    with zipfile.ZipFile(io.BytesIO(ready["data"])) as zf:
        assert sorted(zf.namelist()) == ["tiny_0000.png", "tiny_0001.png", "tiny_0002.png"]
    ready = _prepare(at, "export_pred_format", formats[2], "export_pred_prepare")
    rows = list(csv.DictReader(io.StringIO(ready["data"].decode())))
    assert [r["name"] for r in rows] == ["tiny_0000"]
    assert abs(float(rows[0]["dice"]) - 2 * 48 / (64 + 48)) < 1e-6  # truth 8x8, prediction 8x6 inside it
