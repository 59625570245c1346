"""Home: what SegDash is, where the current dataset stands, and what to do next."""

import streamlit as st

from core.workflow.guide import next_steps
from core.workflow.runs import SCORE_HELP, interrupted_runs, last_finished, run_views
from pages._common import dataset_picker, page_link, user_errors, workspace
from pages._repair import repair_banner

st.title("SegDash")
st.markdown(
    "From a raw microscopy or MRI stack to a trained U-Net and corrected masks: "
    "**import, label, train, predict, correct, export**."
)

ws = workspace()
repair_banner(ws)  # dataset folders or mask versions the catalog lost
dataset = dataset_picker(ws)

with user_errors():
    if dataset:
        info = ws.dataset(dataset)
        counts = info.counts()
        st.subheader(f"Dataset: {dataset}")
        st.caption(
            f"{info.shape[0]} slices of {info.shape[1]} x {info.shape[2]} pixels, {info.dtype}; "
            f"classes: {', '.join(info.class_names)}"
        )
        cols = st.columns(5)
        for col, (label, key) in zip(
            cols,
            [
                ("Slices", "slices"),
                ("Labeled", "labeled"),
                ("Edited", "edited"),
                ("From prediction", "from-prediction"),
                ("Unlabeled", "unlabeled"),
            ],
        ):
            col.metric(label, counts[key])
        partial = info.coverage.count("partial")
        if partial:
            st.caption(f"{partial} of the slices with a mask have partial masks (strokes): the rest is not labeled.")

        views = run_views(ws, dataset)
        run = last_finished(views)
        st.subheader("Last finished training run")
        if run is None:
            st.write("No training run of this dataset has finished yet.")
        else:
            c1, c2, c3 = st.columns([3, 1, 2])
            c1.metric("Run", run.short, help=f"Run id: {run.run_id}")
            c2.metric("Epochs", run.epochs_count)
            c3.metric(
                run.score_on.capitalize() + " " + run.measure if run.score is not None else run.measure,
                "not scored" if run.score is None else f"{run.score:.3f}",
                help=SCORE_HELP,
            )
            st.caption(f"Run id: `{run.run_id}` ({run.state}).")
        for v in interrupted_runs(views):
            st.warning(
                f"Run {v.run_id} was interrupted after {v.epochs_text}: the process training it ended (a server "
                "restart or a crash) before it finished. "
                + (
                    "Its checkpoints are kept; resume it from the last one on the Train page."
                    if v.last_checkpoint
                    else "It had saved no checkpoint yet: start it again on the Train page."
                )
            )
        newest = views[0] if views else None
        if newest is not None and newest.state == "failed" and newest.error:
            st.error(f"Run {newest.run_id} failed: {newest.error}")
        elif newest is not None and newest.state in ("queued", "running", "stopping"):
            st.info(f"Run {newest.run_id} is {newest.state} ({newest.epochs_text}): follow it on the Train page.")

    st.subheader("What to do next")
    for step in next_steps(ws, dataset):
        page_link(step.page, step.label, step.icon)
        st.caption(step.why)
