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

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.data.masks import UNLABELED
from core.view import canvas as cv
from core.workflow.assist import model_sources
from core.workflow.labeling import source_words, status_words
from pages import _label_actions as act
from pages import _label_pictures as pic
from pages._common import dataset_picker, user_errors, workspace
from pages._keys import label_keys, value
from pages._label_live import live_panel, shown_prediction
from pages._label_state import KEYS, KEYS_WIDGET, MODES, SCRIBBLES, TOOLS, ZOOMS, fold, hint, keep, put, strokes
from pages._label_state import init as init_label_state

try:  # the component registers itself with the running Streamlit; it cannot load without one
    from streamlit_drawable_canvas import st_canvas

    _CANVAS_ERROR = None
except (ImportError, StreamlitAPIException) as exc:
    st_canvas, _CANVAS_ERROR = None, exc

DEFAULT_WIDTH = 900  # canvas width before the browser has told the column's width (and under AppTest)
MAX_HEIGHT = 1024
_STATUS = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}


def _init() -> None:
    init_label_state()


def _canvas_key(dataset: str, z: int, zoom: int, window: cv.ZoomWindow, canvas_hw: tuple[int, int]) -> str:
    """The canvas widget's key: a new canvas for another slice, zoom, pan, width, or after a fold."""
    return (
        f"label_canvas_{dataset}_{z}_{st.session_state['label_nonce']}_{zoom}_{window.y0}_{window.x0}_"
        f"{canvas_hw[0]}x{canvas_hw[1]}"
    )


# -- page ----------------------------------------------------------------------------------------

_init()
ws = workspace()
dataset = dataset_picker(ws)
st.title("Label")
# first on the page and always there, so it stays mounted (a key pressed while it re-mounts would be
# lost); it measures the page's width, which the canvas may use whole
label_keys(KEYS, key=KEYS_WIDGET, measure=True, on_action=act.on_key)

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
        put("label_zoom", 1)
    zoom = st.session_state["label_zoom"]
    center = (height // 2, width // 2)
    if zoom > 1:
        for key, hi in (("label_cy", height - 1), ("label_cx", width - 1)):
            if not isinstance(st.session_state.get(key), int) or st.session_state[key] > hi:
                st.session_state[key] = (hi + 1) // 2  # unset, or from a larger dataset
        center = (st.session_state["label_cy"], st.session_state["label_cx"])
    window = cv.zoom_window((height, width), zoom, center)
    col_w = value(KEYS_WIDGET, "width") or DEFAULT_WIDTH
    canvas_hw = cv.fit_canvas(window, int(col_w), MAX_HEIGHT)
    st.session_state["label_canvas_hw"] = canvas_hw
    key = _canvas_key(dataset, z, zoom, window, canvas_hw)
    live = st.session_state["label_live"]
    if live and live["key"] != key:  # another slice, dataset, zoom, pan or width: keep the strokes
        fold()
        key = _canvas_key(dataset, z, zoom, window, canvas_hw)
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
        on_change=act.on_pick,
        format_func=lambda k: (
            f"{k}: {info.slice_names[k]} ({status_words(info.statuses[k], info.coverage[k])})"
            + (" - unsaved strokes" if k in pending_slices else "")
        ),
    )
    top[1].button(f"Previous ({hint('previous')})", key="label_prev", on_click=act.step, args=(n, -1), width="stretch")
    top[2].button(f"Next ({hint('next')})", key="label_next_slice", on_click=act.step, args=(n, 1), width="stretch")
    top[3].button(
        "Next unlabeled",
        key="label_next",
        on_click=act.to_next_unlabeled,
        args=(info.statuses,),
        icon=":material/skip_next:",
        width="stretch",
    )
    top[4].markdown(
        f"**{current.name}**: {status_words(current.status, current.coverage, current.labeled)}, "
        f"version {current.version or '-'}"
    )

    # -- tools ---------------------------------------------------------------------------------
    scribble = (
        st.radio(
            "Labels",
            MODES,
            key="label_mode",
            horizontal=True,
            help="Complete mask: every pixel gets a class, the eraser paints background. Scribbles: strokes "
            "label only the pixels drawn, the rest stays not labeled (training ignores it), the eraser "
            "returns pixels to not labeled.",
        )
        == SCRIBBLES
    )
    first = 0 if scribble else 1  # scribbles label background too; in a complete mask it is the eraser
    bar = st.columns([2.2, 2.2, 1.6, 1.6, 1.4], vertical_alignment="bottom")
    tool = bar[0].radio(
        "Tool",
        TOOLS,
        key="label_tool",
        horizontal=True,
        on_change=keep,
        args=("label_tool",),
        format_func=lambda t: f"{t} ({hint(t)})",
    )
    k_saved = st.session_state.get("label_class")
    if not isinstance(k_saved, int) or not first <= k_saved < info.n_classes:
        st.session_state["label_class"] = 1  # the first class that is not background
    k_pick = bar[1].selectbox(
        f"Class (next: {hint('class')})",
        list(range(first, info.n_classes)),
        key="label_class",
        format_func=lambda c: info.class_names[c],
        disabled=tool == "Eraser",
    )
    k = (UNLABELED if scribble else 0) if tool == "Eraser" else k_pick
    size = bar[2].slider(
        f"Brush size, image px ({hint('smaller')} {hint('bigger')})",
        1,
        64,
        key="label_brush",
        on_change=keep,
        args=("label_brush",),
        disabled=tool == "Polygon fill",
    )
    zoom = bar[3].select_slider(
        f"Zoom ({hint('zoom_out')} {hint('zoom_in')})",
        ZOOMS,
        key="label_zoom",
        on_change=keep,
        args=("label_zoom",),
        format_func=lambda f: f"{f}x",
    )
    show_mask = bar[4].toggle(
        f"Saved mask ({hint('mask')})", key="label_show_mask", on_change=keep, args=("label_show_mask",)
    )
    st.markdown(f"Painting: {pic.chips(info.class_names, k, scribble)}", unsafe_allow_html=True)

    paint, base, pending = strokes(dataset, z)

    acts = st.columns(5)
    for col, (label, key_, icon, on_click, args, disabled) in zip(
        acts,
        (
            (f"Save ({hint('save')})", "label_save", "save", act.save, (ws, dataset, z), False),
            (f"Undo ({hint('undo')})", "label_undo", "undo", act.undo, (ws, dataset, z), not ws.can_undo(dataset, z)),
            (f"Redo ({hint('redo')})", "label_redo", "redo", act.redo, (ws, dataset, z), not ws.can_redo(dataset, z)),
            ("Clear strokes", "label_clear", "ink_eraser", act.clear, (dataset, z), not pending),
        ),
    ):
        col.button(
            label,
            key=key_,
            type="primary" if key_ == "label_save" else "secondary",
            icon=f":material/{icon}:",
            width="stretch",
            on_click=on_click,
            args=args,
            disabled=disabled,
        )
    if current.status == "unlabeled":
        src = model_sources(ws, dataset)
        has_model = src["prediction_folder"] or src["checkpoint"] is not None
        acts[4].button(
            "Start from model prediction",
            key="label_from_model",
            icon=":material/auto_fix_high:",
            width="stretch",
            on_click=act.from_model,
            args=(ws, dataset, z, current.version),
            disabled=not has_model,
        )
        if not has_model:
            st.caption("No model yet: train one on the Train page to start slices from its prediction.")

    live_panel(ws, dataset, z)
    pred = shown_prediction(ws, dataset, z)

    # -- canvas ------------------------------------------------------------------------------------
    entry = st.session_state["label_pending"].get((dataset, z))
    bg = pic.background(
        str(ws.root),
        dataset,
        z,
        current.updated,
        window,
        canvas_hw,
        st.session_state["label_alpha"] if show_mask else 0.0,
        0 if entry is None else entry["id"],
        None if entry is None else entry["paint"],
        *(pred if st.session_state.get("label_show_pred", True) else ("", None)),
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
        paint, base, pending = strokes(dataset, z)
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
        "first": first,
    }

    # -- overview, history ----------------------------------------------------------------------
    left, right = st.columns([1, 1.4])
    with left:
        st.slider("Mask opacity", 0.0, 1.0, step=0.05, key="label_alpha", on_change=keep, args=("label_alpha",))
        if zoom > 1:
            st.markdown("**Overview** (drag the box to pan)")
            label_keys(
                {},
                key="label_map",
                on_pan=lambda: act.on_pan((height, width)),
                overview={
                    "src": pic.overview(str(ws.root), dataset, z, current.updated, 480),
                    "shape": [height, width],
                    "window": [window.y0, window.x0, window.height, window.width],
                },
            )
            st.slider("Window centre: row", 0, height - 1, key="label_cy")
            st.slider("Window centre: column", 0, width - 1, key="label_cx")
        if st.toggle("Where the labels came from", key="label_show_prov"):
            shown_prov = pic.provenance_picture(str(ws.root), dataset, z, current.updated)
            if shown_prov is None:
                st.caption("No mask on this slice yet.")
            else:
                st.image(shown_prov[0], caption=shown_prov[1], width="stretch")
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
                        "saved": pic.when(v.created),
                        "source": source_words(v.source),
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
                pic.version_picture(str(ws.root), dataset, z, shown),
                width="stretch",
                caption=f"Version {shown} over the image",
            )
            st.button(
                f"Restore version {shown}",
                key="label_restore",
                icon=":material/history:",
                on_click=act.restore,
                args=(ws, dataset, z, view_key),
                disabled=shown == current.version,
                help="Adds a new version with this content; every other version stays in the history.",
            )
