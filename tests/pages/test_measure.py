"""Measure page: measures on a press, shows the table, the trust figures of a prediction and the downloads."""

import json

import numpy as np
import tifffile
from streamlit.testing.v1 import AppTest


def _open(page) -> AppTest:
    at = AppTest.from_file(page("measure.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    return at


def test_saved_masks_measured_with_table_and_downloads(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page)
    assert at.session_state["measure_result"] is None and not at.dataframe
    at.button(key="measure_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    table = at.dataframe(key="measure_table").value
    assert len(table) == 2 and table["area"].tolist() == [64.0, 64.0]  # the 8 x 8 square on slices 0 and 2
    assert [m.value for m in at.metric] == ["2"]
    at.button(key="measure_prepare").click().run()
    assert not at.exception
    files = at.session_state["measure_result"]["files"]["Saved masks"]
    assert [f[1] for f in files.values()] == [
        "tiny_masks_2d_objects.csv",
        "tiny_masks_2d_objects.xlsx",
        "tiny_masks_2d_labels.tif",
        "tiny_masks_2d_labels.ome.zarr.zip",
    ]
    assert len(at.get("download_button")) == 4
    at.checkbox(key="measure_inner").check().run()  # no object touches the border: both stay
    assert len(at.dataframe(key="measure_table").value) == 2


def test_prediction_and_masks_with_trust(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1, 2))
    folder = ws_env.predictions_dir("tiny", "run-7")
    pred = np.zeros((3, 32, 48), np.uint8)
    pred[:, 4:12, 4:13] = 1  # one column wider than the truth's square
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "split": {"train": [0], "test": [1, 2]}}))
    at = _open(page)
    at.radio(key="measure_source").set_value("Both: prediction and saved masks").run()
    at.button(key="measure_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "On 2 held-out test slices the model counts the right number of cell objects" in at.success[0].value
    assert at.radio(key="measure_table_of").options == ["Saved masks", "Prediction run-7"]
    at.radio(key="measure_table_of").set_value("Prediction run-7").run()
    assert at.dataframe(key="measure_table").value["area"].tolist() == [72.0] * 3


def test_3d_of_slices_with_gaps_is_refused_in_words(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page)
    at.radio(key="measure_mode").set_value(at.radio(key="measure_mode").options[1]).run()
    at.button(key="measure_go").click().run()
    assert not at.exception and "consecutive" in at.error[0].value


def test_pixel_size_set_on_the_data_page(ws_env, page, make_dataset):
    make_dataset("tiny", z=1)
    at = AppTest.from_file(page("data.py"), default_timeout=60).run()
    at.number_input(key="data_px_xy_tiny").set_value(0.25)
    at.number_input(key="data_px_z_tiny").set_value(2.0)
    at.selectbox(key="data_px_u_tiny").set_value("nanometer")
    at.button(key="data_px_save").click().run()
    assert not at.exception and not at.error
    assert tuple(ws_env.pixel_size("tiny")) == (2.0, 0.25, 0.25, "nanometer")


def test_a_selected_object_is_shown_and_its_slice_opened_on_the_label_page(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page)
    at.button(key="measure_go").click().run()
    at.session_state["measure_table"] = {"selection": {"rows": [1], "columns": []}}  # the object on slice 2
    at.run()
    assert not at.exception and any(m.value.startswith("Slice 2 (") for m in at.markdown), [
        m.value for m in at.markdown
    ]
    at.session_state["label_slice_of"] = {"tiny": 0}  # the Label page was on slice 0 of this dataset
    at.button(key="measure_to_label").click().run()
    assert not at.exception
    assert at.session_state["slice"] == 2 and at.session_state["label_slice_of"]["tiny"] == 2
