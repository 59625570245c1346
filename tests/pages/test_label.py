"""Label page: pick a slice, draw (the canvas's value injected as the browser would send it), save, undo."""

import json

import numpy as np
import pytest
import tifffile
from streamlit.testing.v1 import AppTest

from core.view import canvas as cv
from tests.pages.label_draw import draw as _draw

pytestmark = pytest.mark.usefixtures("live_warmed")  # see tests/pages/conftest.py


def _open(page) -> AppTest:
    at = AppTest.from_file(page("label.py"), default_timeout=60).run()
    assert not at.exception
    return at


def test_widgets_present(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0,))
    at = _open(page)
    for key in ("label_save", "label_undo", "label_next", "label_clear"):
        assert at.button(key=key) is not None
    assert at.selectbox(key="label_slice_pick").value == 0
    assert at.radio(key="label_tool").options == ["Brush (B)", "Eraser (E)", "Polygon fill (P)"]  # keys shown
    assert at.selectbox(key="label_class").value == 1
    assert at.slider(key="label_brush") is not None and at.select_slider(key="label_zoom").value == 1
    assert not at.warning  # the canvas runs under AppTest


def test_brush_save_writes_full_resolution_mask_and_undo_restores(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=(0,))
    at = _open(page)
    at.button(key="label_next").click().run()  # slice 1 is the first unlabeled
    assert at.session_state["slice"] == 1 and at.selectbox(key="label_slice_pick").value == 1
    # the canvas shows 32 x 48 pixels magnified by a whole factor: a horizontal stroke across the middle row
    ch, cw = at.session_state["label_canvas_hw"]
    assert (ch, cw) == cv.fit_canvas(cv.zoom_window((32, 48)), 900, 1024) and cw % 48 == 0
    sy, sx = ch / 32, cw / 48
    stroke = {
        "type": "Path",
        "stroke": cv.stroke_css(1),
        "strokeWidth": 3 * sx,
        "path": [["M", 10.5 * sx, 16.5 * sy], ["L", 30.5 * sx, 16.5 * sy]],
    }
    _draw(at, {"objects": [stroke]})
    at.button(key="label_save").click().run()
    assert not at.exception
    # no stale strokes: the canvas stays mounted (issue 24) and is told to drop the saved one
    sess = at.session_state["label_session"]
    assert sess.count("tiny", 1) == 0 and len(sess.gone_ids()) == 1
    mask = ws_env.read_mask("tiny", 1)
    assert mask.shape == (32, 48)
    # a 3-pixel line from pixel 10 to 30 of row 16, round caps 1.5 pixels beyond its ends: rows 15-17, cols 9-31
    assert mask[15:18, 9:32].all() and mask.sum() == 3 * 23
    assert ws_env.slices("tiny")[1].status == "labeled" and any("version 1" in s.value for s in at.success)
    # erase part of it: slice now "edited"
    eraser = {
        "type": "Path",
        "stroke": cv.stroke_css(0),
        "strokeWidth": 1 * sx,
        "path": [["M", 20.5 * sx, 10 * sy], ["L", 20.5 * sx, 22 * sy]],
    }
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
    ch, cw = at.session_state["label_canvas_hw"]
    assert (ch, cw) == cv.fit_canvas(window, 900, 1024)
    s = cw / window.width
    # the whole canvas as one polygon: fills exactly the window
    poly = {
        "type": "Polygon",
        "stroke": cv.stroke_css(1),
        "fill": cv.stroke_css(1, 0.35),
        "strokeWidth": 1,
        "points": [{"x": 0, "y": 0}, {"x": cw, "y": 0}, {"x": cw, "y": ch}, {"x": 0, "y": ch}],
    }
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


@pytest.mark.slow  # imports torch and MONAI through core.predict.inferer
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


def _band(at: AppTest, rows: tuple[float, float], k: int = 1, shape: tuple[int, int] = (32, 48)) -> dict:
    """A polygon covering image rows ``rows`` of the whole (unzoomed) canvas, class ``k``."""
    ch, cw = at.session_state["label_canvas_hw"]
    sy = ch / shape[0]
    y0, y1 = (rows[0] + 0.2) * sy, (rows[1] - 0.2) * sy  # inside the rows' pixel centres, off their edges
    return {
        "objects": [
            {
                "type": "Polygon",
                "stroke": cv.stroke_css(k),
                "fill": cv.stroke_css(k, 0.35),
                "strokeWidth": 0,
                "points": [{"x": 0, "y": y0}, {"x": cw, "y": y0}, {"x": cw, "y": y1}, {"x": 0, "y": y1}],
            }
        ]
    }


def test_switching_datasets_with_other_class_counts(ws_env, page, make_dataset):
    make_dataset("five", z=4, shape=(40, 40), labeled=(0,), class_names=("bg", "a", "b", "c", "d"))
    make_dataset("two", z=2, shape=(32, 48), labeled=(0,))
    at = _open(page)
    assert at.sidebar.selectbox[0].value == "five"
    at.selectbox(key="label_class").set_value(4).run()
    at.selectbox(key="label_slice_pick").set_value(3).run()
    at.select_slider(key="label_zoom").set_value(2).run()
    at.slider(key="label_cy").set_value(35).run()
    assert not at.exception
    for name in ("two", "five", "two"):
        at.sidebar.selectbox[0].set_value(name).run()
        assert not at.exception, at.exception
        n_classes = ws_env.dataset(name).n_classes
        assert at.selectbox(key="label_class").options == [str(c) for c in ws_env.dataset(name).class_names[1:]]
        assert 1 <= at.session_state["label_class"] < n_classes
        assert 0 <= at.session_state["slice"] < ws_env.dataset(name).shape[0]
    assert "rgb(255,200,0)" in "".join(m.value for m in at.markdown)  # the class chips show colours


def test_unsaved_strokes_survive_slice_zoom_and_dataset_changes(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=())
    make_dataset("other", z=1, shape=(32, 48), labeled=())
    at = _open(page)
    _draw(at, _band(at, (2, 4)))
    at.button(key="label_next_slice").click().run()  # slice 1: slice 0's strokes are pending
    assert at.session_state["slice"] == 1 and ws_env.read_mask("tiny", 0) is None
    assert "unsaved strokes" in at.selectbox(key="label_slice_pick").format_func(0)
    _draw(at, _band(at, (10, 12), k=1))
    at.select_slider(key="label_zoom").set_value(2).run()  # zoom: slice 1's canvas strokes kept too
    at.sidebar.selectbox[0].set_value("other").run()  # another dataset and back
    at.sidebar.selectbox[0].set_value("tiny").run()
    at.select_slider(key="label_zoom").set_value(1).run()
    assert not at.exception
    at.button(key="label_save").click().run()  # saves slice 1
    m1 = ws_env.read_mask("tiny", 1)
    assert m1[10:12].all() and m1.sum() == 2 * 48
    at.button(key="label_prev").click().run()
    assert at.session_state["slice"] == 0
    assert any("1 unsaved stroke" in c.value for c in at.caption)
    at.button(key="label_save").click().run()
    m0 = ws_env.read_mask("tiny", 0)
    assert m0[2:4].all() and m0.sum() == 2 * 48
    assert any("version 1" in s.value for s in at.success)
    assert at.button(key="label_clear").disabled  # nothing pending any more


def test_status_line_stays_until_the_next_action(ws_env, page, make_dataset):
    make_dataset("tiny", z=2, shape=(32, 48), labeled=())
    at = _open(page)
    _draw(at, _band(at, (0, 2)))
    at.button(key="label_save").click().run()
    at.slider(key="label_alpha").set_value(0.7).run()  # an unrelated rerun
    _draw(at, _band(at, (4, 6)))  # a stroke is a rerun too
    assert [s.value for s in at.success] and "version 1" in at.success[0].value
    at.button(key="label_undo").click().run()  # issue 24: Undo takes the unsaved stroke first
    assert not at.success and "Removed the last unsaved stroke" in at.info[0].value
    at.button(key="label_undo").click().run()  # then the saved version
    assert not at.success and "Undone" in at.info[0].value


def test_history_undo_past_import_then_restore(ws_env, page, make_dataset):
    make_dataset("tiny", z=1, shape=(32, 48), labeled=(0,))
    imported = ws_env.read_mask("tiny", 0)
    at = _open(page)
    assert at.dataframe[0].value["source"].tolist() == ["imported"]
    at.button(key="label_undo").click().run()
    assert ws_env.read_mask("tiny", 0) is None and not at.button(key="label_redo").disabled
    _draw(at, _band(at, (20, 22)))
    at.button(key="label_save").click().run()  # version 2, drawn on nothing
    assert ws_env.read_mask("tiny", 0).sum() == 2 * 48
    df = at.dataframe[0].value
    assert df["version"].tolist() == [2, 1] and df["source"].tolist() == ["drawn", "imported"]
    view = "label_view_tiny_0"
    at.selectbox(key=view).set_value(1).run()  # the imported version over the image
    assert at.image[-1].value is not None and not at.button(key="label_restore").disabled
    at.button(key="label_restore").click().run()
    assert not at.exception
    assert np.array_equal(ws_env.read_mask("tiny", 0), imported)
    assert at.dataframe[0].value["source"].tolist()[0] == "restored from v1"
    assert any("Restored version 1 as version 3" in s.value for s in at.success)
    at.button(key="label_undo").click().run()  # back to version 2; redo returns to 3
    assert ws_env.read_mask("tiny", 0).sum() == 2 * 48
    at.button(key="label_redo").click().run()
    assert np.array_equal(ws_env.read_mask("tiny", 0), imported)


def test_save_after_someone_else_saved_keeps_both(ws_env, page, make_dataset):
    make_dataset("tiny", z=1, shape=(32, 48), labeled=())
    at = _open(page)
    _draw(at, _band(at, (0, 2)))
    other = np.zeros((32, 48), np.uint8)
    other[30:32] = 1
    ws_env.save_mask("tiny", 0, other, status="labeled")  # another session, meanwhile
    at.button(key="label_save").click().run()
    mask = ws_env.read_mask("tiny", 0)
    assert mask[0:2].all() and mask[30:32].all() and mask.sum() == 4 * 48
    assert any("meanwhile" in w.value for w in at.warning)
    assert [v.version for v in ws_env.mask_history("tiny", 0)] == [1, 2]


def test_settings_sent_to_the_browser_on_every_run(ws_env, page, make_dataset):
    """Brush size and the saved-mask toggle carry the page's value in every run's message, not only
    the first: a widget the browser mounts afresh (e.g. while a key press reruns the
    page on a busy machine) otherwise starts at its own default (brush 1, mask off) and sends that back.
    A run that renders none of them (here: no dataset) loses nothing either."""
    make_dataset("tiny", z=3, labeled=(0,))
    at = _open(page)
    at.slider(key="label_brush").set_value(12).run()
    at.toggle(key="label_show_mask").set_value(False).run()
    at.slider(key="label_alpha").set_value(0.7).run()
    at.run()  # an unrelated rerun: nothing set the widgets' keys in it
    for widget, value in ((at.slider(key="label_brush"), 12), (at.toggle(key="label_show_mask"), False)):
        assert widget.value == value and widget.proto.set_value, (widget.key, widget.value, widget.proto.set_value)
    ws_env.delete_dataset("tiny")  # a run without the widgets: Streamlit drops their state
    at.run()
    make_dataset("tiny", z=3, labeled=(0,))
    at.run()
    assert not at.exception
    assert (
        at.slider(key="label_brush").value,
        at.toggle(key="label_show_mask").value,
        at.slider(key="label_alpha").value,
    ) == (12, False, 0.7)


def test_undo_takes_the_unsaved_stroke_first_and_an_empty_base_is_said(ws_env, page, make_dataset):
    """Issue 24: Undo removes unsaved strokes (last first) before any saved version; an undo to no mask
    says so and names the way back; a Save on it says the new version holds only the strokes."""
    make_dataset("tiny", z=1, shape=(32, 48), labeled=(0,))
    imported = ws_env.read_mask("tiny", 0)
    at = _open(page)
    _draw(at, _band(at, (20, 22)))
    at.button(key="label_undo").click().run()
    assert "Removed the last unsaved stroke" in at.info[0].value
    assert ws_env.current_mask_version("tiny", 0) == 1 and np.array_equal(ws_env.read_mask("tiny", 0), imported)
    assert any("0 unsaved stroke" in c.value for c in at.caption)
    at.button(key="label_undo").click().run()  # now the saved version
    assert ws_env.read_mask("tiny", 0) is None
    assert "shows no mask" in at.info[0].value and "Restore version 1" in at.info[0].value
    _draw(at, _band(at, (4, 6)))
    at.button(key="label_save").click().run()
    assert ws_env.read_mask("tiny", 0).sum() == 2 * 48
    assert any("holds only your strokes" in w.value and "Restore version 1" in w.value for w in at.warning)
