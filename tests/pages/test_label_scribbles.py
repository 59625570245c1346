"""Label page in scribble mode: strokes label only what they cover, the eraser returns pixels to not labeled."""

import numpy as np
import pytest

from core.data.masks import UNLABELED
from core.train.process import ProcessJob
from core.view import canvas as cv
from pages._label_live import ROUND_KEY
from tests.pages.test_label import _draw, _open

pytestmark = pytest.mark.usefixtures("live_warmed")  # see tests/pages/conftest.py


def _line(k: int, row: float, c0: float, c1: float, width: float, at) -> dict:
    ch, cw = at.session_state["label_canvas_hw"]
    sy, sx = ch / 32, cw / 48
    return {
        "type": "Path",
        "stroke": cv.stroke_css(k),
        "strokeWidth": width * sx,
        "path": [["M", c0 * sx, row * sy], ["L", c1 * sx, row * sy]],
    }


def test_scribbles_label_only_the_strokes_and_the_eraser_unlabels(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=(0,))
    at = _open(page)
    at.selectbox(key="label_slice_pick").set_value(1).run()
    at.radio(key="label_mode").set_value("Scribbles").run()
    assert at.selectbox(key="label_class").options == ["background", "cell"]
    _draw(at, {"objects": [_line(1, 16.5, 10.5, 30.5, 3, at), _line(0, 4.5, 2.5, 40.5, 1, at)]})
    at.button(key="label_save").click().run()
    assert not at.exception
    mask = ws_env.read_mask("tiny", 1)
    assert mask[16, 20] == 1 and mask[4, 20] == 0 and mask[25, 20] == UNLABELED
    assert ws_env.slices("tiny")[1].coverage == "partial"
    assert "partial" in at.selectbox(key="label_slice_pick").format_func(1)
    at.radio(key="label_tool").set_value("Eraser").run()
    _draw(at, {"objects": [_line(UNLABELED, 16.5, 18.5, 22.5, 1, at)]})
    at.button(key="label_save").click().run()
    mask2 = ws_env.read_mask("tiny", 1)
    assert mask2[16, 20] == UNLABELED and mask2[16, 12] == 1 and mask2[4, 20] == 0
    at.button(key="label_undo").click().run()
    assert np.array_equal(ws_env.read_mask("tiny", 1), mask)


def test_complete_mode_stays_as_before(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, shape=(32, 48), labeled=(0,))
    at = _open(page)
    assert at.radio(key="label_mode").value == "Complete mask"
    at.selectbox(key="label_slice_pick").set_value(2).run()
    _draw(at, {"objects": [_line(1, 16.5, 10.5, 30.5, 3, at)]})
    at.button(key="label_save").click().run()
    mask = ws_env.read_mask("tiny", 2)
    assert mask[16, 20] == 1 and mask[25, 20] == 0 and ws_env.slices("tiny")[2].coverage == "complete"


def test_train_on_my_strokes_shows_a_prediction(ws_env, page, make_dataset, monkeypatch):
    import core.workflow.live as live

    monkeypatch.setattr(live, "FIRST_BUDGET_S", 2.0)
    monkeypatch.setattr(live, "MIN_STEPS", 2)
    monkeypatch.setenv("SEGDASH_THREADS", "1")
    make_dataset("tiny", z=3, shape=(32, 48), labeled=())
    at = _open(page)
    assert at.button(key="label_live_train") is not None
    at.radio(key="label_mode").set_value("Scribbles").run()
    at.selectbox(key="label_class").set_value(1).run()
    _draw(at, {"objects": [_line(1, 16.5, 10.5, 30.5, 3, at)]})
    at.selectbox(key="label_class").set_value(0).run()
    _draw(at, {"objects": [_line(1, 16.5, 10.5, 30.5, 3, at), _line(0, 4.5, 2.5, 40.5, 2, at)]})
    at.button(key="label_live_train").click().run()
    assert not at.exception
    assert ws_env.slices("tiny")[0].coverage == "partial"  # the strokes were saved first
    r = at.session_state[ROUND_KEY]  # the round the page keeps, trained by a worker process
    assert isinstance(r.job, ProcessJob) and ws_env.run(r.run_id).origin == "live"
    assert r.join(180), r.snapshot()
    assert r.state == "done", r.error
    at.run()
    assert not at.exception
    assert any("Prediction of slice 0" in c.value for c in at.caption)
    assert at.toggle(key="label_show_pred").value is True
