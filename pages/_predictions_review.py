"""The Predictions page's review pictures and tables: the slice's panels and metrics, the correction
queue, the per-slice scores and the confusion matrix. UI only (the page's helper, not a page); what
is scored and shown is decided in :mod:`core.workflow.predictions_view` and :mod:`core.workflow.review`."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.view import plots
from core.view.render import ERROR_COLORS, class_color, error_map, heatmap, overlay
from core.workflow.export import PREDICTION_FORMATS, export_prediction, to_bytes
from core.workflow.predictions_view import SliceReview
from core.workflow.runs import CLASS_MEAN_DICE, FOREGROUND_DICE, NOT_SCORED
from pages._common import prepared_download, user_errors

__all__ = ["confusion_tab", "downloads", "fmt", "queue_tab", "scores_tab", "slice_metrics", "slice_panels"]

MODEBAR_PX = 32  # height of Plotly's toolbar (the mode bar), drawn over the top right of a figure


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def downloads(ws: Any, dataset: str, run_id: str) -> None:
    """The reviewed prediction's masks and probabilities as TIFFs for Fiji / napari (ImageJ
    hyperstacks, :func:`core.workflow.export.export_prediction`), prepared on request."""
    with st.expander("Download for Fiji / napari"):
        cols = st.columns(2)
        for col, (fmt_, what) in zip(cols, (("tiff", "masks"), ("prob-tiff", "probabilities"))):
            if col.button(f"Prepare the {what} TIFF", key=f"pred_prepare_{fmt_}", icon=":material/build:"):
                with user_errors(), st.spinner(f"Writing the {what} of {run_id} ..."):
                    data = to_bytes(export_prediction, ws, dataset, run_id, fmt_)
                    name = f"{dataset}_{run_id}_{PREDICTION_FORMATS[fmt_]}"
                    st.session_state["pred_download"] = {"for": (dataset, run_id), "data": data, "file_name": name}
        ready = st.session_state.get("pred_download")
        if ready and ready["for"] == (dataset, run_id):
            prepared_download({**ready, "mime": "image/tiff"}, "pred_download_button")


def _badge(text: str, rgb: tuple[int, int, int]) -> str:
    return (
        f"<span style='background:rgb{tuple(rgb)};color:black;padding:1px 6px;border-radius:4px;"
        f"margin-right:6px'>{text}</span>"
    )


def _legend(class_names: tuple[str, ...]) -> str:
    """Class colours of the overlays and the error colours of :func:`core.view.render.error_map`."""
    classes = f"{class_names[0]} untinted " + "".join(
        _badge(n, class_color(k)) for k, n in enumerate(class_names) if k > 0
    )
    errors = "".join(
        _badge(name, rgb) for name, rgb in ERROR_COLORS.items() if len(class_names) > 2 or name != "wrong class"
    )  # two classes: every error is FP or FN
    return f"Classes: {classes} &nbsp; Errors: {errors}<span style='color:gray'>correct pixels: plain image</span>"


def slice_panels(sv: SliceReview) -> None:
    """The slice's pictures side by side (zoomed and panned together)."""
    image = sv.image
    panels = [("Image", overlay(image, None))]
    if sv.truth is not None:
        panels.append(("Mask (ground truth)" if sv.scored else "Mask (accepted prediction)", overlay(image, sv.mask)))
    panels.append(("Prediction", overlay(image, sv.pred)))
    if sv.scored:
        panels.append(("Error map", error_map(image, sv.pred, sv.truth)))  # counts drawn or imported pixels
    if sv.uncertainty is not None:
        panels.append(("Uncertainty (bright = unsure)", heatmap(sv.uncertainty, image)))
    large = st.toggle(
        "Large view",
        key="pred_large",
        help="Two pictures per row, big. In either view the pictures zoom and pan together: drag a "
        "box to zoom, double-click to reset.",
    )
    h, w = image.shape[-2:]
    per_row = 2 if large else len(panels)
    panel_px = int(min(560 if large else 300, (1000 / per_row) * h / w))  # about the width a picture gets
    views = plots.linked_images(panels, cols=per_row, panel_px=panel_px)
    # a band above the titles for Plotly's toolbar, which otherwise covers the last panel's title
    views.update_layout(margin=dict(t=views.layout.margin.t + MODEBAR_PX), height=views.layout.height + MODEBAR_PX)
    st.plotly_chart(
        views,
        key="pred_views",
        config={
            "displaylogo": False,
            "scrollZoom": True,
            "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"],
        },
    )


def slice_metrics(sv: SliceReview, class_names: tuple[str, ...]) -> None:
    """The slice's scores (from the review's one scoring pass), its mean uncertainty, the legend."""
    info_cols = st.columns(3)
    if sv.score is not None:
        info_cols[0].metric(
            "Wrong pixels",
            f"{100 * sv.score['pixel_error']:.2f} %",
            help="Share of pixels whose predicted class differs from the mask.",
        )
        info_cols[1].metric(
            f"{FOREGROUND_DICE if len(class_names) == 2 else CLASS_MEAN_DICE} of this slice",
            fmt(sv.score["dice"]),
            help="Foreground Dice for two classes, the class mean otherwise.",
        )
    if sv.uncertainty is not None:
        info_cols[2].metric("Mean uncertainty", f"{float(sv.uncertainty.mean()):.3f}")
    st.markdown(_legend(class_names), unsafe_allow_html=True)


def _select_queue_row(key: str) -> None:
    """Clicking a row of the correction queue opens that slice in the browser above."""
    rows = st.session_state[key].selection.rows
    order = st.session_state.get("pred_queue_z", [])
    if rows and rows[0] < len(order):
        st.session_state["pred_slice"] = order[rows[0]]


def queue_tab(queue: list[dict[str, Any]], run_id: str, z: int, n_classes: int) -> None:
    """The correction queue, the slice shown marked; a click on a row opens that slice."""
    st.caption(
        "What to look at next: unlabeled slices where the model is least sure first (label these "
        "next), then labeled slices with the lowest Dice. Click a row to open the slice above."
    )
    st.session_state["pred_queue_z"] = [r["z"] for r in queue]
    # a new key whenever the order or the slice shown changes: a stale selection (a row index into an
    # older order) never marks another slice than the one shown; the shown slice is marked instead
    digest = hashlib.sha1(repr((run_id, [r["z"] for r in queue], z)).encode()).hexdigest()[:10]
    queue_key = f"pred_queue_{digest}"
    dice_col = FOREGROUND_DICE if n_classes == 2 else CLASS_MEAN_DICE  # a slice's score, as review scores it
    table = [
        {
            "shown": "▶" if r["z"] == z else "",
            "z": r["z"],
            "slice": r["name"],
            "status": r["status"],
            "uncertainty": round(r["uncertainty"], 3),
            dice_col: NOT_SCORED if r["dice"] is None else f"{r['dice']:.3f}",
            "why": r["reason"],
        }
        for r in queue
    ]
    shown_style = "background-color: #fff3c4; font-weight: 600"
    styled = pd.DataFrame(table, columns=["shown", "z", "slice", "status", "uncertainty", dice_col, "why"]).style.apply(
        lambda row: [shown_style if row["shown"] else ""] * len(row), axis=1
    )
    st.dataframe(
        styled,
        column_config={
            "shown": st.column_config.TextColumn("", width=30, help="the slice shown above"),
            "uncertainty": st.column_config.NumberColumn(format="%.3f"),
        },
        key=queue_key,
        on_select=functools.partial(_select_queue_row, queue_key),
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=320,
    )


def scores_tab(scores: list[dict[str, Any]]) -> None:
    if not scores:
        st.info("No labeled slice to score against.")
        return
    st.caption("Labeled slices, worst Dice first (foreground Dice/IoU for two classes, mean over classes otherwise).")
    rows = plots.slice_scores_rows(scores, keys=("dice", "iou", "pixel_error", "uncertainty"))
    st.dataframe(
        [{k: NOT_SCORED if v is None else v for k, v in r.items()} for r in rows],  # never a bare None
        key="pred_scores",
        hide_index=True,
        width="stretch",
        height=320,
    )
    st.plotly_chart(plots.slice_scores_figure(scores, "dice"), key="pred_scores_chart")


def confusion_tab(confusion: np.ndarray, class_names: tuple[str, ...]) -> None:
    if confusion.sum():
        st.caption("Pixels of all labeled slices: each row (true class) sums to 100 %.")
        st.plotly_chart(plots.confusion_figure(confusion, class_names), key="pred_confusion")
    else:
        st.info("No labeled slice to build a confusion matrix from.")
