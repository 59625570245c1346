"""Export: masks, the whole dataset, a prediction's masks and per-slice metrics, as downloads.

UI only: the files are written by :mod:`core.workflow.export`. Datasets can be large, so nothing is built
until the user presses *Prepare*; the prepared file is kept for one download button and replaced by
the next one prepared.
"""

import streamlit as st

from core.workflow.export import (
    PREDICTION_FORMATS,
    export_dataset_zip,
    export_masks_tiff,
    export_masks_zip,
    export_prediction,
    to_bytes,
)
from core.workflow.guide import prediction_ids
from core.workflow.runs import run_labels
from pages._common import dataset_picker, prepared_download, user_errors, workspace

MASK_FORMATS = {
    "Masks: ZIP of PNGs named like their slices": ("masks.zip", "application/zip", export_masks_zip),
    "Masks: one multipage TIFF for Fiji/ImageJ (one page per image slice)": (
        "masks.tif",
        "image/tiff",
        export_masks_tiff,
    ),
    "Whole dataset: ZIP that SegDash imports again": ("dataset.zip", "application/zip", export_dataset_zip),
}
PRED_FORMATS = (
    "Masks: ZIP of PNGs",
    "Masks: one multipage TIFF",
    "Per-slice metrics: CSV",
    "Probabilities: one multipage TIFF (x 255; one channel per class beyond two)",
)


def _init() -> None:
    if "export_ready" not in st.session_state:
        st.session_state["export_ready"] = None


def _keep(dataset: str, section: str, data: bytes, file_name: str, mime: str) -> None:
    st.session_state["export_ready"] = {
        "dataset": dataset,
        "section": section,
        "data": data,
        "file_name": file_name,
        "mime": mime,
    }


def _download(section: str) -> None:
    """The download button for a file prepared in ``section``, if there is one."""
    ready = st.session_state["export_ready"]
    if ready and ready["section"] == section:
        prepared_download(ready, f"export_download_{section}")


def _dataset_section(ws, dataset: str) -> None:
    info = ws.dataset(dataset)
    n_masks = info.counts()["slices"] - info.counts()["unlabeled"]
    st.subheader("Masks and dataset")
    st.caption(
        f"{n_masks} of {info.shape[0]} slices have masks. Binary masks are written as 0/255, "
        "multi-class masks as class indices 0..K-1. The TIFF has one page per image slice, so it lies on "
        "the image stack in Fiji: an unlabeled slice is a page of 255 ('not labeled', never 0, which would "
        "read as background) labelled '(unlabeled)', and such a TIFF holds class indices throughout "
        "(binary masks as 0/1) with `unlabeled_value` 255 in its Info. The ZIPs hold a PNG for each "
        "slice with a mask only; the dataset ZIP's `segdash.json` lists the `labeled` and `unlabeled` slices."
    )
    choice = st.radio("What", list(MASK_FORMATS), key="export_format")
    suffix, mime, fn = MASK_FORMATS[choice]
    if st.button("Prepare", key="export_prepare", icon=":material/build:"):
        with user_errors(), st.spinner(f"Writing {dataset}_{suffix} ..."):
            _keep(dataset, "dataset", to_bytes(fn, ws, dataset), f"{dataset}_{suffix}", mime)
    _download("dataset")


def _prediction_section(ws, dataset: str) -> None:
    st.subheader("Predictions")
    runs = prediction_ids(ws, dataset)
    if not runs:
        st.info("No stored prediction of this dataset yet: predict it on the Predictions page.")
        return
    labels = run_labels(ws)  # the run that made it: short name, state, epochs, score, full id
    run_id = st.selectbox("Prediction", runs, key="export_pred_run", format_func=lambda r: labels.get(r, r))
    what = st.radio("What", PRED_FORMATS, key="export_pred_format")
    if st.button("Prepare", key="export_pred_prepare", icon=":material/build:"):
        with user_errors(), st.spinner(f"Writing the prediction {run_id} ..."):
            fmt, mime = {
                PRED_FORMATS[0]: ("zip", "application/zip"),
                PRED_FORMATS[1]: ("tiff", "image/tiff"),
                PRED_FORMATS[2]: ("csv", "text/csv"),
                PRED_FORMATS[3]: ("prob-tiff", "image/tiff"),
            }[what]
            data = to_bytes(export_prediction, ws, dataset, run_id, fmt)
            _keep(dataset, "pred", data, f"{dataset}_{run_id}_{PREDICTION_FORMATS[fmt]}", mime)
    _download("pred")


_init()
ws = workspace()
dataset = dataset_picker(ws)
st.title("Export")
if not dataset:
    st.info("No dataset yet: import one on the Data page.")
    st.stop()
ready = st.session_state["export_ready"]
if ready and ready["dataset"] != dataset:  # prepared for another dataset
    st.session_state["export_ready"] = None
with user_errors():
    _dataset_section(ws, dataset)
with user_errors():
    _prediction_section(ws, dataset)
with user_errors():  # models and files for other tools (pages/_model_export.py)
    from pages._model_export import tools_section

    tools_section(ws, dataset)
