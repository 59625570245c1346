"""pages/_common.py: user_errors shows a user's mistake as itself, any other ValueError as an internal error;
the frame app.py sets up (state defaults, workspace, flash messages shown once after a rerun)."""

from pathlib import Path

from streamlit.testing.v1 import AppTest


def _app():
    from core.errors import SegDashError
    from pages._common import user_errors

    with user_errors():
        raise SegDashError("dataset 'x' has no labeled slices")
    with user_errors():
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")


def test_user_errors_tells_a_mistake_from_an_internal_error():
    at = AppTest.from_function(_app).run()
    assert not at.exception
    assert at.error[0].value == "dataset 'x' has no labeled slices"
    assert "internal error" in at.error[1].value and "broadcast" not in at.error[1].value
    assert "operands could not be broadcast" in at.expander[0].code[0].value


def _flashing_app():
    import streamlit as st

    from pages._common import flash, frame

    frame()
    if st.button("Act", key="act"):
        flash("success", "done it")
        st.rerun()


def test_flash_shows_once_on_the_run_after_the_rerun(ws_env):
    at = AppTest.from_function(_flashing_app, default_timeout=60).run()
    assert not at.exception and not at.success
    at.button(key="act").click().run()
    assert [s.value for s in at.success] == ["done it"]
    at.run()
    assert not at.success


def test_app_sets_up_the_frame_and_runs_the_home_page(ws_env):
    app = Path(__file__).resolve().parents[2] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60).run()
    assert not at.exception
    assert at.session_state["dataset"] == "isbi2012" and at.session_state["slice"] == 0
    assert at.title[0].value == "SegDash"
