"""Shared UI plumbing for the pages: the frame ``app.py`` sets up (session-state defaults, the
workspace, flash messages), the current dataset, downloads, error display.

UI only (no logic): everything computed lives in ``core``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Iterator

import streamlit as st
from streamlit.errors import StreamlitAPIException

from core.errors import SegDashError
from core.store.catalog import CatalogDamaged
from core.store.workspace import Workspace, WorkspaceError, default_root
from core.workflow.sample import ensure_sample


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
        st.error(shown(str(exc)))
        if isinstance(exc, CatalogDamaged):
            from pages._repair import repair_button

            repair_button(_open_workspace.clear)
        st.stop()
    for kind, text in st.session_state.pop(_FLASHES, []):  # flash(): where a run first asks for the workspace
        _SHOW[kind](shown(text))  # an action's words may quote a core message: no server folder in them
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


# -- errors: a clear message in the browser, the traceback in the server log ----------------------

#: The server log: incidents (an error shown on a page as internal) go to the server's standard error
#: with their traceback, under the reference the page shows.
incidents = logging.getLogger("segdash.incident")
if not incidents.handlers:
    _handler = logging.StreamHandler()  # sys.stderr: the terminal or the service's journal
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    incidents.addHandler(_handler)
    incidents.setLevel(logging.INFO)
    incidents.propagate = False

# an absolute path (POSIX, or a Windows drive), not part of a word, a fraction or a URL
_ABS_PATH = re.compile(r"(?<![\w/.:~-])(?:/|[A-Za-z]:\\)[^\s'\"`,;()\[\]{}<>|*?]+")


def shown(text: str, root: str | Path | None = None) -> str:
    """``text`` as a browser may see it: paths inside the workspace (``root``, default the current
    one) relative to it, any other absolute path cut to its file name; the server's folders stay
    on the server (the CLI, run by the machine's owner, keeps full paths).

    Example:
        >>> shown("cannot write /srv/ws/datasets/em/masks/00001.v2.png", "/srv/ws")
        'cannot write datasets/em/masks/00001.v2.png'
        >>> shown("not enough space in /srv/ws: needs 3.0 MB; see /tmp/up/stack.tif", "/srv/ws")
        'not enough space in the workspace: needs 3.0 MB; see stack.tif'
    """
    roots = []
    try:
        base = Path(root) if root is not None else default_root()
        roots = sorted({str(base), str(base.resolve())}, key=len, reverse=True)
    except OSError:
        pass

    def one(m: re.Match) -> str:
        path = m.group(0)
        trail = ""
        while path and path[-1] in ".:":  # the sentence's punctuation, not the path's
            path, trail = path[:-1], path[-1] + trail
        for r in roots:
            if path == r or path == r.rstrip("/\\"):
                return "the workspace" + trail
            for sep in ("/", "\\"):
                if path.startswith(r.rstrip("/\\") + sep):
                    return path[len(r.rstrip("/\\")) + 1 :] + trail
        name = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
        return (name or "a server folder") + trail

    # core's "workspace folder /srv/ws is not writable" (WorkspaceError) reads as English without its path
    return _ABS_PATH.sub(one, text).replace("workspace folder the workspace", "the workspace folder")


def _reference(exc: BaseException) -> str:
    """Log ``exc`` with its traceback under a new reference and return the reference."""
    ref = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    incidents.error("incident %s: %s on a page", ref, type(exc).__name__, exc_info=exc)
    return ref


def problem(exc: Exception) -> tuple[str, str]:
    """``(message, details)`` to show for ``exc``: a :class:`~core.errors.SegDashError`'s own message
    (no details); else a short sentence saying what failed and nothing saved was lost, with a
    reference to the server log, which holds the traceback (:data:`incidents`), and the error's type
    and message as details. No server path in either (:func:`shown`)."""
    if isinstance(exc, SegDashError):
        return shown(str(exc)), ""
    ref = _reference(exc)
    tail = f" Nothing saved was lost. Reference {ref} in the server log."
    name = getattr(exc, "filename", None)
    where = f" ({shown(str(name))})" if name else ""
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        text = (
            f"The server may not write or read a file in the workspace{where}: its folder is not "
            "writable (permissions, or a read-only disk). Ask whoever runs SegDash to make the "
            "workspace writable, then try again."
        )
    elif isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        text = f"The workspace's disk is full{where}: free some space, then try again."
    elif isinstance(exc, OSError):
        text = f"A file of the workspace could not be read or written{where}."
    elif isinstance(exc, sqlite3.Error):
        text = (
            "The workspace's catalog (catalog.sqlite) could not be read or written: it may be damaged, "
            "locked by another program, or on a disk that went away."
        )
    else:
        text = "Something went wrong inside SegDash: an internal error, not a problem with your input."
    return text + tail, shown(f"{type(exc).__name__}: {exc}")


def show_problem(exc: Exception) -> None:
    """Show ``exc`` on the page (:func:`problem`): an error box, the details folded below it."""
    text, details = problem(exc)
    st.error(text)
    if details:
        with st.expander("Details"):
            st.code(details)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show any error of the block instead of a traceback: a :class:`~core.errors.SegDashError`
    (a user's mistake) as its message; anything else (a folder made unwritable, a damaged catalog,
    an error of numpy or torch) as a short message with a reference to the server log, which holds
    the traceback (:func:`problem`). Streamlit's own stops and reruns pass through (they are no
    ``Exception``). ``app.py`` runs every page inside one too, so nothing a page raises reaches the
    browser as a traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page shows it; the server log keeps the traceback
        show_problem(exc)
