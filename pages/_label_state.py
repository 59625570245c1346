"""Label page state: the settings kept across reruns, the status line, and unsaved strokes per slice.

UI only (session state). Unsaved strokes live in the browser's canvas until saved; the server's copy
is the session model :class:`core.view.label_session.LabelSession` (:func:`session`), fed with
what the canvas sent last (:func:`sync`).
"""

from __future__ import annotations

import time

import numpy as np
import streamlit as st

from core.view.label_session import LabelSession
from pages._common import shown, workspace
from pages._keys import key_hint, value
from pages._label_canvas import CANVAS_KEY, RELAY_KEY

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
    "session",
    "sync",
    "newest",
    "strokes",
    "drop_strokes",
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
    "1": "fit",
}
KEYS_WIDGET = "label_keys"
_KEPT = ("label_brush", "label_show_mask")  # see init (the others keep their own)
_DEFAULTS = {
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


def session() -> LabelSession:
    """This browser session's label model (unsaved strokes of every slice, undo order)."""
    if not isinstance(st.session_state.get("label_session"), LabelSession):
        st.session_state["label_session"] = LabelSession()
    return st.session_state["label_session"]


def newest() -> str:
    """The key of the component the canvas sent its newest message through: the canvas itself or the
    relay (``pages/_label_canvas.py``); each message carries its number ``n``."""

    def n(key: str) -> float:
        ui = value(key, "ui")
        got = ui.get("n") if isinstance(ui, dict) else None
        return got if isinstance(got, (int, float)) else -1

    return RELAY_KEY if n(RELAY_KEY) > n(CANVAS_KEY) else CANVAS_KEY


def sync() -> LabelSession:
    """Hand the strokes the canvas sent last to the session model (idempotent); returns the model."""
    sess = session()
    ui = value(newest(), "ui")
    if isinstance(ui, dict):
        sess.receive(ui.get("strokes"))
    return sess


def strokes(dataset: str, z: int) -> tuple[np.ndarray | None, int | None, int]:
    """(paint layer, version drawn on, count) of everything unsaved on slice ``z``."""
    sess = sync()
    n = sess.count(dataset, z)
    if not n:
        return None, None, 0
    info = workspace().dataset(dataset)
    paint = sess.paint(dataset, z, info.n_classes, info.shape[1:])
    return paint, sess.base(dataset, z), n


def drop_strokes(dataset: str, z: int) -> list[str]:
    """Forget the unsaved strokes of slice ``z`` (saved or cleared); the canvas drops them too."""
    return sync().forget(dataset, z)
