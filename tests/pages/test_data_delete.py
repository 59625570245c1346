"""Data page, Manage tab: delete says what goes, as `python -m core delete` does, and asks first."""

from streamlit.testing.v1 import AppTest


def test_delete_says_what_goes_and_waits_for_the_confirmation(ws_env, page, make_dataset):
    make_dataset("keep", z=2, labeled=(0,))
    make_dataset("tiny", z=3, labeled=(0, 1))
    at = AppTest.from_file(page("data.py"), default_timeout=60)
    at.session_state["dataset"] = "tiny"
    at.run()
    assert not at.exception
    said = " ".join(c.value for c in at.caption)
    assert ws_env.deletion_summary("tiny")[1:] in said  # the same words as the CLI's refusal
    assert "python -m core delete --dataset tiny --yes" in said
    assert at.button(key="data_delete").disabled
    at.checkbox(key="data_confirm_delete").check().run()
    at.button(key="data_delete").click().run()
    assert not at.exception and ws_env.dataset_names() == ["keep"]
    assert not ws_env.dataset_dir("tiny").exists()
    assert ws_env.read_mask("keep", 0) is not None
