"""The Train page's past runs: compare their curves, resume one, download its checkpoint, bundle or
model package. UI only (the page's helper, not a page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from core.train.bundle import write_bundle
from core.train.config import TrainConfig
from core.train.process import start_training
from core.view import plots
from core.workflow.runs import run_views
from core.workflow.training import resume_choices
from pages._common import user_errors

__all__ = ["past_runs"]


def _follow_newest(widget: str, newest: str) -> None:
    """When a newer run appears, drop the widget's old choice so it defaults to the newest run again."""
    seen = f"_{widget}_newest"
    if st.session_state.get(seen) != newest:
        st.session_state[seen] = newest
        st.session_state.pop(widget, None)


def past_runs(ws: Any, dataset: str, base: TrainConfig, epochs: int, minutes: float) -> None:
    """Compare, resume (up to ``epochs`` or for ``minutes``, the form's values) and download."""
    runs = ws.runs(dataset)
    if not runs:
        return
    n_epochs = ws.epochs_done([r.run_id for r in runs])
    with_epochs = [r["run_id"] for r in runs if n_epochs[r["run_id"]]]  # newest first
    if with_epochs:
        _follow_newest("train_compare", with_epochs[0])
        chosen = st.multiselect("Compare runs", with_epochs, default=with_epochs[:2], key="train_compare")
        if chosen:
            st.plotly_chart(
                plots.compare_runs(
                    {rid: ws.run_epochs(rid) for rid in chosen}, metrics=("train_loss", "val_loss", "val_dice")
                ),
                key="train_compare_chart",
            )
    r1, r2 = st.columns(2)
    with r1:
        st.markdown("**Resume** a stopped, interrupted or finished run")
        resumable, first = resume_choices(run_views(ws, dataset))
        if resumable:
            _follow_newest("train_resume_run", resumable[first])  # a run just stopped: offer it, not the older one
            rid = st.selectbox("Run to resume", resumable, index=first, key="train_resume_run")
            until = (
                f"for about {minutes:g} min (the time budget above)"
                if minutes
                else f"up to epoch {int(epochs)} (the Epochs setting above)"
            )
            st.caption(
                f"Continues from its last checkpoint {until}, "
                "as a new run with that run's own settings, model and validation slices."
            )
            if st.button("Resume", key="train_resume", icon=":material/resume:"):
                with user_errors():
                    own = TrainConfig.from_dict(ws.run(rid).config, base=base)
                    resumed = TrainConfig.from_dict({"epochs": int(epochs), "minutes": float(minutes)}, base=own)
                    new = start_training(ws, dataset, resumed, resume_from=rid)
                    st.session_state["train_run_id"] = new.run_id
                    st.rerun()
        else:
            st.caption("No run with a checkpoint to resume yet.")
    with r2:
        st.markdown("**Download** a run")
        downloadable = [r for r in runs if r["best_checkpoint"] and Path(r["best_checkpoint"]).is_file()]
        if downloadable:
            by_id = {r["run_id"]: r for r in downloadable}  # newest first: the default
            _follow_newest("train_dl_run", downloadable[0]["run_id"])
            rid = st.selectbox("Run to download", list(by_id), key="train_dl_run")
            files = (
                (
                    "Best checkpoint",
                    lambda: Path(by_id[rid]["best_checkpoint"]).read_bytes(),
                    "best.pt",
                    "application/octet-stream",
                    "best",
                    ":material/download:",
                    "The weights of the epoch with the best validation Dice (SegDash checkpoint).",
                ),
                (
                    "Reproducibility bundle",
                    lambda: write_bundle(ws, rid).read_bytes(),
                    "bundle.zip",
                    "application/zip",
                    "bundle",
                    ":material/folder_zip:",
                    "ZIP with the config, per-epoch metrics, slice split, package versions and the best weights.",
                ),
            )
            for col, (label, data, suffix, mime, key, icon, tip) in zip(st.columns(2), files):
                col.download_button(
                    label,
                    data,
                    file_name=f"{rid}-{suffix}",
                    mime=mime,
                    key=f"train_dl_{key}",
                    icon=icon,
                    on_click="ignore",
                    help=tip,
                )
            with st.expander("Model package for Fiji (deepImageJ), ilastik, napari: bioimage.io"):
                from pages._model_export import model_export_section

                with user_errors():
                    model_export_section(ws, rid)
        else:
            st.caption("No run with a best checkpoint yet.")
