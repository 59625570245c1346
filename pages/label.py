"""Label: paint a slice's mask with brush, eraser and polygon fill; save, undo, redo, restore.

UI only: the page binds the session model :class:`core.view.label_session.LabelSession` (unsaved
strokes of every slice, undo order, what a save says) to widgets and to SegDash's own canvas
(``pages/_label_canvas.py``). Strokes are drawn and kept in the browser, shown at once, and sent to the
server in batches (with a shortcut, before a click elsewhere on the page, and as a draft a few seconds
after the last stroke; kept in the browser's storage across a reload); :mod:`core.view.canvas` turns
them into a mask at full image resolution, whatever the zoom. Save applies them to the newest version
of the mask inside one transaction (:meth:`core.store.workspace.Workspace.edit_mask`), so a version
someone saved meanwhile keeps their work. The canvas is a fragment (:func:`canvas_part`): a draft or a
Ctrl+S reruns it alone, and the whole page follows once the saved tint is on screen.
Every saved version stays in the slice's history, where it
can be viewed and restored (as a new version); Undo removes unsaved strokes first, then walks that
history.
"""

from __future__ import annotations

import hashlib
import time

import streamlit as st

from core.data.masks import UNLABELED
from core.view import canvas as cv
from core.view.label_session import Tools
from core.workflow.assist import model_sources
from core.workflow.labeling import source_words, status_words
from pages import _label_actions as act
from pages import _label_pictures as pic
from pages._common import dataset_picker, user_errors, workspace
from pages._keys import label_keys
from pages._label_canvas import held, label_canvas, label_relay, picture_url
from pages._label_live import live_panel, shown_prediction
from pages._label_state import KEYS, MODES, SCRIBBLES, TOOLS, ZOOMS, hint, keep, put, scribbling, sync
from pages._label_state import init as init_label_state

DEFAULT_WIDTH = 900  # the canvas size the server assumes for a drawing without a frame (AppTest)
MAX_HEIGHT = 1024
_STATUS = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error}
# the page's own compact frame: less padding above the first row, so the slice fits the window
_CSS = "<style>.stMainBlockContainer, .block-container {padding-top: 3rem; padding-bottom: 2rem}</style>"


@st.fragment(key="label_canvas_part")
def canvas_part(ws, dataset: str, info, z: int, window: cv.ZoomWindow, alpha: float, pred_id: str, pred_labels):
    """The canvas and its caption, a fragment: a draft of strokes, Ctrl+S, Ctrl+Z and Ctrl+Y rerun
    only this (:func:`pages._label_actions.on_ui`), so a save's tint is sent without the rest of the
    page; the canvas then asks for the whole page (``refresh``) once it shows the tint."""
    if st.session_state.get("label_whole"):  # a shortcut that changes more than the canvas
        st.session_state["label_whole"] = False
        st.rerun()
    height, width = info.shape[1:]
    current = ws.slices(dataset)[z]  # anew: a save in this fragment's run shows at once
    sess = sync()
    pending, others = sess.count(dataset, z), [s for s in sess.slices(dataset) if s != z]
    scope = hashlib.sha1(str(ws.root).encode()).hexdigest()[:12]
    picture = f"{scope}/{dataset}/{z}/{info.slice_names[z]}/{info.shape}/{window}/{pred_id}"
    tint = f"{scope}/{dataset}/{z}/{current.updated}/{window}/{alpha}"
    image_id, tint_id = (hashlib.sha1(t.encode()).hexdigest()[:16] for t in (picture, tint))
    has = held()  # the pictures the canvas holds already: not sent again (the grey image once a slice)
    polygon = sess.tools.tool == "Polygon fill"
    st.session_state["label_ctx"] = {
        "dataset": dataset,
        "z": z,
        "n": info.shape[0],
        "n_classes": info.n_classes,
        "shape": (height, width),
        "window": window,
        "first": 0 if scribbling() else 1,
        "version": current.version or 0,
    }
    data = {
        "scope": scope,
        "dataset": dataset,
        "key": f"{dataset}/{z}",
        "version": current.version or 0,
        "window": [window.y0, window.x0, window.height, window.width],
        "shape": [height, width],
        "image": ""
        if image_id in has
        else picture_url(
            pic.background_picture(str(ws.root), dataset, z, info.shape, window, pred_id, pred_labels), "image"
        ),
        "image_id": image_id,
        "tint": ""
        if tint_id in has
        else picture_url(pic.tint_picture(str(ws.root), dataset, z, current.updated, window, alpha), "tint"),
        "tint_id": tint_id,
        "stamp": str(current.updated),
        "tool": sess.tools.tool,
        "color": cv.stroke_css(sess.tools.k, 0.9),
        "fill": cv.stroke_css(sess.tools.k, 0.5),
        "brush": 1 if polygon else sess.tools.brush,
        "keys": KEYS,
        "gone": sess.gone_ids(),
        "refresh": st.session_state.get("label_refresh"),  # set by a save or undo in a fragment-only run
    }
    clock = st.session_state.get("label_clock")
    if isinstance(clock, dict):  # Ctrl+S's way through the server, for the browser test's timings
        clock.setdefault("sent", time.time())
        data["clock"] = clock
    label_canvas(data, on_ui=act.on_ui)
    st.caption(
        f"**{current.name}**: {status_words(current.status, current.coverage, current.labeled)}, "
        f"version {current.version or '-'}. "
        + ("Polygon: click the corners, then the first corner again to close it (Esc drops it). " if polygon else "")
        + f"{pending} unsaved stroke(s) on this slice"
        + (f", unsaved strokes on slice(s) {', '.join(map(str, others))}" if others else "")
        + " (as the server last heard; the canvas keeps every stroke until it is saved). "
        + f"Showing rows {window.y0}-{window.y0 + window.height - 1}, columns {window.x0}-"
        f"{window.x0 + window.width - 1}. Pan: arrow keys, or drag the box on the overview."
    )


# -- page ----------------------------------------------------------------------------------------

init_label_state()
st.session_state["label_refresh"] = None  # a full run: nothing for the canvas to ask for
st.session_state["label_whole"] = False
ws = workspace()
dataset = dataset_picker(ws)
st.markdown(_CSS, unsafe_allow_html=True)

if not dataset:
    st.title("Label")
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
    canvas_hw = cv.fit_canvas(window, DEFAULT_WIDTH, MAX_HEIGHT)
    st.session_state["label_canvas_hw"] = canvas_hw
    sess = sync()
    pending = sess.count(dataset, z)
    pending_slices = sess.slices(dataset)

    # -- tools, in the sidebar -------------------------------------------------------------------
    with st.sidebar:
        st.subheader("Label", anchor=False)
        status = st.session_state["label_status"]
        if status:
            _STATUS[status[0]](status[1])
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
        tool = st.radio(
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
        k_pick = st.selectbox(
            f"Class (next: {hint('class')})",
            list(range(first, info.n_classes)),
            key="label_class",
            format_func=lambda c: info.class_names[c],
            disabled=tool == "Eraser",
        )
        k = (UNLABELED if scribble else 0) if tool == "Eraser" else k_pick
        size = st.slider(
            f"Brush size, image px ({hint('smaller')} {hint('bigger')})",
            1,
            64,
            key="label_brush",
            on_change=keep,
            args=("label_brush",),
            disabled=tool == "Polygon fill",
        )
        zoom = st.select_slider(
            f"Zoom ({hint('zoom_out')} {hint('zoom_in')}; {hint('fit')}: 1:1 or fit)",
            ZOOMS,
            key="label_zoom",
            on_change=keep,
            args=("label_zoom",),
            format_func=lambda f: f"{f}x",
        )
        show_mask = st.toggle(
            f"Saved mask ({hint('mask')})", key="label_show_mask", on_change=keep, args=("label_show_mask",)
        )
        st.slider("Mask opacity", 0.0, 1.0, step=0.05, key="label_alpha", on_change=keep, args=("label_alpha",))
        st.markdown(f"Painting: {pic.chips(info.class_names, k, scribble)}", unsafe_allow_html=True)
        label_relay(act.on_ui)  # the canvas's shortcuts that rerun the whole page come this way

    sess.tools = Tools(tool, k, size)  # what the next stroke paints, as the session model holds it

    # -- one compact bar: slice, navigation, save / undo / redo / clear ----------------------------
    top = st.columns([2.1, 1, 1, 1.45, 1.35, 1.35, 1.35, 0.9], vertical_alignment="bottom", gap="small")
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
    buttons = (
        (top[1], f"Prev ({hint('previous')})", "label_prev", "arrow_back", act.step, (n, -1), z == 0),
        (top[2], f"Next ({hint('next')})", "label_next_slice", "arrow_forward", act.step, (n, 1), z == n - 1),
        (top[3], "Next unlabeled", "label_next", "skip_next", act.to_next_unlabeled, (info.statuses,), False),
        (top[4], f"Save ({hint('save')})", "label_save", "save", act.save, (ws, dataset, z), False),
        (
            top[5],
            f"Undo ({hint('undo')})",
            "label_undo",
            "undo",
            act.undo,
            (ws, dataset, z),
            not pending and not ws.can_undo(dataset, z),
        ),
        (
            top[6],
            f"Redo ({hint('redo').split(' / ')[0]})",
            "label_redo",
            "redo",
            act.redo,
            (ws, dataset, z),
            not ws.can_redo(dataset, z),
        ),
        (top[7], "Clear", "label_clear", "ink_eraser", act.clear, (dataset, z), not pending),
    )
    for col, label, key_, icon, on_click, args, disabled in buttons:
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

    # -- canvas ------------------------------------------------------------------------------------
    pred = shown_prediction(ws, dataset, z)
    pred_id, pred_labels = pred if st.session_state.get("label_show_pred", True) else ("", None)
    alpha = st.session_state["label_alpha"] if show_mask else 0.0
    canvas_part(ws, dataset, info, z, window, alpha, pred_id, pred_labels)
    if current.status == "unlabeled":
        src = model_sources(ws, dataset)
        has_model = src["prediction_folder"] or src["checkpoint"] is not None
        st.button(
            "Start from model prediction",
            key="label_from_model",
            icon=":material/auto_fix_high:",
            on_click=act.from_model,
            args=(ws, dataset, z, current.version),
            disabled=not has_model,
        )
        if not has_model:
            st.caption("No model yet: train one on the Train page to start slices from its prediction.")
    live_panel(ws, dataset, z)

    # -- overview, history ----------------------------------------------------------------------
    left, right = st.columns([1, 1.4])
    with left:
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
