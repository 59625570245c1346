"""Label page state: the settings kept across reruns, the status line, and unsaved strokes per slice.

UI only (session state). Unsaved strokes are never dropped: when the slice, dataset, zoom or pan
changes, the strokes on the canvas are kept per slice as a full-resolution paint layer
(:func:`core.view.canvas.paint_layer`) until Save or Clear strokes.
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from core.view import canvas as cv
from pages._common import shown
from pages._keys import key_hint

__all__ = [
    "TOOLS",
    "MODES",
    "SCRIBBLES",
    "ZOOMS",
    "KEYS",
    "KEYS_WIDGET",
    "hint",
    "init",
    "put",
    "kept",
    "keep",
    "say",
    "scribbling",
]

TOOLS = ("Brush", "Eraser", "Polygon fill")
SCRIBBLES = "Scribbles"
MODES = ("Complete mask", SCRIBBLES)
ZOOMS = (1, 2, 4, 8)
KEYS = {
    "ctrl+s": "save",
    "ctrl+z": "undo",
    "ctrl+y": "redo",
    "ctrl+shift+z": "redo",
    "b": "Brush",
    "e": "Eraser",
    "p": "Polygon fill",
    "]": "bigger",
    "[": "smaller",
    ".": "next",
    ",": "previous",
    "c": "class",
    "m": "mask",
    "+": "zoom_in",
    "=": "zoom_in",
    "-": "zoom_out",
    "arrowleft": "left",
    "arrowright": "right",
    "arrowup": "up",
    "arrowdown": "down",
}
KEYS_WIDGET = "label_keys"
_KEPT = ("label_brush", "label_show_mask")  # see init (the others keep their own)
_DEFAULTS = {
    "label_nonce": 0,
    "label_live": None,
    "label_pending": {},
    "label_status": None,
    "label_log": [],
    "label_tool": TOOLS[0],
    "label_brush": 8,
    "label_alpha": 0.4,
    "label_show_mask": True,
    "label_zoom": 1,
    "label_mode": MODES[0],
}


def hint(action: str) -> str:
    """The key bound to ``action``, for button labels."""
    return key_hint(KEYS, action)


def init() -> None:
    """Set the page's session state up once, and hand the kept settings to their widgets."""
    for key, val in _DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = val
    # The settings their widgets show live in ``label_kept``, a key no widget owns, and are handed to
    # the widgets on every run (allowed: before they render). Streamlit sends a widget's value to the
    # browser only in a run that set its key; a widget the browser mounts afresh in a later run (seen
    # on a busy machine around the first key press) starts at its own default (brush 1, saved mask
    # off) and sends that back. A run that ends without rendering a widget drops its state too.
    held = dict(st.session_state.get("label_kept") or {})
    for key in _KEPT:
        held.setdefault(key, st.session_state[key])
        st.session_state[key] = held[key]
    st.session_state["label_kept"] = held


def put(key: str, val) -> None:
    """Change a setting of ``_KEPT``: its widget's key and the kept copy."""
    st.session_state[key] = val
    st.session_state["label_kept"] = {**st.session_state.get("label_kept", {}), key: val}


def kept(key: str):
    """A setting of ``_KEPT`` as kept (callbacks run before ``init`` hands it to the widget)."""
    return st.session_state.get("label_kept", {}).get(key, st.session_state.get(key))


def keep(key: str) -> None:
    """``on_change`` of a ``_KEPT`` widget: keep what the user set."""
    put(key, st.session_state[key])


def scribbling() -> bool:
    """Scribble mode: strokes label only what they cover; the eraser returns pixels to not labeled."""
    return st.session_state.get("label_mode") == SCRIBBLES


def say(kind: str, text: str) -> None:
    """The status line: stays until the next action; the log keeps the last ten. No server folder in
    it (:func:`pages._common.shown`: a refusal from core may name one)."""
    text = shown(text)
    st.session_state["label_status"] = (kind, text)
    st.session_state["label_log"] = [(time.strftime("%H:%M:%S"), kind, text)] + st.session_state["label_log"][:9]


# -- unsaved strokes ------------------------------------------------------------------------------


def _live_drawing(live: dict) -> dict | None:
    """The newest drawing of the canvas ``live`` describes (its widget value, else the last seen)."""
    state = st.session_state.get(live["key"])
    try:
        drawing = (state.get("drawing") or {}).get("raw") if state is not None else None
    except AttributeError:
        drawing = None
    return drawing if drawing is not None else live.get("drawing")


def _layer(live: dict, drawing: dict | None) -> np.ndarray:
    return cv.paint_layer(drawing, live["n_classes"], live["canvas_hw"], live["window"], live["shape"])


def _live_paint(dataset: str, z: int) -> np.ndarray | None:
    live = st.session_state["label_live"]
    if not live or (live["dataset"], live["z"]) != (dataset, z):
        return None
    drawing = _live_drawing(live)
    return _layer(live, drawing) if cv.count_objects(drawing) else None


def fold() -> None:
    """Keep the canvas's strokes as pending paint of their slice, and start a fresh canvas."""
    live = st.session_state["label_live"]
    if live:
        drawing = _live_drawing(live)
        n = cv.count_objects(drawing)
        if n:
            pending = dict(st.session_state["label_pending"])
            old = pending.get((live["dataset"], live["z"]))
            pending[(live["dataset"], live["z"])] = {
                "paint": cv.merge_paint(None if old is None else old["paint"], _layer(live, drawing)),
                "base": live["base"] if old is None else old["base"],
                "n": n + (0 if old is None else old["n"]),
                "id": time.time_ns(),
            }
            st.session_state["label_pending"] = pending
    st.session_state["label_live"] = None
    st.session_state["label_nonce"] += 1


def strokes(dataset: str, z: int) -> tuple[np.ndarray | None, int | None, int]:
    """(paint layer, version drawn on, count) of everything unsaved on slice ``z``."""
    entry = st.session_state["label_pending"].get((dataset, z))
    live = st.session_state["label_live"]
    live_paint = _live_paint(dataset, z)
    paint = None if entry is None else entry["paint"]
    if live_paint is not None:
        paint = cv.merge_paint(paint, live_paint)
    base = entry["base"] if entry else (live["base"] if live_paint is not None else None)
    n = (entry["n"] if entry else 0) + (cv.count_objects(_live_drawing(live)) if live_paint is not None else 0)
    return paint, base, n


def drop_strokes(dataset: str, z: int) -> None:
    """Forget the unsaved strokes of slice ``z`` and start a fresh canvas."""
    st.session_state["label_pending"] = {
        k: v for k, v in st.session_state["label_pending"].items() if k != (dataset, z)
    }
    st.session_state["label_live"] = None
    st.session_state["label_nonce"] += 1
