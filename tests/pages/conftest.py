"""Page tests: each test gets its own temporary workspace.

``ws_env`` points ``SEGDASH_WORKSPACE`` at a fresh folder, clears ``st.cache_resource`` (where the
pages keep their :class:`~core.store.workspace.Workspace`), and yields a ``Workspace`` on that folder. A
page opened on an empty workspace imports the bundled sample (about a second); a test that creates
its own small dataset first gets no sample (the sample is only imported into a workspace with no
dataset), which keeps it fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st

from core.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]
JOB_JOIN_S = 90


@pytest.fixture
def no_job_left_running():
    """A training job left running would outlive the test (and its temporary workspace): stopped and
    joined after it (the Train page tests use it for every test)."""
    from core.train.registry import registry

    yield
    for job in registry().jobs():
        if job.is_active():
            job.stop()
            job.join(JOB_JOIN_S)


def page_path(name: str) -> str:
    """Absolute path of ``pages/<name>`` (AppTest resolves relative paths against the caller)."""
    return str(ROOT / "pages" / name)


@pytest.fixture
def ws_env(tmp_path, monkeypatch):
    root = tmp_path / "workspace"
    monkeypatch.setenv("SEGDASH_WORKSPACE", str(root))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield Workspace(root)
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def page():
    """``page("home.py")`` is the absolute path of ``pages/home.py``, for ``AppTest.from_file``."""
    return page_path


@pytest.fixture
def make_dataset(ws_env):
    """``make_dataset(name, z=3, shape=(32, 48), labeled=(0,))`` creates a small dataset in ``ws_env``."""
    return lambda *args, **kwargs: _make_dataset(ws_env, *args, **kwargs)


def _make_dataset(
    ws: Workspace,
    name: str = "tiny",
    z: int = 3,
    shape: tuple[int, int] = (32, 48),
    labeled: tuple[int, ...] = (0,),
    class_names: tuple[str, ...] = ("background", "cell"),
):
    """A small synthetic dataset: a gradient stack, slices in ``labeled`` with a square mask."""
    images = (np.indices((z, *shape)).sum(0) * 3 % 256).astype(np.uint8)
    masks = []
    for i in range(z):
        if i in labeled:
            m = np.zeros(shape, np.uint8)
            m[4:12, 4:12] = 1
            masks.append(m)
        else:
            masks.append(None)
    return ws.create_dataset(name, images, masks, list(class_names))


@pytest.fixture(scope="session")
def live_warmed():
    """The Label page starts importing what the live loop needs (torch's losses, MONAI) in a thread of
    its own (:func:`core.workflow.live.warm_up`); a page test compiling its script meanwhile can meet
    Python 3.11's "SystemError: AST constructor recursion depth mismatch" (its compiler is not safe in
    two threads at once). Label tests wait for that import once, before they start."""
    from core.workflow.live import warm_up

    warm_up().join(timeout=600)
