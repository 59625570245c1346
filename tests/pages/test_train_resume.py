"""Train page, issue 27 point 2: after Stop, the Resume box offers the run just stopped as soon as the
page says stopped, also in a browser that showed an older run in that box before (a keyed selectbox
keeps its identity when its options change: the browser keeps its old choice unless the server sends
a new one)."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from core.train.registry import registry
from tests.synthetic import add_tiny_run

TIMEOUT_S = 90


pytestmark = pytest.mark.usefixtures("no_job_left_running")


def _until(at: AppTest, done, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not (ok := done()) and time.monotonic() < deadline:  # ``done`` is called once per page run
        time.sleep(0.2)
        at.run()
    assert ok, what


def test_after_stop_the_resume_box_is_told_to_show_the_run_just_stopped(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 1))
    older = "tiny-20261207-000000-beef"  # a finished run the box offers before
    path = add_tiny_run(ws_env, older, "tiny")
    ws_env.catalog.update_run(older, last_checkpoint=str(path))
    at = AppTest.from_file(page("train.py"), default_timeout=60).run()
    box = at.selectbox(key="train_resume_run")
    assert box.options == [f"tiny · Dec 07 00:00 · done · 0 epochs · not scored ({older})"] and box.value == older
    assert any(c.value.startswith(f"Run `{older}`: continues") for c in at.caption)  # the full id, not cut
    assert f"Run `{older}`" in [c.value for c in at.caption]  # and under Run to download
    at.selectbox(key="train_arch").set_value("classic").run()
    for key, value in {"train_width": 4, "train_epochs": 2, "train_batch": 2, "train_patch": 32}.items():
        at.number_input(key=key).set_value(value)
    at.number_input(key="train_steps").set_value(2000).run()
    at.button(key="train_start").click().run()
    first = at.session_state["train_run_id"]
    job = registry().get(first)
    _until(at, lambda: job.snapshot().step > 0, "the run took no step")
    assert at.selectbox(key="train_resume_run").value == older  # what the browser shows meanwhile
    told = []  # what the page told the browser to show in the box, run after run

    def stopped() -> bool:
        box = at.selectbox(key="train_resume_run")
        if box.proto.set_value:
            told.append(box.proto.raw_value)
        return any("Stopped after" in w.value for w in at.warning)

    at.button(key="train_stop").click().run()
    _until(at, stopped, "the page never said stopped")
    # once the run is resumable, the page tells the browser to show it (it kept the older run before)
    box = at.selectbox(key="train_resume_run")
    assert box.options[0].endswith(f"· stopped · 0/2 epochs · not scored ({first})") and box.value == first
    assert told == [box.options[0]], told  # the option as the browser shows it: short name ... (run id)
    at.run()  # the browser sends back what it shows: the stopped run, and the page keeps it
    assert at.selectbox(key="train_resume_run").value == first
    assert not at.selectbox(key="train_resume_run").proto.set_value  # said once, not forced on every run
    at.selectbox(key="train_resume_run").set_value(older).run()  # the user's own choice is kept
    assert at.selectbox(key="train_resume_run").value == older
    at.selectbox(key="train_resume_run").set_value(first).run()
    at.button(key="train_resume").click().run()  # at once: the stop was complete when the page said so
    assert not at.exception and not at.error, [e.value for e in at.error]
    resumed = at.session_state["train_run_id"]
    assert resumed != first and ws_env.catalog.run(resumed)["extra"]["resumed_from"] == first
