"""Export sections for other tools: a trained model as a bioimage.io package (Fiji / deepImageJ, ilastik,
napari, BiaPy) and the dataset as OME-Zarr (napari: image + labels layer).

UI only: :mod:`core.nn.bioimageio` and :mod:`core.data.omezarr` write the files. Called from the Export page
(:func:`tools_section`); :func:`model_export_section` also fits the Train page, per run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from core.store.workspace import Workspace
from core.workflow.export import to_bytes
from core.workflow.runs import export_warning, picker_runs, run_view, run_views
from pages._common import prepared_download, user_errors

__all__ = ["tools_section", "model_export_section", "omezarr_section"]

_READY = "tools_export_ready"


def _keep(key: str, data: bytes, file_name: str, mime: str, note: str = "") -> None:
    st.session_state[_READY] = {"key": key, "data": data, "file_name": file_name, "mime": mime, "note": note}


def _download(key: str) -> None:
    ready = st.session_state.get(_READY)
    if ready and ready["key"] == key:
        if ready["note"]:
            st.caption(ready["note"])
        prepared_download(ready, f"tools_download_{key}")


def omezarr_section(ws: Workspace, dataset: str) -> None:
    """Images + masks as OME-Zarr (a ZIP of ``<dataset>.zarr``) for napari."""
    from core.workflow.export import export_dataset_omezarr

    st.markdown("**Images and masks for napari: OME-Zarr**")
    px = ws.pixel_size(dataset)
    st.caption(
        "A ZIP of `" + dataset + ".zarr`: unzip it and open the folder in napari (napari-ome-zarr "
        "plugin): the images, and the masks as a labels layer with the class names; a slice without a "
        "mask is 255 there ('not labeled', transparent; never 0, which would read as background). "
        + (f"Pixel size {px.describe()}." if px else "Pixel size unknown (the source did not state it).")
    )
    from core.workflow.guide import prediction_ids

    preds = prediction_ids(ws, dataset)
    prediction = None
    if preds:
        choice = st.selectbox("Add a prediction as a second labels layer", ["none", *preds], key="tools_omezarr_pred")
        prediction = None if choice == "none" else choice
    if st.button("Prepare OME-Zarr", key="tools_omezarr_prepare", icon=":material/build:"):
        with user_errors(), st.spinner(f"Writing {dataset}.zarr ..."):
            data = to_bytes(export_dataset_omezarr, ws, dataset, prediction=prediction)
            _keep(f"omezarr:{dataset}", data, f"{dataset}.ome-zarr.zip", "application/zip")
    _download(f"omezarr:{dataset}")


def model_export_section(ws: Workspace, run_id: str) -> None:
    """Ask authors and licence, write the run's best checkpoint as a bioimage.io package, offer it."""
    from core.nn.bioimageio import DEFAULT_LICENSE, LICENSES
    from core.workflow.model_export import export_bioimageio, test_package

    run = ws.run(run_id)
    ckpt = next(
        (Path(run[k]) for k in ("best_checkpoint", "last_checkpoint") if run and run.get(k) and Path(run[k]).is_file()),
        None,
    )
    if ckpt is None:
        st.info(f"Run {run_id} has no checkpoint yet.")
        return
    warning = export_warning(run_view(run, ws.run_epochs(run_id)))
    if warning:
        st.warning(warning, icon=":material/warning:")
        if not st.checkbox("Export these weights anyway", value=False, key=f"tools_anyway_{run_id}"):
            return
    st.caption(
        f"Weights: `{ckpt.name}` of run {run_id}. The package holds TorchScript and ONNX weights, the "
        "normalisation used in training, a test image from the training data with its expected output, a "
        "cover image and the run's configuration; `python -m core predict --checkpoint MODEL.zip` reads it "
        "back."
    )
    c1, c2 = st.columns([2, 1])
    authors = c1.text_input(  # required, and never prefilled with the server's login name
        "Authors (comma separated)", placeholder="e.g. Ann Lee, Bo Chen", key=f"tools_authors_{run_id}"
    )
    license = c2.selectbox("Licence", LICENSES, index=LICENSES.index(DEFAULT_LICENSE), key=f"tools_license_{run_id}")
    name = st.text_input("Model name", value=f"SegDash {run['dataset']} {run_id}", key=f"tools_name_{run_id}")
    check = st.checkbox(
        "Check the package with bioimageio.core's test (about 15 s more)", value=False, key=f"tools_test_{run_id}"
    )
    if st.button("Prepare model package", key=f"tools_model_prepare_{run_id}", icon=":material/build:"):
        with user_errors(), st.spinner("Tracing the network and writing the package ..."):
            with tempfile.TemporaryDirectory(prefix="segdash-model-") as tmp:
                out = Path(tmp) / "model.zip"
                summary = export_bioimageio(
                    ckpt, out, workspace=ws, authors=[a for a in authors.split(",")], license=license, name=name
                )
                note = f"Weights: {', '.join(summary['weights'])}. {summary['onnx_note']}"
                if check:
                    result = test_package(out)
                    note += (
                        " bioimageio.core test: passed."
                        if result["status"] == "passed"
                        else f" bioimageio.core test: {result['status']}: {'; '.join(result['failed'])}"
                    )
                _keep(f"model:{run_id}", out.read_bytes(), f"{run_id}.bioimageio.zip", "application/zip", note)
    _download(f"model:{run_id}")


def tools_section(ws: Workspace, dataset: str) -> None:
    """The Export page's section "Model for Fiji / ilastik / napari", with the OME-Zarr download."""
    st.subheader("Model for Fiji / ilastik / napari")
    runs, default = picker_runs(run_views(ws, dataset, with_checkpoint=True), dataset)
    if not runs:
        st.info(
            "No trained model of this dataset yet: train one on the Train page, then export it here as a "
            "bioimage.io model."
        )
    else:
        labels = {v.run_id: v.label for v in runs}
        run_id = st.selectbox("Run", list(labels), index=default, format_func=labels.get, key="tools_run")
        model_export_section(ws, run_id)
    omezarr_section(ws, dataset)
