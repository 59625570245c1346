"""Train: watch the running job first, then set up and start a new run, then compare, resume and
download past runs.

UI only: training is :class:`core.train.job.TrainingJob`, run by a worker process
(:func:`core.train.process.start_training`; it never calls ``st.*``) and kept in
:func:`core.train.registry.registry` as a :class:`core.train.process.ProcessJob`. The top of the page
(``pages/_train_live.py``) shows the run it follows (the active one, else the dataset's newest:
interrupted, stopped or done), Stop and the curves, and every other active run of the workspace
(:func:`core.train.registry.live_runs`: this server's jobs, ``python -m core train`` and other
servers from the catalog), every 2 seconds while a run is active (every 10 to notice a new one). The
form for a new run (``pages/_train_form.py``) comes below, folded while a run is active; then the
runs table and past runs (``pages/_train_runs.py``). What the page says of runs (scores, progress
lines, the table) is decided in :mod:`core.workflow.runs` and :mod:`core.workflow.training`.
"""

from __future__ import annotations

import streamlit as st

from core.train.config import default_config
from core.train.process import start_training
from pages._common import dataset_picker, user_errors, workspace
from pages._train_form import load_form, render_form
from pages._train_live import active_ids, current_job, interrupted_warning, live_section, runs_section
from pages._train_runs import past_runs

# -- session state: this page's keys (app.py sets the shared ones: _common.frame) ----------------
for _key, _value in {"train_run_id": None, "train_message": None}.items():
    if _key not in st.session_state:
        st.session_state[_key] = _value

st.title("Train")
st.caption(
    "Train a U-Net on the labeled slices of the dataset. Training runs in the background: you can "
    "leave this page (or reload it) and come back; the job keeps going."
)
ws = workspace()
dataset = dataset_picker(ws)
if dataset is None:
    st.stop()
info = ws.dataset(dataset)
base = default_config(info.n_classes)
job = current_job(ws)
load_form(ws, dataset, job, base)
shown = active_ids(ws)

# -- 1. the run the page follows: progress, Stop, outcome, curves ------------------------------------
interrupted_warning(ws, dataset)
live_section(ws, dataset, shown)

# -- 2. a new run: folded while one is active ---------------------------------------------------------
with st.expander("New run: configuration" + (" (a run is active)" if shown else ""), expanded=not shown):
    form = render_form(ws, dataset, info, base)
    if st.button("Start training", key="train_start", type="primary", icon=":material/play_arrow:"):
        with user_errors():
            new = start_training(ws, dataset, form.config())
            st.session_state["train_run_id"] = new.run_id
            st.rerun()  # the new run at the top, the form folded

# -- 3. runs: table, compare, resume, download --------------------------------------------------------
runs_section(ws, dataset, shown)
past_runs(ws, dataset, base, form.epochs, form.minutes)
