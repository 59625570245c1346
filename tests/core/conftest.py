"""Fixtures shared by the tests of ``core``.

``ws`` is an empty :class:`~core.store.workspace.Workspace` in the test's temporary folder; a test
module that needs a dataset in it overrides ``ws`` with a fixture of the same name that asks for this
one and adds its dataset (pytest's fixture override). ``one_thread`` runs a module's tests on one
torch thread (``usefixtures``). Synthetic images and a tiny checkpoint are in ``tests/synthetic.py``.
"""

from __future__ import annotations

import pytest

from core.store.workspace import Workspace


@pytest.fixture
def ws(tmp_path) -> Workspace:
    """An empty workspace in ``tmp_path / "ws"``."""
    return Workspace(tmp_path / "ws")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread, and ``SEGDASH_THREADS=1`` for what training starts, for a whole module: the
    test machine is shared, and small convolutions run fastest on one thread there."""
    import torch

    before = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEGDASH_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(before)
