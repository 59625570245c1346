"""Home: what SegDash is, where the current dataset stands, and what to do next."""

import streamlit as st

from core.workflow.guide import last_run, next_steps
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

        run = last_run(ws, dataset)
        st.subheader("Last training run")
        if run is None:
            st.write("No model trained on this dataset yet.")
        else:
            dice = "n/a" if run["best_dice"] is None else f"{run['best_dice']:.3f}"
            c1, c2, c3 = st.columns(3)
            c1.metric("Run", run["run_id"])
            c2.metric("State", run["state"])
            c3.metric("Best validation Dice", dice, help="Mean of the per-class Dice scores on the validation slices.")
            if run["state"] == "interrupted":
                st.warning(
                    f"Run {run['run_id']} was interrupted: the process training it ended (a server "
                    "restart or a crash) before it finished. "
                    + (
                        "Its checkpoints are kept; resume it from the last one on the Train page."
                        if run["last_checkpoint"]
                        else "It had saved no checkpoint yet: start it again on the Train page."
                    )
                )
            elif run["state"] == "failed" and run["error"]:
                st.error(f"Run {run['run_id']} failed: {run['error']}")

    st.subheader("What to do next")
    for step in next_steps(ws, dataset):
        page_link(step.page, step.label, step.icon)
        st.caption(step.why)
