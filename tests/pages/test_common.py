"""pages/_common.py: user_errors shows a user's mistake as itself, any other ValueError as an internal error."""

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
