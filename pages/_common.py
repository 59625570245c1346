"""Shared UI plumbing for the pages: the frame ``app.py`` sets up (session-state defaults, the
workspace, flash messages), the current dataset, downloads, error display.

UI only (no logic): everything computed lives in ``core``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.errors import SegDashError
from core.store.catalog import CatalogDamaged
from core.store.workspace import Workspace, WorkspaceError, default_root
from core.workflow.sample import ensure_sample

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner="Opening the workspace ...")
def _open_workspace(root: str) -> Workspace:
    ws = Workspace(root)
    ensure_sample(ws)
    return ws


def _leave_pages_folder_mode() -> None:
    """Run pages through ``app.py``'s navigation even on a fresh server's first request.

    Until ``st.navigation`` has run once, Streamlit treats a ``pages/`` folder next to the main
    script as an old-style multipage app: a first request for ``/train`` would run that page alone,
    without ``app.py`` (no page config, every file listed in the sidebar). Switching the flag off and
    rerunning hands the request to ``app.py``, which opens the same page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # internal module moved: nothing to work around
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


#: Session-state keys every page shares, with their defaults (set by :func:`frame`).
STATE_DEFAULTS = {"dataset": None, "slice": 0}
_FLASHES = "_flashes"  # (kind, text) messages waiting for the next render, see flash()
_FRAMED_BY_APP = "_framed_by_app"  # app.py sets the frame up before every page of this session
_SHOW = {"success": st.success, "info": st.info, "warning": st.warning, "error": st.error, "toast": st.toast}


def flash(kind: str, text: str) -> None:
    """A message for the next render of the page, which :func:`frame` shows once.

    For what an action says before ``st.rerun()`` or ``st.switch_page()`` (whatever a run draws
    after its rerun is requested is lost). ``kind``: ``success``, ``info``, ``warning``, ``error``
    or ``toast``.
    """
    if kind not in _SHOW:
        raise ValueError(f"unknown flash kind {kind!r}; known: {sorted(_SHOW)}")
    st.session_state[_FLASHES] = [*st.session_state.get(_FLASHES, []), (kind, text)]


def _open() -> Workspace:
    try:
        ws = _open_workspace(str(default_root()))
        ws.backup_if_due()  # a copy of the catalog a day (core.store.backups); raises if it was damaged since
    except WorkspaceError as exc:  # not writable, disk full, a damaged catalog: say so and what to do, no traceback
        st.error(str(exc))
        if isinstance(exc, CatalogDamaged):
            from pages._repair import repair_button

            repair_button(_open_workspace.clear)
        st.stop()
    for kind, text in st.session_state.pop(_FLASHES, []):  # flash(): where a run first asks for the workspace
        _SHOW[kind](text)
    return ws


def _set_up() -> Workspace:
    _leave_pages_folder_mode()
    for key, value in STATE_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value
    return _open()


def frame() -> Workspace:
    """Set up what every page shares, in one place: the session-state defaults
    (:data:`STATE_DEFAULTS`), the workspace, and the :func:`flash` messages left by the last run.

    ``app.py`` calls it once per run, before the page; the messages show at the top of the page.
    """
    st.session_state[_FRAMED_BY_APP] = True
    return _set_up()


def workspace() -> Workspace:
    """The process-wide workspace (``$SEGDASH_WORKSPACE`` or ``./workspace``), sample imported.

    Where ``app.py`` did not set the frame up (a page run alone, as under ``AppTest``, or a fresh
    server's first request for a page), this does it (see :func:`frame`), so a page works either way.
    """
    return _open() if st.session_state.get(_FRAMED_BY_APP) else _set_up()


def dataset_picker(ws: Workspace, *, where=st.sidebar, key: str = "dataset") -> str | None:
    """Select box for the current dataset, kept in ``st.session_state[key]`` across pages.

    Streamlit drops a widget's state when the page changes, so the choice lives in plain session
    state and the box (its own key) is filled from it and writes back to it.
    """
    names = ws.dataset_names()
    if not names:
        where.info("No dataset yet: import one on the Data page.")
        return None
    if st.session_state.get(key) not in names:
        st.session_state[key] = names[0]
    box = f"_{key}_box"
    st.session_state[box] = st.session_state[key]

    def keep() -> None:
        st.session_state[key] = st.session_state[box]

    where.selectbox("Dataset", names, key=box, on_change=keep)
    return st.session_state[key]


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """``st.page_link``, or plain text where the page is not in the navigation (a page run alone,
    as under AppTest)."""
    try:
        st.page_link(page, label=label, icon=icon or None)
    except StreamlitAPIException:
        st.markdown(f"**{label}**: see the {Path(page).stem.title()} page")


def prepared_download(ready: dict, key: str) -> None:
    """The download button for a file prepared earlier (``ready``: ``data``, ``file_name``, ``mime``)."""
    st.download_button(
        f"Download {ready['file_name']} ({len(ready['data']) / 1e6:.1f} MB)",
        ready["data"],
        file_name=ready["file_name"],
        mime=ready["mime"],
        key=key,
        type="primary",
        icon=":material/download:",
        on_click="ignore",
    )


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show a :class:`~core.errors.SegDashError` (a user's mistake) as ``st.error`` instead of a
    traceback; any other ``ValueError`` (numpy, torch, ...) is an internal error: a generic message,
    its details folded in an expander and the traceback in the server log."""
    try:
        yield
    except SegDashError as exc:
        st.error(str(exc))
    except ValueError as exc:
        log.exception("internal error shown on the page")
        st.error(
            "Something went wrong inside SegDash: an internal error, not a problem with your input. "
            "Nothing saved was lost; the details are below and in the server log."
        )
        with st.expander("Details"):
            st.code(f"{type(exc).__name__}: {exc}")
