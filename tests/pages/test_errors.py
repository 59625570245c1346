"""No traceback or server path reaches a browser (issue 25.5): whatever a core call raises on a page
(a folder made unwritable while the server runs, a damaged catalog, an internal error) shows as a
short message with a reference to the server log, which holds the traceback; Streamlit's own
error details are off."""

from __future__ import annotations

import errno
import logging
import sqlite3
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.store.workspace import Workspace
from tests.pages.label_draw import draw, middle_row_stroke

ROOT = Path(__file__).resolve().parents[2]


def _elements(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _elements(child)


# the one place that names server folders on purpose: where "Import from a path on the server" may
# read (the Data page's Import tab; whoever types such a path works on the server)
_IMPORT_ROOTS = "Paths inside these folders only"


def _page_text(at: AppTest) -> str:
    """Everything the browser gets of the page: every element's message, main area and sidebar."""
    protos = (str(getattr(el, "proto", "")) for el in _elements(at._tree))
    return "\n".join(p for p in protos if _IMPORT_ROOTS not in p)


def _assert_nothing_of_the_server(at: AppTest, ws: Workspace) -> None:
    assert not at.exception
    text = _page_text(at)
    assert "Traceback" not in text and 'File "' not in text
    for path in {str(ws.root), str(ws.root.resolve()), str(ROOT)}:
        assert path not in text, text[max(0, text.find(path) - 300) : text.find(path) + 200]


@pytest.fixture
def incidents():
    """The records of the server log's incidents."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("segdash.incident")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _reference(at: AppTest) -> str:
    (error,) = [e.value for e in at.error if "Reference" in e.value]
    return error.split("Reference ", 1)[1].split(" ", 1)[0]


def test_the_config_shows_no_error_details_in_the_browser():
    from streamlit import config

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    value = settings["client"]["showErrorDetails"]
    assert value == "none"
    assert config.ShowErrorDetailsConfigOptions(value) is config.ShowErrorDetailsConfigOptions.NONE  # known here


@pytest.mark.parametrize(
    "exc, words",
    [
        (PermissionError(errno.EACCES, "Permission denied"), "not writable"),
        (sqlite3.DatabaseError("database disk image is malformed"), "catalog"),
        (RuntimeError("boom"), "internal error"),
    ],
    ids=["permission", "sqlite", "runtime"],
)
def test_whatever_a_page_raises_is_a_message_with_a_reference(ws_env, make_dataset, monkeypatch, incidents, exc, words):
    """app.py runs the page inside the wrapper: a core call raising outside any of the page's own
    blocks (here the dataset list, first thing on every page) still gives no traceback."""
    make_dataset("tiny", z=2)
    if isinstance(exc, OSError):
        exc.filename = str(ws_env.root / "datasets" / "tiny" / "masks" / "00000.v1.png")

    def fail(self, *args, **kwargs):
        raise exc

    monkeypatch.setattr(Workspace, "dataset_names", fail)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    _assert_nothing_of_the_server(at, ws_env)
    assert words in at.error[0].value and "Nothing saved was lost" in at.error[0].value
    ref = _reference(at)
    logged = [r for r in incidents if ref in r.getMessage()]
    assert logged and logged[0].exc_info[1] is exc  # the server log holds the traceback, under the reference
    if isinstance(exc, OSError):  # the user's file, named inside the workspace
        assert "datasets/tiny/masks/00000.v1.png" in at.error[0].value


def test_rename_into_an_unwritable_folder_is_a_clear_message(ws_env, page, make_dataset, monkeypatch, incidents):
    """The dataset folder made unwritable while the server runs (injected: the tests run as root,
    which permissions do not stop): Rename says so, names no server folder, and nothing changes."""
    make_dataset("tiny", z=2)

    def unwritable(self, old, new):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root / "datasets" / old))

    monkeypatch.setattr(Workspace, "rename_dataset", unwritable)
    at = AppTest.from_file(page("data.py"), default_timeout=60).run()
    at.text_input(key="data_new_name").input("tiny2").run()
    at.checkbox(key="data_confirm_rename").check().run()
    at.button(key="data_rename").click().run()
    _assert_nothing_of_the_server(at, ws_env)
    assert "not writable" in at.error[0].value and "(datasets/tiny)" in at.error[0].value
    assert _reference(at) and ws_env.dataset_names() == ["tiny"]


def test_save_into_an_unwritable_folder_keeps_the_strokes_and_says_why(ws_env, page, make_dataset, monkeypatch):
    make_dataset("tiny", z=2, shape=(32, 48), labeled=())
    at = AppTest.from_file(page("label.py"), default_timeout=60).run()
    assert not at.exception
    draw(at, {"objects": [middle_row_stroke(at, 32, 48)]})

    def unwritable(self, dataset, z, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(self.root / "datasets" / dataset / "masks"))

    writable = Workspace.edit_mask
    monkeypatch.setattr(Workspace, "edit_mask", unwritable)
    at.button(key="label_save").click().run()
    _assert_nothing_of_the_server(at, ws_env)
    kind, text = at.session_state["label_status"]
    assert kind == "error" and text.startswith("Not saved (your strokes are kept)") and "Reference" in text
    assert "datasets/tiny/masks" in text and ws_env.labeled_slices("tiny") == []
    monkeypatch.setattr(Workspace, "edit_mask", writable)
    at.button(key="label_save").click().run()  # the folder writable again: the same strokes save
    assert not at.exception and ws_env.labeled_slices("tiny") == [0]


@pytest.fixture
def read_only_datasets(ws_env):
    """``make(True)`` turns the workspace's ``datasets/`` folder read-only in place (a read-only bind
    mount over it: even root cannot write there, and the catalog beside it stays writable);
    ``make(False)`` undoes it. Needs root and mount rights; skipped without."""
    import os
    import subprocess

    folder = ws_env.root / "datasets"
    mounted = []

    def make(ro: bool) -> None:
        if not ro:
            subprocess.run(["umount", str(folder)], capture_output=True)
            mounted.clear()
            return
        if os.geteuid() != 0:
            pytest.skip("a read-only bind mount needs root")
        res = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
        if res.returncode:
            pytest.skip(f"cannot bind-mount: {res.stderr.decode().strip()}")
        mounted.append(folder)
        res = subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True)
        if res.returncode:
            pytest.skip(f"cannot remount read-only: {res.stderr.decode().strip()}")

    yield make
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_datasets_made_read_only_while_the_server_runs_rename_and_save_say_so(ws_env, make_dataset, read_only_datasets):
    """Not injected: the datasets folder turns read-only between two page runs. Rename on the Data
    page and Save on the Label page say what failed, with a reference and no traceback or server
    path; nothing changes, the strokes stay, and Save works once the folder is writable again."""
    make_dataset("tiny", z=2, shape=(32, 48), labeled=())
    data = AppTest.from_file(str(ROOT / "pages" / "data.py"), default_timeout=60).run()
    data.text_input(key="data_new_name").input("tiny2").run()
    data.checkbox(key="data_confirm_rename").check().run()
    label = AppTest.from_file(str(ROOT / "pages" / "label.py"), default_timeout=60).run()
    draw(label, {"objects": [middle_row_stroke(label, 32, 48)]})
    read_only_datasets(True)
    try:
        data.button(key="data_rename").click().run()
        _assert_nothing_of_the_server(data, ws_env)
        assert "not writable" in data.error[0].value and "Reference" in data.error[0].value
        label.button(key="label_save").click().run()
        _assert_nothing_of_the_server(label, ws_env)
        kind, text = label.session_state["label_status"]
        assert kind == "error" and "not writable" in text and "Reference" in text, text
    finally:
        read_only_datasets(False)
    assert ws_env.dataset_names() == ["tiny"] and ws_env.labeled_slices("tiny") == []
    label.button(key="label_save").click().run()  # writable again: the kept strokes save
    assert not label.exception and ws_env.labeled_slices("tiny") == [0]
