"""Predictions: run a trained model over a dataset, then review where it is wrong and fix it.

UI only: prediction is :func:`core.predict.dataset.predict_dataset`; review (what is scored, at which
threshold, the slice's labels and uncertainty) is :mod:`core.workflow.review` and
:mod:`core.workflow.predictions_view`; the review's pictures and tables are ``pages/_predictions_review.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import SegDashError
from core.nn.checkpoint import read_checkpoint_info
from core.nn.fit import fit_warnings
from core.predict.config import PredictConfig
from core.predict.dataset import PredictionJob, prediction_jobs
from core.predict.stored import list_predictions, load_prediction
from core.workflow import review
from core.workflow.ingest import import_dataset
from core.workflow.predictions_view import adjustable_threshold, headline_classes, slice_review, threshold_override
from core.workflow.runs import CLASS_MEAN_DICE, FOREGROUND_DICE, picker_runs, run_labels, run_views
from pages._common import dataset_picker, flash, user_errors, workspace
from pages._predictions_review import (
    confusion_tab,
    downloads,
    fmt,
    queue_tab,
    scores_tab,
    slice_metrics,
    slice_panels,
)
from pages._split import prediction_parts_table


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
) -> review.PredictionReview:
    """Scores, queue and confusion from one pass: each ground-truth slice is scored once."""
    del root, masks_version, statuses, created  # cache key only: a new mask, status or prediction recomputes
    return review.review_prediction(_ws, dataset, run_id, threshold)


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
        f"Run `{run_id}` predicts all {info.shape[0]} slices of **{dataset}** (the dataset in the sidebar). "
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
labels = run_labels(ws)  # the run that made it: short name, state, epochs, score, full id
view = st.selectbox("Prediction to review", predictions, key="pred_shown", format_func=lambda r: labels.get(r, r))
downloads(ws, dataset, view)
with user_errors():
    masks, probs, summary = load_prediction(ws, dataset, view)
    k = int(summary.n_classes or info.n_classes)
    threshold = None
    if adjustable_threshold(k, probs):
        thr = st.slider(
            "Threshold: a pixel is " + f"'{info.class_names[1]}' where its probability is above",
            0.0,
            1.0,
            float(summary.threshold),
            0.01,
            key="pred_threshold",
            help="Re-labels from the stored probabilities, without running the network again.",
        )
        threshold = threshold_override(thr, summary.threshold)
    numbers = _review(
        ws,
        str(ws.root),
        dataset,
        view,
        threshold,
        ws.masks_version(dataset),
        info.statuses,
        float(summary.created),
    )
    scores = numbers.scores
    names = tuple(summary.class_names or info.class_names)
    per_class, class_mean = review.class_dice(scores, k)

    head = st.columns(min(k, 6) + 1)
    head[0].metric(
        CLASS_MEAN_DICE,
        fmt(class_mean),
        help="Per-class Dice averaged over the slices that have a mask of their own (labeled or "
        "edited; accepted predictions are not scored), then averaged over the classes.",
    )
    for col, c in zip(head[1:], headline_classes(k)[:6]):
        label = f"{FOREGROUND_DICE} ('{names[c]}')" if k == 2 and c == 1 else f"Dice of '{names[c]}'"
        col.metric(label, fmt(per_class[c]), help=f"Dice of class {c} ('{names[c]}'), averaged over scored slices.")
    if k > 6:
        st.caption("Dice per class: " + ", ".join(f"{names[c]} {fmt(per_class[c])}" for c in range(k)))
    collapsed = review.collapse_warning(numbers.confusion, names)
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
    sv = slice_review(ws, dataset, view, z, threshold, masks, probs, summary, numbers)
    st.markdown(f"**{info.slice_names[z]}** (z = {z}) · status **{sv.status}**{sv.note}")
    slice_panels(sv)
    slice_metrics(sv, info.class_names)

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
        queue_tab(numbers.queue, view, z, k)
    with tab_scores:
        scores_tab(scores)
    with tab_conf:
        confusion_tab(numbers.confusion, info.class_names)
