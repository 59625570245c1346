"""The Measure page in a real browser: a small dataset with discs -> Measure -> the table and the
counts and plots -> the CSV downloads with one row per disc (the outline of a picked object is
tested on :func:`core.workflow.measure.object_view`).

Debian's ``/usr/bin/chromium`` driven by playwright, never a downloaded browser; skips without it
(except with ``CI=true``).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from tests.e2e.browser import ARTIFACTS, ROOT, launch, need_browser, no_exception, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    need_browser()
    sys.path.insert(0, str(ROOT))
    from core.store.workspace import Workspace

    ws_root = tmp_path_factory.mktemp("ws")
    masks = np.zeros((2, 64, 96), np.uint8)
    yy, xx = np.mgrid[:64, :96]
    for cy, cx in ((20, 20), (40, 60), (20, 75)):
        masks[:, (yy - cy) ** 2 + (xx - cx) ** 2 < 64] = 1
    Workspace(ws_root).create_dataset("discs", (30 + 150 * masks).astype(np.uint8), list(masks), ["bg", "nucleus"])
    with streamlit_server(ws_root, tmp_path_factory.mktemp("log")) as url:
        yield url


def test_measure_page_table_and_csv(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True).new_page()
        page.set_default_timeout(90_000)
        page.goto(f"{server}/measure")
        page.get_by_role("heading", name="Measure").first.wait_for()
        settle(page)
        page.get_by_role("button", name="Measure").last.click()
        page.get_by_text("nucleus objects").wait_for()
        settle(page)
        no_exception(page)
        assert page.locator("[data-testid='stMetricValue']").first.inner_text().strip() == "6"
        page.locator("[data-testid='stDataFrame']").first.wait_for()
        page.get_by_role("button", name="Prepare downloads: CSV, Excel, label TIFF, OME-Zarr labels").click()
        settle(page)
        with page.expect_download() as dl:
            page.get_by_role("button", name=re.compile(r"^CSV \(")).click()
        text = open(dl.value.path()).read()
        assert text.startswith("object,class,class_name,label") and text.count("\n") == 7
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "measure.png"), full_page=True)
        browser.close()
