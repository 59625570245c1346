"""The Label page's session model without a browser: unsaved strokes of every slice, the undo order,
what a save says; and the saved mask's tint layer."""

import numpy as np
import pytest

from core.errors import SegDashError
from core.view.canvas import ZoomWindow, background, stroke_css
from core.view.label_session import LabelSession, save_words, slice_key, undo_words
from core.view.layers import tint_layer


def _line(sid: str, key: str, row: float, c0: float, c1: float, k: int = 1, width: float = 1, frame=None) -> dict:
    return {
        "id": sid,
        "key": key,
        "base": 0,
        "frame": frame or [0, 0, 8, 10, 8, 10],
        "obj": {
            "type": "Path",
            "stroke": stroke_css(k),
            "strokeWidth": width,
            "path": [["M", c0, row], ["L", c1, row]],
        },
    }


def test_receive_keeps_the_browsers_list_less_what_was_saved():
    s = LabelSession()
    a, b = _line("a", "d/0", 1.5, 0.5, 4.5), _line("b", "d/2", 3.5, 0.5, 4.5)
    s.receive([a, b, a, {"id": 3}, "junk"])  # a repeated, two malformed
    assert [x["id"] for x in s.strokes] == ["a", "b"] and s.dropped == 2
    assert s.slices("d") == [0, 2] and s.count("d", 0) == 1 and s.slices("other") == []
    assert s.forget("d", 0) == ["a"]
    s.receive([a, b])  # the browser has not heard of the save yet: a stays saved, not pending again
    assert [x["id"] for x in s.strokes] == ["b"] and s.gone_ids() == ["a"]
    s.receive(None)  # nothing sent: nothing changes
    assert s.count("d", 2) == 1


def test_paint_is_full_resolution_whatever_the_frame():
    s = LabelSession()
    # drawn at 2x on a zoomed window (rows 2-5, columns 4-9 on a 4 x 6 region shown as 8 x 12 canvas pixels)
    zoomed = _line("z", "d/0", 3.0, 1.0, 11.0, width=2, frame=[2, 4, 4, 6, 8, 12])
    s.receive([_line("a", "d/0", 0.5, 0.5, 9.5, k=2), zoomed])
    paint = s.paint("d", 0, n_classes=3, shape=(8, 10))
    assert paint.shape == (8, 10) and (paint[0] == 2).all()
    assert (paint[3, 4:10] == 1).all() and (paint[1:3] == -1).all() and (paint[4:] == -1).all()
    assert s.paint("d", 1, 3, (8, 10)) is None
    s.receive([_line("x", "d/0", 1, 0, 1, frame=[6, 0, 4, 10, 4, 10])])
    with pytest.raises(SegDashError, match="not inside"):
        s.paint("d", 0, 3, (8, 10))
    s.receive([_line("c", "d/0", 1, 0, 1, k=7)])
    with pytest.raises(SegDashError, match="colour"):
        s.paint("d", 0, 3, (8, 10))


def test_undo_takes_unsaved_strokes_last_first_then_versions():
    s = LabelSession()
    s.receive([_line("a", "d/0", 1.5, 0, 4), _line("b", "d/0", 2.5, 0, 4), _line("c", "d/1", 2.5, 0, 4)])
    assert s.undo_step("d", 0, can_undo_saved=True) == "stroke"
    assert s.undo_stroke("d", 0)["id"] == "b" and s.undo_stroke("d", 0)["id"] == "a"
    assert s.undo_step("d", 0, can_undo_saved=True) == "version"
    assert s.undo_step("d", 0, can_undo_saved=False) is None and s.undo_stroke("d", 0) is None
    assert s.count("d", 1) == 1  # another slice's strokes are not touched
    assert slice_key("d", 1) == "d/1"


def test_words_say_when_the_slice_has_no_mask_and_the_way_back():
    kind, text = undo_words(None, 3, "Ctrl+Y")
    assert kind == "info" and "no mask" in text and "Restore version 3" in text and "Ctrl+Y" in text
    assert "back to version 2" in undo_words(2, 3, "Ctrl+Y")[1]
    kind, text = save_words("s0", 4, "labeled", 1, None, base_empty=True, last_version=3)
    assert kind == "warning" and "holds only your strokes" in text and "Restore version 3" in text
    kind, text = save_words("s0", 1, "labeled", 2, None, base_empty=True, last_version=None)  # the first save
    assert kind == "success" and "only" not in text
    assert save_words("s0", 5, "edited", 1, 4, base_empty=False, last_version=4)[0] == "warning"


def test_tint_layer_matches_the_background_blend():
    image = np.full((4, 6), 100, np.uint8)
    mask = np.zeros((4, 6), np.uint8)
    mask[1:3, 2:5] = 1
    window = ZoomWindow(0, 0, 4, 6)
    layer = tint_layer(mask, window, 0.4)
    assert (layer[mask == 0, 3] == 0).all() and (layer[mask == 1, 3] == 102).all()
    blended = background(image, mask, window, (4, 6), 0.4)
    a = layer[..., 3:] / 255
    composed = background(image, None, window, (4, 6)) * (1 - a) + layer[..., :3] * a
    assert np.abs(composed - blended).max() <= 1
    assert not tint_layer(None, window, 0.4).any() and not tint_layer(mask, window, 0.0).any()
    partial = np.full((4, 6), 255, np.uint8)
    partial[0, 0] = 0  # scribbles: background strokes are tinted too
    assert tint_layer(partial, window, 0.5)[0, 0, 3] > 0 and tint_layer(partial, window, 0.5)[1, 1, 3] == 0
