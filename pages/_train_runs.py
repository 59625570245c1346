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
from core.workflow.runs import is_live, run_views
from core.workflow.training import resume_choices
from pages._common import user_errors
from pages._train_live import active_ids

__all__ = ["past_runs"]


def _follow_newest(widget: str, newest: str, value: Any, options: list[str]) -> None:
    """When a newer run is offered first (``newest``), choose ``value`` in ``widget`` again, also
    when the widget has no choice yet or one no longer offered.

    The choice is set through the session state, not dropped: a keyed widget keeps its identity when
    its options change (Streamlit >= 1.4x), so a browser kept showing, and sending back, its old
    choice (the older finished run after a Stop); a value set here is sent to the browser
    (``set_value``) and replaces it."""
    seen = f"_{widget}_newest"
    current = st.session_state.get(widget)
    chosen = current if isinstance(current, list) else [current]
    gone = any(c is not None and c not in options for c in chosen)
    if st.session_state.get(seen) != newest or widget not in st.session_state or gone:
        st.session_state[seen] = newest
        st.session_state[widget] = value


def _apart(ids: list[str], live: set[str]) -> tuple[list[str], list[str]]:
    """``(runs, live rounds)`` of ``ids``, each in the order given: live-loop rounds (``live``) are
    listed after the runs and never chosen by default (trained seconds on strokes, never scored)."""
    return [r for r in ids if r not in live], [r for r in ids if r in live]


def past_runs(ws: Any, dataset: str, base: TrainConfig, epochs: int, minutes: float) -> None:
    """Compare, resume (up to ``epochs`` or for ``minutes``, the form's values) and download."""
    runs = ws.runs(dataset)
    if not runs:
        return
    n_epochs = ws.epochs_done([r.run_id for r in runs])
    views = {v.run_id: v for v in run_views(ws, dataset)}

    def label(rid: str) -> str:  # short name, state, epochs, score and the full id, as every picker
        return views[rid].label if rid in views else rid

    def pick(what: str, options: list[str], key: str) -> str | None:  # the runs first, live rounds after
        return st.selectbox(what, options, key=key, format_func=label, placeholder="Choose a run (live rounds only)")

    rounds = {r.run_id for r in runs if is_live(r)}
    regular, live = _apart([r["run_id"] for r in runs if n_epochs[r["run_id"]]], rounds)  # newest first
    with_epochs = regular + live
    if with_epochs:
        _follow_newest("train_compare", with_epochs[0], regular[:2], with_epochs)
        chosen = st.multiselect("Compare runs", with_epochs, key="train_compare", format_func=label)
        if chosen:
            st.plotly_chart(
                plots.compare_runs(
                    {rid: ws.run_epochs(rid) for rid in chosen},
                    metrics=("train_loss", "val_loss", "val_dice_fg" if base.model.n_classes == 2 else "val_dice"),
                ),
                key="train_compare_chart",
            )
    r1, r2 = st.columns(2)
    with r1:
        st.markdown("**Resume** a stopped, interrupted or finished run")
        # a run whose worker process has not ended is not offered yet, whatever the catalog says: its
        # resume would be refused ("a training job is already running"); the page says stopped then too
        busy = set(active_ids(ws))
        ids, first = resume_choices([v for v in views.values() if v.run_id not in busy])
        regular, live = _apart(ids, rounds)
        if ids:
            # a run just stopped: offer it, not the older one the box showed before; never a live round
            offered = ids[first] if ids[first] not in rounds else (regular[0] if regular else None)
            _follow_newest("train_resume_run", ids[first], offered, ids)
            rid = pick("Run to resume", regular + live, "train_resume_run")
            until = (
                f"for about {minutes:g} min (the time budget above)"
                if minutes
                else f"up to epoch {int(epochs)} (the Epochs setting above)"
            )
            st.caption(
                (f"Run `{rid}`: continues" if rid else "Continues")  # the full id, which a narrow box cuts
                + f" from its last checkpoint {until}, "
                "as a new run with that run's own settings, model and validation slices."
            )
            if st.button("Resume", key="train_resume", icon=":material/resume:", disabled=rid is None):
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
        rid = None
        if downloadable:
            by_id = {r["run_id"]: r for r in downloadable}
            regular, live = _apart(list(by_id), rounds)  # the newest run first: the default (a live round: none)
            _follow_newest("train_dl_run", next(iter(by_id)), regular[0] if regular else None, list(by_id))
            rid = pick("Run to download", regular + live, "train_dl_run")
        if rid is not None:
            st.caption(f"Run `{rid}`")  # the full id, which a narrow box cuts
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
        elif not downloadable:
            st.caption("No run with a best checkpoint yet.")
