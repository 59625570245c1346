"""The Train page's live part: the run it follows (progress, Stop, outcome, curves) at the top, the
other active runs of the workspace, and the runs table; both redrawn every 2 s while a run is active.
UI only: what to say is :mod:`core.workflow.training`, the runs' scores :mod:`core.workflow.runs`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from core.train.job import TrainingJob
from core.train.process import ProcessJob
from core.train.registry import live_runs, registry, run_snapshot, stop_run
from core.train.snapshot import TrainingSnapshot
from core.view import plots
from core.workflow.runs import ACTIVE, interrupted_runs, run_views
from core.workflow.training import progress, runs_table
from pages._common import user_errors
from pages._split import finish_report

__all__ = ["current_job", "active_ids", "live_section", "runs_section", "interrupted_warning"]


def current_job(ws: Any) -> TrainingJob | ProcessJob | None:
    """The workspace's running job, else the one this session started, else the last one of this server."""
    job = registry().active(ws.root)
    if job is None and st.session_state["train_run_id"]:
        job = registry().get(st.session_state["train_run_id"])
    if job is None:
        mine = [j for j in registry().jobs() if Path(j.workspace.root).resolve() == Path(ws.root).resolve()]
        job = mine[-1] if mine else None
    if job is not None:
        st.session_state["train_run_id"] = job.run_id
    return job


def active_ids(ws: Any) -> tuple[str, ...]:
    """Runs active now: every process's live runs, and this server's job until its process has ended."""
    ids = [s.run_id for s in live_runs(ws)]
    job = registry().active(ws.root)
    if job is not None and job.run_id not in ids:
        ids.append(job.run_id)
    return tuple(ids)


def _stop(ws: Any, run_id: str) -> None:
    """Stop callback: runs before the page, so this very run already shows "Stopping ..." (a run of
    another process is asked through the catalog and says so within seconds)."""
    with user_errors():
        stop_run(ws, run_id)


def _focus(ws: Any, dataset: str, live: list[TrainingSnapshot]) -> TrainingSnapshot | None:
    """The run the page follows: this server's active job, else the newest active run of any
    process (the CLI, another server); once none is active, the last one it followed (its outcome),
    else the dataset's newest run (after a reload: an interrupted run shows as such, not an older one)."""
    current = current_job(ws)
    if current is not None and current.is_active():
        snap = current.snapshot()
    elif live:
        snap = live[0]
    elif st.session_state.get("train_followed"):
        snap = run_snapshot(ws, st.session_state["train_followed"])
    else:
        runs = ws.runs(dataset)
        snap = run_snapshot(ws, runs[0].run_id) if runs else None
    if snap is not None and snap.state in ACTIVE:
        st.session_state["train_followed"] = snap.run_id
    return snap


def _run_block(ws: Any, snap: TrainingSnapshot, stop_key: str) -> None:
    """One run's live view: who trains it, progress and ETA, Stop."""
    frac, text = progress(snap)
    st.markdown(
        f"**Run `{snap['run_id']}`** on **{snap['dataset']}** · device: **{snap['device'] or '...'}**"
        f" · trained by **{snap['origin'] or 'this server'}**"
        + (f" · resumed from `{snap['resumed_from']}`" if snap.get("resumed_from") else "")
    )
    p1, p2 = st.columns([6, 1], vertical_alignment="bottom")
    p1.progress(frac, text=text)
    p2.button(
        "Stop",
        key=stop_key,
        icon=":material/stop:",
        disabled=snap["state"] not in ("queued", "running"),
        on_click=_stop,
        args=(ws, snap["run_id"]),
        help="Stops within one step (a run of another process within seconds) and keeps the weights "
        "reached (last.pt); resume it below.",
    )
    if snap["state"] == "stopping":
        st.info(
            "Stopping ...: the job ends after the current step, keeps the weights reached (last.pt) and its "
            "process ends; then it reads stopped and can be resumed.",
            icon=":material/hourglass_top:",
        )


def interrupted_warning(ws: Any, dataset: str) -> None:
    """The newest interrupted run not resumed since, said at the top of the page."""
    gone = interrupted_runs(run_views(ws, dataset))
    if not gone:
        return
    v = gone[0]
    st.warning(
        f"Run `{v.run_id}` was interrupted: the process training it ended (a server restart or a crash) "
        f"after {v.epochs_text}. "
        + (
            "Its checkpoints are kept: resume it below from the last one."
            if v.last_checkpoint and Path(v.last_checkpoint).is_file()
            else "It had saved no checkpoint yet: start it again below."
        ),
        icon=":material/warning:",
    )


def live_section(ws: Any, dataset: str, shown: tuple[str, ...]) -> None:
    """The followed run and every other active one; redraws the page once when the active set changes."""

    @st.fragment(run_every=2 if shown else 10)
    def _live() -> None:
        if active_ids(ws) != shown:
            st.rerun()  # a run started or ended: redraw the page once (form, resume and download lists)
        live = live_runs(ws)
        snap = _focus(ws, dataset, live)
        if snap is None:
            st.button("Stop", key="train_stop", icon=":material/stop:", disabled=True)
            st.info("No training is running in this workspace: set up a new run below and press Start.")
            return
        _run_block(ws, snap, "train_stop")
        if snap["state"] == "failed":
            st.error(f"Training failed: {snap['error']}")
        elif snap["state"] == "stopped":
            st.warning(f"Stopped after epoch {snap['epoch']}; resume it below to continue.")
        elif snap["state"] == "done":
            view = next((v for v in run_views(ws, snap["dataset"]) if v.run_id == snap["run_id"]), None)
            st.success(f"Done: {view.score_text}." if view is not None else "Done.")
        for note in snap.get("notes", []):
            st.caption(note)
        if snap.get("train_slices"):
            finish_report(snap)
        if snap["history"]:
            st.plotly_chart(plots.training_curves(snap["history"]), key="train_live_chart")
        elif snap["state"] in ACTIVE:
            st.caption("The loss and Dice curves appear here after the first epoch.")
        others = [s for s in live if s.run_id != snap.run_id]
        if others:
            st.markdown("**Also training in this workspace**")
            for other in others:
                _run_block(ws, other, f"train_stop_{other.run_id}")

    _live()


def runs_section(ws: Any, dataset: str, shown: tuple[str, ...]) -> None:
    """The runs table of ``dataset`` (:func:`core.workflow.training.runs_table`)."""

    @st.fragment(run_every=2 if shown else None)
    def _runs() -> None:
        st.subheader("Runs")
        rows = runs_table(ws, dataset)  # live rounds apart, last
        if not rows:
            st.info(f"No run on {dataset} yet.")
            return
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            "score: on the run's test slices when it kept some, else on its validation slices; foreground "
            "Dice for two classes, class-mean Dice for more; 'not scored': no held-out validation slice "
            "(a live-loop round) or stopped before its first validation."
        )

    _runs()
