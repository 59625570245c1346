"""Train page, validation / test part (pages/_split.py): the split previewed, chosen and reported."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

from core.train.registry import registry


def _captions(at: AppTest) -> str:
    return " ".join(c.value for c in at.caption)


def test_split_preview_follows_the_form_and_the_run_reports_test_beside_validation(ws_env, page, make_dataset):
    make_dataset("stack", z=12, labeled=tuple(range(12)))
    at = AppTest.from_file(page("train.py"), default_timeout=90).run()
    assert not at.exception
    assert "a stack" in _captions(at) and "block split" in _captions(at)
    assert at.selectbox(key="train_split_mode").value == "auto" and at.number_input(key="train_context").value == 0
    at.text_input(key="train_test_slices").set_value("10-11").run()
    assert "test 10-11 (2)" in _captions(at)
    at.text_input(key="train_val_slices").set_value("x").run()
    assert any("0-9, 20" in e.value for e in at.error), "a bad slice list is explained"
    at.text_input(key="train_val_slices").set_value("6-7").run()
    assert "chosen split" in _captions(at) and "validation 6-7 (2)" in _captions(at)

    at.selectbox(key="train_arch").set_value("classic").run()
    for key, value in (("train_width", 4), ("train_epochs", 1), ("train_batch", 2), ("train_patch", 32)):
        at.number_input(key=key).set_value(value)
    at.number_input(key="train_steps").set_value(2)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    run_id = at.session_state["train_run_id"]
    job = registry().get(run_id)
    deadline = time.monotonic() + 90
    while job.is_active() and time.monotonic() < deadline:
        time.sleep(0.1)
    snap = job.snapshot()
    assert snap["state"] == "done", snap["error"]
    assert snap["val_slices"] == [6, 7] and snap["test_slices"] == [10, 11]
    assert all(abs(t - v) > 2 for t in snap["train_slices"] for v in [6, 7, 10, 11])
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "test (never seen)" in text and "validation (chose the checkpoint and decision)" in text
    assert "Decision tuned on the validation slices" in _captions(at)
