"""Export page, section "Model for Fiji / ilastik / napari": a run as a bioimage.io package and the
dataset as OME-Zarr, both built on Prepare and offered as downloads."""

import io
import zipfile

import numpy as np
import pytest
import yaml
from streamlit.testing.v1 import AppTest


def _open(page) -> AppTest:
    at = AppTest.from_file(page("export.py"), default_timeout=120).run()
    assert not at.exception
    return at


def test_omezarr_download(ws_env, page, make_dataset, tmp_path):
    from core.data.omezarr import read_omezarr

    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page)
    assert any("No trained model" in i.value for i in at.info)
    at.button(key="tools_omezarr_prepare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ready = at.session_state["tools_export_ready"]
    assert ready["file_name"] == "tiny.ome-zarr.zip"
    with zipfile.ZipFile(io.BytesIO(ready["data"])) as zf:
        zf.extractall(tmp_path)
    data, info = read_omezarr(tmp_path / "tiny.zarr")
    assert np.array_equal(data, ws_env.read_images("tiny")) and info["labels"] == ["masks"]
    assert np.array_equal(read_omezarr(tmp_path / "tiny.zarr" / "labels" / "masks")[0][2], ws_env.read_mask("tiny", 2))


@pytest.mark.slow  # traces a (tiny) network and writes ONNX
def test_model_package_download(ws_env, page, make_dataset, tmp_path):
    from tests.synthetic import add_tiny_run

    make_dataset("tiny", z=3, shape=(64, 64), labeled=(0, 2))
    add_tiny_run(
        ws_env,
        "run-1",
        "tiny",
        best_dice=0.7,
        seed=0,
        metrics={"val_dice": 0.7},
        extra={"dataset": "tiny", "val_slices": [2]},
    )
    at = _open(page)
    assert at.selectbox(key="tools_run").value == "run-1"
    at.text_input(key="tools_authors_run-1").set_value("Ann Example, Bo Example").run()
    at.selectbox(key="tools_license_run-1").set_value("MIT").run()
    at.button(key="tools_model_prepare_run-1").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ready = at.session_state["tools_export_ready"]
    assert ready["file_name"] == "run-1.bioimageio.zip" and "torchscript" in ready["note"]
    with zipfile.ZipFile(io.BytesIO(ready["data"])) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    assert [a["name"] for a in rdf["authors"]] == ["Ann Example", "Bo Example"] and rdf["license"] == "MIT"
    assert rdf["config"]["segdash"]["training_dataset"] == "tiny"
    assert at.get("download_button")

    at.text_input(key="tools_authors_run-1").set_value(" , ").run()  # no author: a message, not a traceback
    at.button(key="tools_model_prepare_run-1").click().run()
    assert not at.exception and at.error and "author" in at.error[0].value


@pytest.mark.slow  # imports torch and MONAI through core.predict.inferer
def test_omezarr_with_a_prediction_layer(ws_env, page, make_dataset):
    import json

    import tifffile

    make_dataset("tiny", z=3, labeled=(0,))
    folder = ws_env.predictions_dir("tiny", "run-0001")
    tifffile.imwrite(folder / "masks.tif", np.ones((3, 32, 48), np.uint8), photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "slices": []}))
    at = _open(page)
    at.selectbox(key="tools_omezarr_pred").set_value("run-0001").run()
    at.button(key="tools_omezarr_prepare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with zipfile.ZipFile(io.BytesIO(at.session_state["tools_export_ready"]["data"])) as zf:
        names = zf.namelist()
    assert "tiny.zarr/labels/masks/.zattrs" in names and "tiny.zarr/labels/prediction_run-0001/.zattrs" in names


def test_model_picker_default_and_a_run_never_validated(ws_env, page, make_dataset):
    """The export offers the best finished run first; a run stopped before its first validation is
    not packaged without the user's say-so."""
    from tests.synthetic import add_tiny_run

    make_dataset("tiny", z=3, shape=(64, 64), labeled=(0, 2))
    add_tiny_run(ws_env, "tiny-20261207-010000-aaaa", "tiny", best_dice=0.9)
    ws_env.catalog.add_epoch("tiny-20261207-010000-aaaa", 1, {"val_dice": 0.9, "val_dice_fg": 0.8})
    add_tiny_run(ws_env, "tiny-20261207-020000-bbbb", "tiny", best_dice=None)
    ws_env.catalog.update_run("tiny-20261207-020000-bbbb", state="stopped")
    at = _open(page)
    assert at.selectbox(key="tools_run").value == "tiny-20261207-010000-aaaa"
    assert not at.warning and at.button(key="tools_model_prepare_tiny-20261207-010000-aaaa")
    at.selectbox(key="tools_run").set_value("tiny-20261207-020000-bbbb").run()
    assert any("before its first validation" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "tools_model_prepare_tiny-20261207-020000-bbbb"]
    at.checkbox(key="tools_anyway_tiny-20261207-020000-bbbb").check().run()
    assert at.button(key="tools_model_prepare_tiny-20261207-020000-bbbb")
