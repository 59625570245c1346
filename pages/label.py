"""Label: paint a slice's mask with brush, eraser and polygon fill, zoomed in where needed; save, undo.

UI only. The canvas (``streamlit-drawable-canvas``) returns Fabric JSON; :mod:`core.canvas` turns it
into a mask at full image resolution, whatever the canvas size or zoom. Save writes a new mask
version at once (``labeled`` for a slice that had none, ``edited`` otherwise); Undo steps back one
version. Save, Undo, a new slice and a new zoom window re-key the canvas, so it shows the stored
mask with no stale strokes.
"""

import numpy as np
import streamlit as st
from PIL import Image
from streamlit.errors import StreamlitAPIException

from core import canvas as cv
from core.assist import model_sources, model_suggestion
from core.render import overlay
from pages._common import dataset_picker, init_state, user_errors, workspace

try:  # the component registers itself with the running Streamlit; it cannot load without one
    from streamlit_drawable_canvas import st_canvas
    _CANVAS_ERROR = None
except (ImportError, StreamlitAPIException) as exc:
    st_canvas, _CANVAS_ERROR = None, exc

TOOLS = ("Brush", "Eraser", "Polygon fill")
ZOOMS = (1, 2, 4, 8)
_FLASH = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def _init() -> None:
    init_state()
    defaults = {"label_nonce": 0, "label_drawing": None, "label_flash": [], "label_canvas_key": None}
    for key, value in defaults.items():
        if key not in st.session_state:
            st.session_state[key] = value


def _flash(kind: str, text: str) -> None:
    st.session_state["label_flash"] = st.session_state["label_flash"] + [(kind, text)]


def _fresh_canvas() -> None:
    """Drop the strokes: the next run shows a new canvas on the stored mask."""
    st.session_state["label_nonce"] += 1
    st.session_state["label_drawing"] = None


# -- callbacks (run before the page, so the canvas below already shows their result) -----------

def _on_pick() -> None:
    st.session_state["slice"] = st.session_state["label_slice_pick"]
    _fresh_canvas()


def _next_unlabeled(statuses: tuple[str, ...]) -> None:
    z, n = st.session_state["slice"], len(statuses)
    for step in range(1, n + 1):
        k = (z + step) % n
        if statuses[k] == "unlabeled":
            st.session_state["slice"] = k
            _fresh_canvas()
            return
    _flash("info", "Every slice has a mask.")


def _save(ws, dataset: str, z: int, window: cv.ZoomWindow, canvas_hw: tuple[int, int]) -> None:
    try:
        info = ws.dataset(dataset)
        base = ws.read_mask(dataset, z)
        mask = cv.apply_drawing(base, st.session_state["label_drawing"], info.n_classes, canvas_hw, window,
                                shape=info.shape[1:])
        status = "labeled" if base is None else "edited"
        version = ws.save_mask(dataset, z, mask, status=status)
    except ValueError as exc:
        _flash("error", str(exc))
        return
    _flash("success", f"Saved {info.slice_names[z]}: version {version} ({status}).")
    _fresh_canvas()


def _undo(ws, dataset: str, z: int) -> None:
    try:
        version = ws.undo_mask(dataset, z)
    except ValueError as exc:
        _flash("error", str(exc))
        return
    _flash("info", f"Undone: back to version {version}." if version else "Undone: the slice is unlabeled again.")
    _fresh_canvas()


def _from_model(ws, dataset: str, z: int) -> None:
    try:
        labels, source = model_suggestion(ws, dataset, z)
        version = ws.save_mask(dataset, z, labels, status="from-prediction")
    except ValueError as exc:
        _flash("warning", str(exc))
        return
    _flash("success", f"Started from the {source} (version {version}, from-prediction): correct it and Save.")
    _fresh_canvas()


# -- pictures ------------------------------------------------------------------------------------

# ``root`` and ``stamp`` (the slice's last change) are cache keys: new picture after every save or undo

@st.cache_data(max_entries=32, show_spinner=False)
def _background(root: str, dataset: str, z: int, stamp: float, window: cv.ZoomWindow,
                canvas_hw: tuple[int, int], alpha: float) -> Image.Image:
    """The canvas background: the shown region with the stored mask, at canvas size."""
    ws = workspace()
    return Image.fromarray(cv.background(ws.read_slice(dataset, z), ws.read_mask(dataset, z), window, canvas_hw,
                                         alpha))


@st.cache_data(max_entries=8, show_spinner=False)
def _overview(root: str, dataset: str, z: int, stamp: float, window: cv.ZoomWindow) -> np.ndarray:
    """The whole slice with the zoom window outlined."""
    ws = workspace()
    return cv.outline(overlay(ws.read_slice(dataset, z), ws.read_mask(dataset, z), 0.4), window)


# -- page ----------------------------------------------------------------------------------------

_init()
ws = workspace()
dataset = dataset_picker(ws)
st.title("Label")
for kind, text in st.session_state["label_flash"]:
    _FLASH[kind](text)
st.session_state["label_flash"] = []

if not dataset:
    st.info("No dataset yet: import one on the Data page.")
    st.stop()

with user_errors():
    info = ws.dataset(dataset)
    n, (height, width) = info.shape[0], info.shape[1:]
    if not 0 <= st.session_state["slice"] < n:
        st.session_state["slice"] = 0
    st.session_state["label_slice_pick"] = st.session_state["slice"]

    top = st.columns([4, 1.3, 2.5], vertical_alignment="bottom")
    top[0].selectbox("Slice", list(range(n)), key="label_slice_pick", on_change=_on_pick,
                     format_func=lambda k: f"{k}: {info.slice_names[k]} ({info.statuses[k]})")
    top[1].button("Next unlabeled", key="label_next", on_click=_next_unlabeled, args=(info.statuses,),
                  icon=":material/skip_next:")
    z = st.session_state["slice"]
    current = ws.slices(dataset)[z]
    top[2].markdown(f"**{current.name}**: {current.status}, version {current.version}")

    canvas_col, tools = st.columns([3, 1])
    with tools:
        tool = st.radio("Tool", TOOLS, key="label_tool", horizontal=False)
        k = 0
        if tool == "Eraser":
            st.caption("The eraser paints background.")
        else:
            if st.session_state.get("label_class", info.n_classes) >= info.n_classes:
                st.session_state["label_class"] = 1  # the first class that is not background
            k = st.selectbox("Class", list(range(info.n_classes)), key="label_class",
                             format_func=lambda c: info.class_names[c] + (" (erase)" if c == 0 else ""))
        r, g, b = cv.canvas_color(k)
        st.markdown(f"<span style='color:rgb({r},{g},{b});-webkit-text-stroke:1px #888'>&#9632;</span> "
                    f"painting **{info.class_names[k]}**", unsafe_allow_html=True)
        size = st.slider("Brush size (image pixels)", 1, 64, 8, key="label_brush",
                         disabled=tool == "Polygon fill")
        alpha = st.slider("Mask opacity", 0.0, 1.0, 0.4, 0.05, key="label_alpha")
        actions = st.container()  # filled below, once the zoom window is known
        zoom = st.select_slider("Zoom", ZOOMS, value=1, key="label_zoom", format_func=lambda f: f"{f}x")
        center = (height // 2, width // 2)
        if zoom > 1:
            for key, hi in (("label_cy", height - 1), ("label_cx", width - 1)):
                if st.session_state.get(key, hi + 1) > hi:  # unset, or from a larger dataset
                    st.session_state[key] = (hi + 1) // 2
            cy = st.slider("Window centre: row", 0, height - 1, key="label_cy")
            cx = st.slider("Window centre: column", 0, width - 1, key="label_cx")
            center = (cy, cx)
        window = cv.zoom_window((height, width), zoom, center)
        canvas_hw = cv.canvas_size(window)
        if zoom > 1:
            st.image(_overview(str(ws.root), dataset, z, current.updated, window),
                     caption=f"Rows {window.y0}-{window.y0 + window.height - 1}, "
                             f"columns {window.x0}-{window.x0 + window.width - 1}", width="stretch")

    with actions:
        st.button("Save", key="label_save", type="primary", icon=":material/save:", width="stretch",
                  on_click=_save, args=(ws, dataset, z, window, canvas_hw))
        st.button("Undo last save", key="label_undo", icon=":material/undo:", width="stretch",
                  on_click=_undo, args=(ws, dataset, z), disabled=not ws.can_undo(dataset, z))
        st.button("Clear strokes", key="label_clear", icon=":material/ink_eraser:", width="stretch",
                  on_click=_fresh_canvas)
        if current.status == "unlabeled":
            src = model_sources(ws, dataset)
            has_model = src["prediction_folder"] or src["checkpoint"] is not None
            st.button("Start from model prediction", key="label_from_model", icon=":material/auto_fix_high:",
                      width="stretch", on_click=_from_model, args=(ws, dataset, z), disabled=not has_model)
            if not has_model:
                st.caption("No model yet: train one on the Train page to start slices from its prediction.")

    with canvas_col:
        st.space("small")  # room for the canvas's floating toolbar
        bg = _background(str(ws.root), dataset, z, current.updated, window, canvas_hw, alpha)
        key = f"label_canvas_{dataset}_{z}_{st.session_state['label_nonce']}_{zoom}_{window.y0}_{window.x0}"
        st.session_state["label_canvas_key"] = key
        if st_canvas is None:
            st.warning(f"The drawing canvas cannot run here ({_CANVAS_ERROR}). The slice is shown read-only; "
                       "Save, Undo and Start from model prediction still work.")
            st.image(bg)
        else:
            polygon = tool == "Polygon fill"
            result = st_canvas(
                fill_color=cv.stroke_css(k, 0.35), stroke_color=cv.stroke_css(k, 0.6),
                stroke_width=cv.brush_width(1 if polygon else size, window, canvas_hw),
                background_image=bg, height=canvas_hw[0], width=canvas_hw[1],
                drawing_mode="polygon" if polygon else "freedraw", update_streamlit=True, key=key)
            st.session_state["label_drawing"] = result.json_data
        pending = cv.count_objects(st.session_state["label_drawing"])
        st.caption(("Polygon: click the corners, then the first corner again to close it. " if tool == "Polygon fill"
                    else "") + f"{pending} unsaved stroke(s). Changing the slice or the zoom window drops unsaved "
                   "strokes: Save first. The canvas toolbar undoes single strokes.")
        if pending:
            with st.expander("Preview: the mask Save will write", expanded=False):
                preview = cv.apply_drawing(ws.read_mask(dataset, z), st.session_state["label_drawing"],
                                           info.n_classes, canvas_hw, window, shape=(height, width))
                st.image(overlay(ws.read_slice(dataset, z), preview, alpha), width="stretch")
