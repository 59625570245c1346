"""Label page: pick a slice, draw (the canvas's value injected as the browser would send it), save, undo."""

import json

import numpy as np
import pytest
import tifffile
from streamlit.testing.v1 import AppTest

from core import canvas as cv


def _open(page) -> AppTest:
    at = AppTest.from_file(page("label.py"), default_timeout=60).run()
    assert not at.exception
    return at


def _draw(at: AppTest, drawing: dict) -> AppTest:
    """Give the current canvas a drawing, as the component does after a stroke, and rerun."""
    key = at.session_state["label_canvas_key"]
    at.session_state[key] = {"drawing": {"raw": drawing, "data": None}, "backgroundFit": None}
    at.run()
    assert not at.exception
    return at


def test_widgets_present(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0,))
    at = _open(page)
    for key in ("label_save", "label_undo", "label_next", "label_clear"):
        assert at.button(key=key) is not None
    assert at.selectbox(key="label_slice_pick").value == 0
    assert at.radio(key="label_tool").options == ["Brush", "Eraser", "Polygon fill"]
    assert at.selectbox(key="label_class").value == 1
    assert at.slider(key="label_brush") is not None and at.select_slider(key="label_zoom").value == 1
    assert not at.warning  # the canvas runs under AppTest


def test_brush_save_writes_full_resolution_mask_and_undo_restores(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=(0,))
    at = _open(page)
    at.button(key="label_next").click().run()  # slice 1 is the first unlabeled
    assert at.session_state["slice"] == 1 and at.selectbox(key="label_slice_pick").value == 1
    old_key = at.session_state["label_canvas_key"]
    # the canvas shows 32 x 48 pixels at 427 x 640: a horizontal stroke across the middle row
    ch, cw = cv.canvas_size(cv.zoom_window((32, 48)))
    sy, sx = ch / 32, cw / 48
    stroke = {"type": "Path", "stroke": cv.stroke_css(1), "strokeWidth": 3 * sx,
              "path": [["M", 10.5 * sx, 16.5 * sy], ["L", 30.5 * sx, 16.5 * sy]]}
    _draw(at, {"objects": [stroke]})
    at.button(key="label_save").click().run()
    assert not at.exception
    assert at.session_state["label_canvas_key"] != old_key  # re-keyed: no stale strokes
    mask = ws_env.read_mask("tiny", 1)
    assert mask.shape == (32, 48)
    # a 3-pixel line from pixel 10 to 30 of row 16, round caps 1.5 pixels beyond its ends: rows 15-17, cols 9-31
    assert mask[15:18, 9:32].all() and mask.sum() == 3 * 23
    assert ws_env.slices("tiny")[1].status == "labeled" and any("version 1" in s.value for s in at.success)
    # erase part of it: slice now "edited"
    eraser = {"type": "Path", "stroke": cv.stroke_css(0), "strokeWidth": 1 * sx,
              "path": [["M", 20.5 * sx, 10 * sy], ["L", 20.5 * sx, 22 * sy]]}
    _draw(at, {"objects": [eraser]})
    at.button(key="label_save").click().run()
    mask2 = ws_env.read_mask("tiny", 1)
    assert mask2[16, 20] == 0 and mask2[16, 19] == 1 and ws_env.slices("tiny")[1].status == "edited"
    at.button(key="label_undo").click().run()
    assert not at.exception
    assert np.array_equal(ws_env.read_mask("tiny", 1), mask)
    at.button(key="label_undo").click().run()
    assert ws_env.read_mask("tiny", 1) is None and ws_env.slices("tiny")[1].status == "unlabeled"


def test_zoomed_polygon_lands_in_window(ws_env, page, make_dataset):
    make_dataset("tiny", z=1, shape=(64, 64), labeled=())
    at = _open(page)
    at.radio(key="label_tool").set_value("Polygon fill").run()
    at.select_slider(key="label_zoom").set_value(4).run()
    at.slider(key="label_cy").set_value(40).run()
    at.slider(key="label_cx").set_value(10).run()
    assert not at.exception
    window = cv.zoom_window((64, 64), 4, (40, 10))  # rows 32-47, columns 2-17
    ch, cw = cv.canvas_size(window)
    s = cw / window.width
    # the whole canvas as one polygon: fills exactly the window
    poly = {"type": "Polygon", "stroke": cv.stroke_css(1), "fill": cv.stroke_css(1, 0.35), "strokeWidth": 1,
            "points": [{"x": 0, "y": 0}, {"x": cw, "y": 0}, {"x": cw, "y": ch}, {"x": 0, "y": ch}]}
    _draw(at, {"objects": [poly]})
    at.button(key="label_save").click().run()
    mask = ws_env.read_mask("tiny", 0)
    expect = np.zeros((64, 64), np.uint8)
    expect[window.slices] = 1
    assert np.array_equal(mask, expect), (s, np.argwhere(mask != expect)[:5])


def test_start_from_model_without_model_says_so(ws_env, page, make_dataset):
    make_dataset("tiny", z=2, labeled=())
    at = _open(page)
    assert at.button(key="label_from_model").disabled
    assert any("No model yet" in c.value for c in at.caption)


@pytest.mark.slow  # imports torch and MONAI through core.inference
def test_start_from_stored_prediction(ws_env, page, make_dataset):
    make_dataset("tiny", z=2, shape=(32, 48), labeled=())
    folder = ws_env.predictions_dir("tiny", "run-0001")
    pred = np.zeros((2, 32, 48), np.uint8)
    pred[:, 8:20, 8:30] = 1
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5}))
    at = _open(page)
    assert not at.button(key="label_from_model").disabled
    at.button(key="label_from_model").click().run()
    assert not at.exception
    assert np.array_equal(ws_env.read_mask("tiny", 0), pred[0])
    assert ws_env.slices("tiny")[0].status == "from-prediction"
    assert any("stored prediction run-0001" in s.value for s in at.success)
    assert "label_from_model" not in [b.key for b in at.button]  # only offered for unlabeled slices
