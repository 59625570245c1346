"""A lost or damaged catalog in the app (issue 25.4): every page says the catalog is damaged with the
repair command and a Repair button (no traceback); Home shows a banner with Repair when dataset folders
or mask versions are not listed; Repair brings them back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _lose_catalog(root: Path) -> None:
    for name in ("catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"):
        (root / name).unlink(missing_ok=True)


def test_home_banner_repairs_a_lost_catalog(ws_env, page, make_dataset):
    make_dataset("tiny", z=3, labeled=(0, 2))
    ws_env.save_mask("tiny", 0, np.ones((32, 48), np.uint8))
    (ws_env.root / ".sample-imported").write_text("")
    ws_env.catalog.close()
    _lose_catalog(ws_env.root)

    at = AppTest.from_file(page("home.py"), default_timeout=60).run()
    assert not at.exception
    assert any("1 dataset folder(s) the catalog does not list (tiny)" in w.value for w in at.warning)
    at.button(key="repair_workspace").click().run()
    assert not at.exception
    assert any("Recovered 1 dataset(s) (tiny), 3 mask version(s)" in s.value for s in at.success), at.success
    assert not at.warning
    assert at.sidebar.selectbox(key="_dataset_box").value == "tiny"
    assert {m.label: m.value for m in at.metric}["Edited"] == "1"


def test_a_damaged_catalog_is_one_message_on_every_page_and_repair_fixes_it(ws_env, make_dataset):
    make_dataset("tiny", z=2, labeled=(0,))
    ws_env.catalog.close()
    (ws_env.root / "catalog.sqlite").write_bytes(b"not a database " * 500)
    for name in ("catalog.sqlite-wal", "catalog.sqlite-shm"):
        (ws_env.root / name).unlink(missing_ok=True)

    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    [error] = at.error
    assert "catalog (catalog.sqlite) is damaged" in error.value and "python -m core repair" in error.value
    assert str(ws_env.root) not in error.value and "Traceback" not in error.value
    at.button(key="repair_workspace").click().run()
    assert not at.exception and not at.error
    assert any("moved aside to catalog.sqlite.corrupt-" in s.value for s in at.success)
    assert at.session_state["dataset"] == "tiny"
    assert any(p.name.startswith("catalog.sqlite.corrupt-") for p in ws_env.root.iterdir())


def test_the_app_copies_the_catalog_when_it_opens(ws_env, make_dataset):
    make_dataset("tiny", z=2, labeled=(0,))
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert [p.suffix for p in (ws_env.root / "backups").iterdir()] == [".sqlite"]
