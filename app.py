"""SegDash: from a raw microscopy or MRI stack to a trained U-Net and corrected masks.

Start with ``streamlit run app.py``. This file builds the navigation and sets up the frame every
page shares, once per run (session-state defaults, the workspace, flash messages:
:func:`pages._common.frame`); each page is a file in ``pages/`` and all logic is in ``core``. A page
that raises shows a short message and a reference to the server log (:func:`pages._common.user_errors`).
"""

import os
import sys
import time

if os.environ.get("SEGDASH_SHARE_CPU", "1") != "0":  # before torch loads OpenMP: see core/nn/device.py
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import streamlit as st  # noqa: E402

from pages._common import frame, user_errors

st.set_page_config(page_title="SegDash", page_icon=":microscope:", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/data.py", title="Data", icon=":material/database:"),
    st.Page("pages/label.py", title="Label", icon=":material/brush:"),
    st.Page("pages/augment.py", title="Augment", icon=":material/auto_awesome:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/predictions.py", title="Predictions", icon=":material/insights:"),
    st.Page("pages/measure.py", title="Measure", icon=":material/straighten:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]

page = st.navigation(PAGES)
_started = time.perf_counter()
try:
    with user_errors():  # whatever a page raises: a short message with a reference, the traceback in the server log
        frame()
        page.run()
finally:
    if os.environ.get("SEGDASH_LOG_RUNS"):  # how long the server took for each page run (benchmarks/bench_load.py)
        print(f"segdash-run {time.time():.3f} {page.title} {time.perf_counter() - _started:.3f}", file=sys.stderr)
