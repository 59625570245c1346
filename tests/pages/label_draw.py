"""What the Label page's AppTests share: a drawing given to the canvas as the browser sends it."""

import hashlib
import json

from streamlit.testing.v1 import AppTest

__all__ = ["draw", "middle_row_stroke"]


def middle_row_stroke(at: AppTest, height: int, width: int, klass: int = 1) -> dict:
    """A 3-pixel brush stroke of ``klass`` from pixel 10 to 30 of the middle row of a ``height`` x
    ``width`` slice, in the pixels of the canvas the page shows (``label_canvas_hw``)."""
    from core.view import canvas as cv

    ch, cw = at.session_state["label_canvas_hw"]
    sy, sx = ch / height, cw / width
    mid = height // 2 + 0.5
    return {
        "type": "Path",
        "stroke": cv.stroke_css(klass),
        "strokeWidth": 3 * sx,
        "path": [["M", 10.5 * sx, mid * sy], ["L", 30.5 * sx, mid * sy]],
    }


def draw(at: AppTest, drawing: dict) -> AppTest:
    """Give the canvas a drawing on the slice shown, as the browser sends it (its whole list of unsaved
    strokes, every slice), and rerun. ``drawing`` is what the canvas holds on this slice (Fabric objects
    in the pixels of a ``label_canvas_hw`` canvas over the window shown): an object sent again is the
    same stroke (same id), as the browser's list repeats its strokes until they are saved."""
    ctx, (ch, cw) = at.session_state["label_ctx"], at.session_state["label_canvas_hw"]
    w = ctx["window"]
    where = f"{ctx['dataset']}/{ctx['z']}"
    frame = [w.y0, w.x0, w.height, w.width, ch, cw]
    gone = set(at.session_state["label_session"].gone_ids())
    try:
        sent = at.session_state["label_canvas"]["ui"]["strokes"]
    except (KeyError, TypeError):
        sent = []
    new = []
    for obj in drawing.get("objects") or []:
        sid = hashlib.sha1(json.dumps([where, frame, obj], sort_keys=True).encode()).hexdigest()
        new.append({"id": sid, "key": where, "base": ctx.get("version"), "frame": frame, "obj": obj})
    strokes = [s for s in sent if s["id"] not in gone] + new
    at.session_state["label_canvas"] = {"ui": {"page": "test", "items": [], "strokes": strokes}}
    at.run()
    assert not at.exception
    return at
