"""Predictions: run a trained model over a dataset, then review where it is wrong and fix it.

UI only: prediction is :func:`core.predict.dataset.predict_dataset`, review is :mod:`core.workflow.review`,
pictures are :mod:`core.view.render` and charts :mod:`core.view.plots`.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.errors import SegDashError
from core.nn.checkpoint import read_checkpoint_info
from core.nn.fit import fit_warnings
from core.nn.metrics import slice_scores
from core.predict.config import PredictConfig
from core.predict.dataset import PredictionJob, prediction_jobs
from core.predict.probabilities import relabel, uncertainty_map
from core.predict.stored import GROUND_TRUTH_STATUSES, list_predictions, load_prediction, prob_path
from core.view import plots
from core.view.render import ERROR_COLORS, class_color, error_map, heatmap, overlay
from core.workflow import review
from core.workflow.export import PREDICTION_FORMATS, export_prediction, to_bytes
from core.workflow.ingest import import_dataset
from core.workflow.runs import CLASS_MEAN_DICE, FOREGROUND_DICE, NOT_SCORED, picker_runs, run_views
from pages._common import dataset_picker, flash, prepared_download, user_errors, workspace
from pages._split import prediction_parts_table

MODEBAR_PX = 32  # height of Plotly's toolbar (the mode bar), drawn over the top right of a figure


# -- cached review numbers: recomputed only when the prediction, threshold or masks change ------
@st.cache_data(show_spinner="Scoring the prediction against the masks ...", max_entries=16)
def _review(
    _ws,
    root: str,
    dataset: str,
    run_id: str,
    threshold: float | None,
    masks_version: str,
    statuses: tuple[str, ...],
    created: float,
) -> tuple[list[dict], list[dict], np.ndarray]:
    del root, masks_version, statuses, created  # cache key only: a new mask, status or prediction recomputes
    return (
        review.per_slice_scores(_ws, dataset, run_id, threshold),
        review.correction_queue(_ws, dataset, run_id, threshold),
        review.dataset_confusion(_ws, dataset, run_id, threshold),
    )


def _import_upload() -> None:
    """Button callback (runs before the page, so it may switch the sidebar's dataset)."""
    files, name = st.session_state.get("pred_upload"), st.session_state.get("pred_upload_name", "").strip()
    try:
        if not files:
            raise SegDashError("choose the stack's file(s) first")
        report = import_dataset(workspace(), name, files, source="uploaded on the Predictions page")
    except ValueError as exc:
        flash("error", str(exc))
        return
    st.session_state["dataset"] = report.dataset.name
    flash("success", f"Imported {report.dataset.name}: {report.dataset.shape[0]} slices. " + " ".join(report.notices))


def _select_queue_row(key: str) -> None:
    """Clicking a row of the correction queue opens that slice in the browser below."""
    rows = st.session_state[key].selection.rows
    order = st.session_state.get("pred_queue_z", [])
    if rows and rows[0] < len(order):
        st.session_state["pred_slice"] = order[rows[0]]


@st.cache_data(show_spinner=False, max_entries=32)
def _model_warnings(_ws, root: str, dataset: str, shape: tuple[int, ...], checkpoint: str, mtime: float) -> list[str]:
    """What does not fit between a run's checkpoint and the dataset (classes, training dataset,
    intensity window); ``root``, ``shape`` and ``mtime`` are cache key only."""
    del root, shape, mtime
    info = read_checkpoint_info(checkpoint)
    data = _ws.dataset(dataset)
    return fit_warnings(info, images=_ws.read_images(dataset), class_names=data.class_names, dataset=dataset)


def _or(value, default):
    """``value``, or ``default`` where an older summary did not record it (``None``)."""
    return default if value is None else value


def _eta(seconds: float | None) -> str:
    return "" if seconds is None else f", about {seconds:.0f} s left"


def _report(job: PredictionJob | None) -> None:
    """Once per finished prediction: say how it ended and open it for review."""
    if job is None or job.is_active():
        return
    snap = job.snapshot()
    token = f"{snap['dataset']}/{snap['run_id']}@{snap['started']}"
    if st.session_state.get("pred_reported") == token:
        return
    st.session_state["pred_reported"] = token
    result = snap["result"]
    if snap["state"] == "failed":
        st.error(f"Prediction failed: {snap['error']}")
        return
    if snap["state"] == "cancelled":
        if result.n_done:
            st.info(
                f"Cancelled after {result.n_done} of {result.n_total} slices: the predicted slices are kept "
                "and shown below.",
                icon=":material/cancel:",
            )
        else:
            st.info("Cancelled before the first slice: nothing was predicted.", icon=":material/cancel:")
    else:
        st.success(f"Predicted {result.n_done} slices on {result.device} in {result.seconds:.1f} s.")
    if result.n_done:
        st.session_state["pred_shown"] = snap["run_id"]  # review the prediction just made (widget not drawn yet)


def _downloads(ws, dataset: str, run_id: str) -> None:
    """The reviewed prediction's masks and probabilities as TIFFs for Fiji / napari (ImageJ
    hyperstacks, :func:`core.workflow.export.export_prediction`), prepared on request."""
    with st.expander("Download for Fiji / napari"):
        cols = st.columns(2)
        for col, (fmt, what) in zip(cols, (("tiff", "masks"), ("prob-tiff", "probabilities"))):
            if col.button(f"Prepare the {what} TIFF", key=f"pred_prepare_{fmt}", icon=":material/build:"):
                with user_errors(), st.spinner(f"Writing the {what} of {run_id} ..."):
                    data = to_bytes(export_prediction, ws, dataset, run_id, fmt)
                    name = f"{dataset}_{run_id}_{PREDICTION_FORMATS[fmt]}"
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


st.title("Predictions")
st.caption("Run a trained model over a dataset, see where it is wrong, and turn good predictions into masks.")
ws = workspace()
dataset = dataset_picker(ws)
if dataset is None:
    st.stop()
info = ws.dataset(dataset)

# -- 1. predict ---------------------------------------------------------------------------------
st.subheader("1. Predict")
runs, default_index = picker_runs(
    [v for v in run_views(ws, with_checkpoint=True) if v.checkpoint == v.best_checkpoint], dataset
)
with st.expander("Predict on a new stack (upload)"):
    st.file_uploader(
        "Image stack: TIFF, PNG/JPEG files or a ZIP",
        accept_multiple_files=True,
        type=["tif", "tiff", "png", "jpg", "jpeg", "bmp", "zip"],
        key="pred_upload",
    )
    st.text_input("Name of the new dataset", key="pred_upload_name", placeholder="e.g. new-stack-01")
    st.button(
        "Import",
        key="pred_import",
        on_click=_import_upload,
        help="Imports the stack as a dataset (as the Data page does) and selects it; then press Predict.",
    )
if not runs:
    st.info("No trained model yet: train one on the Train page (a run with a best checkpoint appears here).")
else:
    run_by_id = {v.run_id: v for v in runs}
    left, right = st.columns([3, 2])
    run_id = left.selectbox(
        "Model (run's best checkpoint)",
        list(run_by_id),
        index=default_index,
        key="pred_run",
        format_func=lambda rid: run_by_id[rid].label,
        help="Newest first: this dataset's runs, then other datasets' runs, then the live-loop rounds "
        "(Train on my strokes). Preselected: the best-scored finished run of this dataset.",
    )
    with right.popover("Options", width="stretch"):
        tta = st.checkbox("Test-time augmentation (4 flips, 4x slower)", key="pred_tta")
        dihedral = st.checkbox("... with all 8 flips and rotations (8x slower)", key="pred_dihedral", disabled=not tta)
        overlap = st.slider("Tile overlap", 0.0, 0.75, 0.25, 0.05, key="pred_overlap")
    left.caption(
        f"Predicts all {info.shape[0]} slices of **{dataset}** (the dataset in the sidebar). "
        "For big stacks use the command line: `python -m core predict --checkpoint BEST.pt "
        "--input STACK.tif --out MASKS.tif`."
    )
    chosen = run_by_id[run_id]
    ckpt_path = Path(chosen.best_checkpoint)
    if chosen.dataset != dataset:
        left.caption(f"Trained on **{chosen.dataset}**.")
    with user_errors():
        fit = _model_warnings(ws, str(ws.root), dataset, tuple(info.shape), str(ckpt_path), ckpt_path.stat().st_mtime)
        if fit:
            st.warning(
                f"This model may not fit **{dataset}**:\n\n" + "\n".join(f"- {w}" for w in fit),
                icon=":material/warning:",
            )
    if right.button("Predict", key="pred_predict", type="primary", width="stretch"):
        with user_errors():
            prediction_jobs(
                ws,
                dataset,
                start=PredictionJob(
                    ws, dataset, ckpt_path, PredictConfig(tta=tta, dihedral=dihedral, overlap=overlap), run_id=run_id
                ),
            )

job = prediction_jobs(ws, dataset)
_report(job)
predicting = job is not None and job.is_active()


@st.fragment(run_every=1.0 if predicting else None)
def _predict_progress() -> None:
    """Progress and the Cancel button while the dataset is predicted in the background."""
    current = prediction_jobs(ws, dataset)
    if current is None:
        return
    if not current.is_active():
        if predicting:
            st.rerun()  # it just ended: redraw the page once with the new prediction, and stop polling
        return
    snap = current.snapshot()
    total = max(1, int(snap["total"] or 0))
    text = (
        f"Predicted {snap['done']}/{snap['total']} slices{_eta(snap['eta_s'])}"
        if snap["total"]
        else "Loading the model ..."
    )
    if snap["cancel_requested"]:
        text = f"Cancelling ... after the slice being predicted ({snap['done']}/{snap['total']} done; they are kept)"
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.progress(min(1.0, snap["done"] / total), text=text)
    c2.button(
        "Cancel",
        key="pred_cancel",
        on_click=current.cancel,
        icon=":material/cancel:",
        width="stretch",
        disabled=snap["cancel_requested"],
        help="Stop after the slice being predicted; the finished slices are kept and can be reviewed.",
    )


_predict_progress()

# -- 2. review ----------------------------------------------------------------------------------
st.subheader("2. Review")
predictions = list_predictions(ws, dataset)
if not predictions:
    st.info(f"No prediction of {dataset} yet: choose a model above and press Predict.")
    st.stop()
if st.session_state.get("pred_shown") not in predictions:  # another dataset's, or deleted
    st.session_state.pop("pred_shown", None)
view = st.selectbox("Prediction to review", predictions, key="pred_shown")
_downloads(ws, dataset, view)
with user_errors():
    masks, probs, summary = load_prediction(ws, dataset, view)
    k = int(summary.n_classes or info.n_classes)
    threshold = None
    if k == 2 and probs is not None:
        thr = st.slider(
            "Threshold: a pixel is " + f"'{info.class_names[1]}' where its probability is above",
            0.0,
            1.0,
            float(summary.threshold),
            0.01,
            key="pred_threshold",
            help="Re-labels from the stored probabilities, without running the network again.",
        )
        threshold = None if abs(thr - float(summary.threshold)) < 1e-9 else float(thr)
    scores, queue, confusion = _review(
        ws,
        str(ws.root),
        dataset,
        view,
        threshold,
        ws.masks_version(dataset),
        info.statuses,
        float(summary.created),
    )
    names = tuple(summary.class_names or info.class_names)
    per_class, class_mean = review.class_dice(scores, k)

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    head = st.columns(min(k, 6) + 1)
    head[0].metric(
        CLASS_MEAN_DICE,
        fmt(class_mean),
        help="Per-class Dice averaged over the slices that have a mask of their own (labeled or "
        "edited; accepted predictions are not scored), then averaged over the classes.",
    )
    order = [1, 0] + list(range(2, k)) if k == 2 else list(range(k))  # two classes: the foreground first
    for col, c in zip(head[1:], order[:6]):
        label = f"{FOREGROUND_DICE} ('{names[c]}')" if k == 2 and c == 1 else f"Dice of '{names[c]}'"
        col.metric(label, fmt(per_class[c]), help=f"Dice of class {c} ('{names[c]}'), averaged over scored slices.")
    if k > 6:
        st.caption("Dice per class: " + ", ".join(f"{names[c]} {fmt(per_class[c])}" for c in range(k)))
    collapsed = review.collapse_warning(confusion, names)
    if collapsed:
        st.warning(f"Collapsed model: {collapsed}", icon=":material/report:")
    for w in summary.warnings:
        st.warning(f"When this prediction was made: {w}", icon=":material/warning:")
    m2, m3, m4 = st.columns(3)
    m2.metric("Slices scored", len(scores))
    m3.metric("Slices predicted", f"{_or(summary.n_done, masks.shape[0])}/{_or(summary.n_total, info.shape[0])}")
    m4.metric(
        "Device, time",
        f"{summary.device or '?'} · {summary.seconds:.0f} s",
        help="Where the network ran and how long predicting the dataset took.",
    )
    prediction_parts_table(summary)

    # -- slice browser --------------------------------------------------------------------------
    n_pred = int(masks.shape[0])
    if st.session_state.get("pred_slice", 0) >= n_pred:
        st.session_state["pred_slice"] = 0
    z = st.slider("Slice", 0, n_pred - 1, key="pred_slice") if n_pred > 1 else 0
    image = ws.read_slice(dataset, z)
    mask = ws.read_mask(dataset, z)
    truth = ws.read_truth(dataset, z)  # what a person drew or imported: not pixels accepted from a model
    pred = relabel(prob_path(ws, dataset, view), threshold, z=z) if threshold is not None else np.asarray(masks[z])
    scale = float(summary.prob_scale)
    unc = None
    if probs is not None:
        p = np.asarray(probs[z], np.float32) / scale
        unc = uncertainty_map(p[None] if p.ndim == 2 else p)
    status = info.statuses[z]
    scored = truth is not None and status in GROUND_TRUTH_STATUSES
    about = {
        "from-prediction": " · its mask is an accepted prediction: not scored (edit it on the Label page to "
        "make it ground truth)",
        "unlabeled": " · no mask: unlabeled slice, not scored",
    }.get(status, "")
    st.markdown(f"**{info.slice_names[z]}** (z = {z}) · status **{status}**{about}")
    panels = [("Image", overlay(image, None))]
    if truth is not None:
        panels.append(("Mask (ground truth)" if scored else "Mask (accepted prediction)", overlay(image, mask)))
    panels.append(("Prediction", overlay(image, pred)))
    if scored:
        panels.append(("Error map", error_map(image, pred, truth)))  # counts drawn or imported pixels
    if unc is not None:
        panels.append(("Uncertainty (bright = unsure)", heatmap(unc, image)))
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
    info_cols = st.columns(3)
    if scored:
        s = slice_scores(pred, truth, k)
        info_cols[0].metric(
            "Wrong pixels",
            f"{100 * s['pixel_error']:.2f} %",
            help="Share of pixels whose predicted class differs from the mask.",
        )
        info_cols[1].metric(
            "Dice of this slice",
            fmt(s["dice_fg"] if k == 2 else s["mean_dice"]),
            help="Foreground Dice for two classes, the class mean otherwise.",
        )
    if unc is not None:
        info_cols[2].metric("Mean uncertainty", f"{float(unc.mean()):.3f}")
    st.markdown(_legend(info.class_names), unsafe_allow_html=True)

    b1, b2, _ = st.columns([1, 1, 2])
    if b1.button(
        "Accept as mask",
        key="pred_accept",
        type="primary",
        help="Save this prediction (at the current threshold) as the slice's mask, status "
        "'from-prediction'. Earlier versions are kept (undo on the Label page).",
    ):
        version = review.accept_prediction(ws, dataset, view, z, threshold=threshold)
        flash("toast", f"Saved the prediction as mask version {version} of {info.slice_names[z]}.")
        st.rerun()
    if b2.button(
        "Correct in Label page",
        key="pred_to_label",
        help="Open this slice on the Label page; there 'start from model prediction' loads it.",
    ):
        st.session_state["slice"] = z
        st.switch_page("pages/label.py")

    # -- tables and charts ----------------------------------------------------------------------
    tab_queue, tab_scores, tab_conf = st.tabs(["Correction queue", "Per-slice scores", "Confusion matrix"])
    with tab_queue:
        st.caption(
            "What to look at next: unlabeled slices where the model is least sure first (label these "
            "next), then labeled slices with the lowest Dice. Click a row to open the slice above."
        )
        st.session_state["pred_queue_z"] = [r["z"] for r in queue]
        # a new key whenever the order or the slice shown changes: a stale selection (a row index into an
        # older order) never marks another slice than the one shown; the shown slice is marked instead
        digest = hashlib.sha1(repr((view, [r["z"] for r in queue], z)).encode()).hexdigest()[:10]
        queue_key = f"pred_queue_{digest}"
        dice_col = FOREGROUND_DICE if k == 2 else CLASS_MEAN_DICE  # a slice's score, as review scores it
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
        styled = pd.DataFrame(
            table, columns=["shown", "z", "slice", "status", "uncertainty", dice_col, "why"]
        ).style.apply(lambda row: [shown_style if row["shown"] else ""] * len(row), axis=1)
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
    with tab_scores:
        if scores:
            st.caption(
                "Labeled slices, worst Dice first (foreground Dice/IoU for two classes, mean over classes otherwise)."
            )
            st.dataframe(
                plots.slice_scores_rows(scores, keys=("dice", "iou", "pixel_error", "uncertainty")),
                key="pred_scores",
                hide_index=True,
                width="stretch",
                height=320,
            )
            st.plotly_chart(plots.slice_scores_figure(scores, "dice"), key="pred_scores_chart")
        else:
            st.info("No labeled slice to score against.")
    with tab_conf:
        if confusion.sum():
            st.caption("Pixels of all labeled slices: each row (true class) sums to 100 %.")
            st.plotly_chart(plots.confusion_figure(confusion, info.class_names), key="pred_confusion")
        else:
            st.info("No labeled slice to build a confusion matrix from.")
