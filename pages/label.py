"""Label: paint a slice's mask with brush, eraser and polygon fill; save, undo, redo, restore.

UI only. The canvas (``streamlit-drawable-canvas``) returns Fabric JSON; :mod:`core.view.canvas` turns it
into a mask at full image resolution, whatever the canvas size or zoom. The canvas uses the width
of the page (whole-pixel magnification when the region fits, 1:1 for a 1024-px slice on a wide
enough page); keyboard shortcuts and the column width come from the small component in
``pages/_keys.py``.

Unsaved strokes are never dropped: when the slice, dataset, zoom or pan changes, the strokes on the
canvas are kept per slice as a full-resolution paint layer (drawn striped, apart from the saved
mask's tint) until Save or Clear strokes. Save applies them to the newest version of the mask inside
one transaction (:meth:`core.store.workspace.Workspace.edit_mask`), so a version someone saved meanwhile
keeps their work. Every saved version stays in the slice's history, where it can be viewed and
restored (as a new version); Undo and Redo walk that history.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.errors import StreamlitAPIException

from core.view import canvas as cv
from core.view.render import overlay
from core.workflow.assist import model_sources, model_suggestion
from pages._common import dataset_picker, user_errors, workspace
from pages._keys import key_hint, label_keys, new_actions, value

try:  # the component registers itself with the running Streamlit; it cannot load without one
    from streamlit_drawable_canvas import st_canvas

    _CANVAS_ERROR = None
except (ImportError, StreamlitAPIException) as exc:
    st_canvas, _CANVAS_ERROR = None, exc

TOOLS = ("Brush", "Eraser", "Polygon fill")
ZOOMS = (1, 2, 4, 8)
DEFAULT_WIDTH = 900  # canvas width before the browser has told the column's width (and under AppTest)
MAX_HEIGHT = 1024
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
_STATUS = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}
_KEYS_WIDGET = "label_keys"
_KEPT = ("label_brush", "label_show_mask")  # see _init (the others keep their own)


def _k(action: str) -> str:
    return key_hint(KEYS, action)


def _init() -> None:
    defaults = {
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
    }
    for key, val in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = val
    # The settings their widgets show live in ``label_kept``, a key no widget owns, and are handed to
    # the widgets on every run (allowed: before they render). Streamlit sends a widget's value to the
    # browser only in a run that set its key; a widget the browser mounts afresh in a later run (seen
    # on a busy machine around the first key press) starts at its own default (brush 1, saved mask
    # off) and sends that back. A run that ends without rendering a widget drops its state too.
    kept = dict(st.session_state.get("label_kept") or {})
    for key in _KEPT:
        kept.setdefault(key, st.session_state[key])
        st.session_state[key] = kept[key]
    st.session_state["label_kept"] = kept


def _set(key: str, val) -> None:
    """Change a setting of ``_KEPT``: its widget's key and the kept copy."""
    st.session_state[key] = val
    st.session_state["label_kept"] = {**st.session_state.get("label_kept", {}), key: val}


def _get(key: str):
    """A setting of ``_KEPT`` as kept (callbacks run before ``_init`` hands it to the widget)."""
    return st.session_state.get("label_kept", {}).get(key, st.session_state.get(key))


def _keep(key: str) -> None:
    """``on_change`` of a ``_KEPT`` widget: keep what the user set."""
    _set(key, st.session_state[key])


def _say(kind: str, text: str) -> None:
    """The status line: stays until the next action; the log keeps the last ten."""
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


def _live_paint(dataset: str, z: int) -> np.ndarray | None:
    live = st.session_state["label_live"]
    if not live or (live["dataset"], live["z"]) != (dataset, z):
        return None
    drawing = _live_drawing(live)
    if not cv.count_objects(drawing):
        return None
    return cv.paint_layer(drawing, live["n_classes"], live["canvas_hw"], live["window"], live["shape"])


def _fold() -> None:
    """Keep the canvas's strokes as pending paint of their slice, and start a fresh canvas."""
    live = st.session_state["label_live"]
    if live:
        drawing = _live_drawing(live)
        n = cv.count_objects(drawing)
        if n:
            paint = cv.paint_layer(drawing, live["n_classes"], live["canvas_hw"], live["window"], live["shape"])
            pending = dict(st.session_state["label_pending"])
            old = pending.get((live["dataset"], live["z"]))
            pending[(live["dataset"], live["z"])] = {
                "paint": cv.merge_paint(None if old is None else old["paint"], paint),
                "base": live["base"] if old is None else old["base"],
                "n": n + (0 if old is None else old["n"]),
                "id": time.time_ns(),
            }
            st.session_state["label_pending"] = pending
    st.session_state["label_live"] = None
    st.session_state["label_nonce"] += 1


def _strokes(dataset: str, z: int) -> tuple[np.ndarray | None, int | None, int]:
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


def _drop_strokes(dataset: str, z: int) -> None:
    st.session_state["label_pending"] = {
        k: v for k, v in st.session_state["label_pending"].items() if k != (dataset, z)
    }
    st.session_state["label_live"] = None
    st.session_state["label_nonce"] += 1


# -- actions (callbacks: they run before the page, so it already shows their result) --------------


def _go(z: int) -> None:
    st.session_state["slice"] = z


def _on_pick() -> None:
    _go(st.session_state["label_slice_pick"])


def _step(n: int, step: int) -> None:
    _go((st.session_state["slice"] + step) % n)


def _next_unlabeled(statuses: tuple[str, ...]) -> None:
    z, n = st.session_state["slice"], len(statuses)
    for step in range(1, n + 1):
        k = (z + step) % n
        if statuses[k] == "unlabeled":
            _go(k)
            return
    _say("info", "Every slice has a mask.")


def _save(ws, dataset: str, z: int) -> None:
    paint, base, n = _strokes(dataset, z)
    if paint is None or not (paint >= 0).any():
        _say("info", "Nothing to save: no unsaved strokes on this slice.")
        return
    try:
        info = ws.dataset(dataset)
        saved = ws.edit_mask(
            dataset, z, lambda m: cv.apply_paint(m, paint, info.shape[1:]), base_version=base, source="drawn"
        )
    except ValueError as exc:
        _say("error", f"Not saved: {exc}")
        return
    _drop_strokes(dataset, z)
    text = f"Saved {info.slice_names[z]}: version {saved.version} ({saved.status}, {n} stroke(s))."
    if saved.merged:
        text += (
            f" Someone saved version {saved.parent} of this slice meanwhile: your strokes were applied on "
            "top of it, so both are kept."
        )
    _say("warning" if saved.merged else "success", text)


def _undo(ws, dataset: str, z: int) -> None:
    try:
        version = ws.undo_mask(dataset, z)
    except ValueError as exc:
        _say("error", str(exc))
        return
    _say(
        "info",
        (f"Undone: back to version {version}." if version else "Undone: the slice shows no mask.")
        + f" Redo ({_k('redo')}) or the history brings the undone version back.",
    )


def _redo(ws, dataset: str, z: int) -> None:
    try:
        version = ws.redo_mask(dataset, z)
    except ValueError as exc:
        _say("error", str(exc))
        return
    _say("info", f"Redone: version {version}.")


def _restore(ws, dataset: str, z: int, key: str) -> None:
    old = st.session_state[key]
    try:
        version = ws.restore_mask(dataset, z, old)
    except ValueError as exc:
        _say("error", str(exc))
        return
    _say("success", f"Restored version {old} as version {version} (the history keeps every version).")


def _clear(dataset: str, z: int) -> None:
    _, _, n = _strokes(dataset, z)
    _drop_strokes(dataset, z)
    _say("info", f"Cleared {n} unsaved stroke(s) of this slice.")


def _from_model(ws, dataset: str, z: int, base: int) -> None:
    try:
        labels, source = model_suggestion(ws, dataset, z)
        version = ws.save_mask(
            dataset, z, labels, status="from-prediction", source=f"model:{source}", base_version=base
        )
    except ValueError as exc:
        _say("warning", str(exc))
        return
    _say("success", f"Started from the {source} (version {version}, from-prediction): correct it and Save.")


def _pan(dy: float, dx: float, shape: tuple[int, int], window: cv.ZoomWindow) -> None:
    if _get("label_zoom") in (None, 1):
        return
    cy, cx = st.session_state.get("label_cy", window.center[0]), st.session_state.get("label_cx", window.center[1])
    st.session_state["label_cy"] = int(min(max(cy + dy * window.height, 0), shape[0] - 1))
    st.session_state["label_cx"] = int(min(max(cx + dx * window.width, 0), shape[1] - 1))


def _on_pan(shape: tuple[int, int]) -> None:
    target = value("label_map", "pan")
    if target:
        st.session_state["label_cy"] = int(min(max(target[0], 0), shape[0] - 1))
        st.session_state["label_cx"] = int(min(max(target[1], 0), shape[1] - 1))


def _on_key() -> None:
    """Run the actions of the keys pressed, each once, on the slice shown (``label_ctx``) or moved to."""
    ctx = st.session_state.get("label_ctx")
    actions = new_actions(_KEYS_WIDGET, "label_keys_seen")
    if not ctx:
        return
    ws = workspace()
    dataset, n, n_classes, shape, window = (ctx[k] for k in ("dataset", "n", "n_classes", "shape", "window"))
    try:
        for action in actions:
            z = st.session_state["slice"] if st.session_state.get("dataset") == dataset else ctx["z"]
            if action in ("left", "right", "up", "down", "zoom_in", "zoom_out") and z != ctx["z"]:
                continue  # the window shown belongs to another slice's page: skip rather than guess
            _act(ws, dataset, z, n, n_classes, shape, window, action)
    except ValueError as exc:  # e.g. the dataset was deleted meanwhile
        _say("error", str(exc))


def _act(
    ws, dataset: str, z: int, n: int, n_classes: int, shape: tuple[int, int], window: cv.ZoomWindow, action: str
) -> None:
    if action == "save":
        _save(ws, dataset, z)
    elif action == "undo":
        _undo(ws, dataset, z) if ws.can_undo(dataset, z) else _say("info", "Nothing to undo on this slice.")
    elif action == "redo":
        _redo(ws, dataset, z)
    elif action in TOOLS:
        _set("label_tool", action)
    elif action in ("bigger", "smaller"):
        size = _get("label_brush")
        step = max(1, round(size * 0.25))
        _set("label_brush", int(min(64, size + step) if action == "bigger" else max(1, size - step)))
    elif action in ("next", "previous"):
        _step(n, 1 if action == "next" else -1)
    elif action == "class":
        k = st.session_state.get("label_class", 1)
        st.session_state["label_class"] = k % (n_classes - 1) + 1  # cycles 1 .. K-1
    elif action == "mask":
        _set("label_show_mask", not _get("label_show_mask"))
    elif action in ("zoom_in", "zoom_out"):
        i = ZOOMS.index(_get("label_zoom") if _get("label_zoom") in ZOOMS else 1) + (1 if action == "zoom_in" else -1)
        _set("label_zoom", ZOOMS[min(max(i, 0), len(ZOOMS) - 1)])
    elif action in ("left", "right", "up", "down"):
        dy, dx = {"left": (0, -0.25), "right": (0, 0.25), "up": (-0.25, 0), "down": (0.25, 0)}[action]
        _pan(dy, dx, shape, window)


# -- pictures ------------------------------------------------------------------------------------

# ``root`` and ``stamp`` (the slice's last change) are cache keys: new picture after every save or undo


@st.cache_data(max_entries=32, show_spinner=False)
def _background(
    root: str,
    dataset: str,
    z: int,
    stamp: float,
    window: cv.ZoomWindow,
    canvas_hw: tuple[int, int],
    alpha: float,
    pending_id: int,
    _pending: np.ndarray | None,
) -> Image.Image:
    """The canvas background: the shown region, the stored mask tinted, unsaved strokes striped."""
    ws = workspace()
    return Image.fromarray(
        cv.background(ws.read_slice(dataset, z), ws.read_mask(dataset, z), window, canvas_hw, alpha, pending=_pending)
    )


@st.cache_data(max_entries=8, show_spinner=False)
def _overview(root: str, dataset: str, z: int, stamp: float, width: int) -> str:
    """The whole slice with its mask, as a data URL at most ``width`` pixels wide (for the pan map)."""
    ws = workspace()
    rgb = overlay(ws.read_slice(dataset, z), ws.read_mask(dataset, z), 0.4)
    img = Image.fromarray(rgb)
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@st.cache_data(max_entries=16, show_spinner=False)
def _version_picture(root: str, dataset: str, z: int, version: int) -> np.ndarray:
    ws = workspace()
    return overlay(ws.read_slice(dataset, z), ws.read_mask(dataset, z, version=version), 0.5)


def _chips(class_names: tuple[str, ...], current: int | None) -> str:
    """Each class's canvas colour beside its name, the class being painted in bold."""
    out = []
    for k, name in enumerate(class_names):
        r, g, b = cv.canvas_color(k)
        label = f"**{name}**" if k == current else name
        out.append(
            f"<span style='display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b});"
            f"border:1px solid #888;vertical-align:middle'></span> {label}" + (" (eraser)" if k == 0 else "")
        )
    return " &nbsp; ".join(out)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _source(text: str) -> str:
    if text.startswith("accepted:"):
        return f"accepted from run {text.split(':', 1)[1]}"
    if text.startswith("restored:"):
        return f"restored from {text.split(':', 1)[1]}"
    if text.startswith("model:"):
        return f"started from the {text.split(':', 1)[1]}"
    return {"accepted": "accepted prediction"}.get(text, text)


# -- page ----------------------------------------------------------------------------------------

_init()
ws = workspace()
dataset = dataset_picker(ws)
st.title("Label")
# first on the page and always there, so it stays mounted (a key pressed while it re-mounts would be
# lost); it measures the page's width, which the canvas may use whole
label_keys(KEYS, key=_KEYS_WIDGET, measure=True, on_action=_on_key)

if not dataset:
    st.info("No dataset yet: import one on the Data page.")
    st.stop()

with user_errors():
    info = ws.dataset(dataset)
    n, (height, width) = info.shape[0], info.shape[1:]
    remembered = st.session_state.setdefault("label_slice_of", {})
    if st.session_state.get("label_dataset") != dataset:  # back on a dataset: back on its slice
        st.session_state["label_dataset"] = dataset
        st.session_state["slice"] = remembered.get(dataset, st.session_state["slice"])
    if not isinstance(st.session_state["slice"], int) or not 0 <= st.session_state["slice"] < n:
        st.session_state["slice"] = 0
    z = remembered[dataset] = st.session_state["slice"]
    st.session_state["label_slice_pick"] = z
    current = ws.slices(dataset)[z]
    if st.session_state.get("label_zoom") not in ZOOMS:
        _set("label_zoom", 1)
    zoom = st.session_state["label_zoom"]
    center = (height // 2, width // 2)
    if zoom > 1:
        for key, hi in (("label_cy", height - 1), ("label_cx", width - 1)):
            if not isinstance(st.session_state.get(key), int) or st.session_state[key] > hi:
                st.session_state[key] = (hi + 1) // 2  # unset, or from a larger dataset
        center = (st.session_state["label_cy"], st.session_state["label_cx"])
    window = cv.zoom_window((height, width), zoom, center)
    col_w = value(_KEYS_WIDGET, "width") or DEFAULT_WIDTH
    canvas_hw = cv.fit_canvas(window, int(col_w), MAX_HEIGHT)
    st.session_state["label_canvas_hw"] = canvas_hw
    key = (
        f"label_canvas_{dataset}_{z}_{st.session_state['label_nonce']}_{zoom}_{window.y0}_{window.x0}_"
        f"{canvas_hw[0]}x{canvas_hw[1]}"
    )
    live = st.session_state["label_live"]
    if live and live["key"] != key:  # another slice, dataset, zoom, pan or width: keep the strokes
        _fold()
        key = (
            f"label_canvas_{dataset}_{z}_{st.session_state['label_nonce']}_{zoom}_{window.y0}_{window.x0}_"
            f"{canvas_hw[0]}x{canvas_hw[1]}"
        )
    st.session_state["label_canvas_key"] = key
    pending_slices = sorted(k for d, k in st.session_state["label_pending"] if d == dataset)

    status = st.session_state["label_status"]
    if status:
        _STATUS[status[0]](status[1])

    top = st.columns([4, 1, 1, 1.6, 3], vertical_alignment="bottom")
    top[0].selectbox(
        "Slice",
        list(range(n)),
        key="label_slice_pick",
        on_change=_on_pick,
        format_func=lambda k: (
            f"{k}: {info.slice_names[k]} ({info.statuses[k]})" + (" - unsaved strokes" if k in pending_slices else "")
        ),
    )
    top[1].button(f"Previous ({_k('previous')})", key="label_prev", on_click=_step, args=(n, -1), width="stretch")
    top[2].button(f"Next ({_k('next')})", key="label_next_slice", on_click=_step, args=(n, 1), width="stretch")
    top[3].button(
        "Next unlabeled",
        key="label_next",
        on_click=_next_unlabeled,
        args=(info.statuses,),
        icon=":material/skip_next:",
        width="stretch",
    )
    top[4].markdown(f"**{current.name}**: {current.status}, version {current.version or '-'}")

    # -- tools ---------------------------------------------------------------------------------
    bar = st.columns([2.2, 2.2, 1.6, 1.6, 1.4], vertical_alignment="bottom")
    tool = bar[0].radio(
        "Tool",
        TOOLS,
        key="label_tool",
        horizontal=True,
        on_change=_keep,
        args=("label_tool",),
        format_func=lambda t: f"{t} ({_k(t)})",
    )
    k_saved = st.session_state.get("label_class")
    if not isinstance(k_saved, int) or not 1 <= k_saved < info.n_classes:
        st.session_state["label_class"] = 1  # the first class that is not background
    k_pick = bar[1].selectbox(
        f"Class (next: {_k('class')})",
        list(range(1, info.n_classes)),
        key="label_class",
        format_func=lambda c: info.class_names[c],
        disabled=tool == "Eraser",
    )
    k = 0 if tool == "Eraser" else k_pick
    size = bar[2].slider(
        f"Brush size, image px ({_k('smaller')} {_k('bigger')})",
        1,
        64,
        key="label_brush",
        on_change=_keep,
        args=("label_brush",),
        disabled=tool == "Polygon fill",
    )
    zoom = bar[3].select_slider(
        f"Zoom ({_k('zoom_out')} {_k('zoom_in')})",
        ZOOMS,
        key="label_zoom",
        on_change=_keep,
        args=("label_zoom",),
        format_func=lambda f: f"{f}x",
    )
    show_mask = bar[4].toggle(
        f"Saved mask ({_k('mask')})", key="label_show_mask", on_change=_keep, args=("label_show_mask",)
    )
    st.markdown(f"Painting: {_chips(info.class_names, k)}", unsafe_allow_html=True)

    paint, base, pending = _strokes(dataset, z)

    acts = st.columns(5)
    acts[0].button(
        f"Save ({_k('save')})",
        key="label_save",
        type="primary",
        icon=":material/save:",
        width="stretch",
        on_click=_save,
        args=(ws, dataset, z),
    )
    acts[1].button(
        f"Undo ({_k('undo')})",
        key="label_undo",
        icon=":material/undo:",
        width="stretch",
        on_click=_undo,
        args=(ws, dataset, z),
        disabled=not ws.can_undo(dataset, z),
    )
    acts[2].button(
        f"Redo ({_k('redo')})",
        key="label_redo",
        icon=":material/redo:",
        width="stretch",
        on_click=_redo,
        args=(ws, dataset, z),
        disabled=not ws.can_redo(dataset, z),
    )
    acts[3].button(
        "Clear strokes",
        key="label_clear",
        icon=":material/ink_eraser:",
        width="stretch",
        on_click=_clear,
        args=(dataset, z),
        disabled=not pending,
    )
    if current.status == "unlabeled":
        src = model_sources(ws, dataset)
        has_model = src["prediction_folder"] or src["checkpoint"] is not None
        acts[4].button(
            "Start from model prediction",
            key="label_from_model",
            icon=":material/auto_fix_high:",
            width="stretch",
            on_click=_from_model,
            args=(ws, dataset, z, current.version),
            disabled=not has_model,
        )
        if not has_model:
            st.caption("No model yet: train one on the Train page to start slices from its prediction.")

    # -- canvas ------------------------------------------------------------------------------------
    entry = st.session_state["label_pending"].get((dataset, z))
    bg = _background(
        str(ws.root),
        dataset,
        z,
        current.updated,
        window,
        canvas_hw,
        st.session_state["label_alpha"] if show_mask else 0.0,
        0 if entry is None else entry["id"],
        None if entry is None else entry["paint"],
    )
    if st_canvas is None:
        st.warning(
            f"The drawing canvas cannot run here ({_CANVAS_ERROR}). The slice is shown read-only; "
            "Save, Undo and Start from model prediction still work."
        )
        st.image(bg)
    else:
        polygon = tool == "Polygon fill"
        result = st_canvas(
            fill_color=cv.stroke_css(k, 0.5),
            stroke_color=cv.stroke_css(k, 0.9),
            stroke_width=cv.brush_width(1 if polygon else size, window, canvas_hw),
            background_image=bg,
            height=canvas_hw[0],
            width=canvas_hw[1],
            drawing_mode="polygon" if polygon else "freedraw",
            update_streamlit=True,
            key=key,
        )
        st.session_state["label_live"] = {
            "key": key,
            "dataset": dataset,
            "z": z,
            "window": window,
            "canvas_hw": canvas_hw,
            "shape": (height, width),
            "n_classes": info.n_classes,
            "base": current.version,
            "drawing": result.json_data,
        }
        paint, base, pending = _strokes(dataset, z)
    scale = canvas_hw[1] / window.width
    others = [s for s in pending_slices if s != z]
    st.caption(
        ("Polygon: click the corners, then the first corner again to close it. " if tool == "Polygon fill" else "")
        + f"{pending} unsaved stroke(s) on this slice"
        + (f", unsaved strokes on slice(s) {', '.join(map(str, others))}" if others else "")
        + ". Unsaved strokes are solid on the canvas and striped once you change slice, zoom or pan; "
        "the saved mask is the pale tint. "
        + f"Showing rows {window.y0}-{window.y0 + window.height - 1}, columns {window.x0}-"
        f"{window.x0 + window.width - 1} at {scale:g} screen px per image px"
        + (" (1:1)" if scale == 1 else "")
        + ". Pan: arrow keys, or drag the box on the overview."
    )

    st.session_state["label_ctx"] = {
        "dataset": dataset,
        "z": z,
        "n": n,
        "n_classes": info.n_classes,
        "shape": (height, width),
        "window": window,
    }

    # -- overview, history ----------------------------------------------------------------------
    left, right = st.columns([1, 1.4])
    with left:
        st.slider("Mask opacity", 0.0, 1.0, step=0.05, key="label_alpha", on_change=_keep, args=("label_alpha",))
        if zoom > 1:
            st.markdown("**Overview** (drag the box to pan)")
            label_keys(
                {},
                key="label_map",
                on_pan=lambda: _on_pan((height, width)),
                overview={
                    "src": _overview(str(ws.root), dataset, z, current.updated, 480),
                    "shape": [height, width],
                    "window": [window.y0, window.x0, window.height, window.width],
                },
            )
            st.slider("Window centre: row", 0, height - 1, key="label_cy")
            st.slider("Window centre: column", 0, width - 1, key="label_cx")
        log = st.session_state["label_log"]
        if log:
            with st.expander("Recent actions", expanded=False):
                for when, _, text in log:
                    st.markdown(f"`{when}` {text}")
    with right:
        history = ws.mask_history(dataset, z)
        st.markdown(f"**History of {current.name}** ({len(history)} version(s), none is ever deleted)")
        if not history:
            st.caption("No version yet: draw and Save.")
        else:
            st.dataframe(
                [
                    {
                        "version": v.version,
                        "saved": _when(v.created),
                        "source": _source(v.source),
                        "status": v.status,
                        "drawn on": f"v{v.parent}" if v.parent else "-",
                        "shown": "current" if v.current else "",
                    }
                    for v in reversed(history)
                ],
                hide_index=True,
                width="stretch",
                height=min(36 * (len(history) + 1) + 2, 250),
            )
            view_key = f"label_view_{dataset}_{z}"
            versions = [v.version for v in reversed(history)]
            if st.session_state.get(view_key) not in versions:
                st.session_state[view_key] = versions[0]
            shown = st.selectbox(
                "View version",
                versions,
                key=view_key,
                format_func=lambda v: f"version {v}" + (" (current)" if v == current.version else ""),
            )
            st.image(
                _version_picture(str(ws.root), dataset, z, shown),
                width="stretch",
                caption=f"Version {shown} over the image",
            )
            st.button(
                f"Restore version {shown}",
                key="label_restore",
                icon=":material/history:",
                on_click=_restore,
                args=(ws, dataset, z, view_key),
                disabled=shown == current.version,
                help="Adds a new version with this content; every other version stays in the history.",
            )
