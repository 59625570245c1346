"""The whole job in a real browser: Debian chromium driven by playwright against `streamlit run app.py`.

sample dataset -> draw a stroke on the canvas and save -> the mask on disk changed -> start a
1-epoch training -> the chart shows a point -> predict -> the error map appears -> download the
mask ZIP and check its names. Screenshots of each page go to ``test-artifacts/`` (or
``$SEGDASH_ARTIFACTS``).

The browser is Debian's ``/usr/bin/chromium``, never a downloaded one. Without it the test skips,
except with ``CI=true``, where it must run (``scripts/test.sh`` installs chromium).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SEGDASH_ARTIFACTS", ROOT / "test-artifacts"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _need_browser() -> None:
    missing = [what for what, ok in (("Debian chromium at /usr/bin/chromium", Path(CHROMIUM).exists()),
                                     ("python playwright", _has_playwright())) if not ok]
    if missing:
        if IN_CI:
            pytest.fail(f"CI=true but {', '.join(missing)} is missing: scripts/test.sh installs it")
        pytest.skip(f"{', '.join(missing)} not installed (scripts/test.sh installs it)")


def _has_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _need_browser()
    ws_root = tmp_path_factory.mktemp("ws")
    port = _free_port()
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws_root), "PYTHONUNBUFFERED": "1"}
    log = open(tmp_path_factory.mktemp("log") / "streamlit.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            break
    else:
        proc.kill()
        log.seek(0)
        pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
    yield url, ws_root
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.seek(0)
    text = log.read()
    assert "Traceback" not in text, text[-5000:]


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-dev-shm-usage"])
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        yield pg
        browser.close()


def _goto(page, url: str, path: str, heading: str) -> None:
    page.goto(f"{url}/{path}")
    page.get_by_role("heading", name=heading).first.wait_for()
    _settle(page)


def _settle(page, quiet_s: float = 1.0, timeout_s: float = 120) -> None:
    """Wait until Streamlit has finished running the script (no running indicator for a while)."""
    end = time.time() + timeout_s
    calm_since = None
    while time.time() < end:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        if running:
            calm_since = None
        elif calm_since is None:
            calm_since = time.time()
        elif time.time() - calm_since >= quiet_s:
            return
        time.sleep(0.2)


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _set_number(page, label: str, value) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    _settle(page, 0.5)


def test_sample_to_mask_zip(server, page):
    url, ws_root = server
    sys.path.insert(0, str(ROOT))
    from core.store.workspace import Workspace

    ws = Workspace(ws_root)

    # Home: the sample is there with no upload
    _goto(page, url, "", "SegDash")
    page.get_by_text("Dataset: isbi2012").wait_for()
    _no_exception(page)
    _shot(page, "01-home")

    _goto(page, url, "data", "Data")
    _no_exception(page)
    _shot(page, "02-data")

    # Label: the first unlabeled slice, one brush stroke, Save -> a mask on disk
    _goto(page, url, "label", "Label")
    page.get_by_role("button", name="Next unlabeled").click()
    _settle(page)
    z = 30  # test-00, the first unlabeled slice of the sample
    assert ws.read_mask("isbi2012", z) is None
    canvas = page.locator("canvas").last
    canvas.wait_for()
    time.sleep(1)
    box = canvas.bounding_box()
    scale = box["width"] / 512
    page.mouse.move(box["x"] + 100 * scale, box["y"] + 100 * scale)
    page.mouse.down()
    for i in range(1, 31):
        page.mouse.move(box["x"] + (100 + 5 * i) * scale, box["y"] + 100 * scale)
    page.mouse.up()
    time.sleep(1.5)
    _settle(page)
    _shot(page, "03-label-stroke")
    page.get_by_role("button", name="Save (Ctrl+S)", exact=True).click()
    _settle(page)
    deadline = time.time() + 30
    while ws.read_mask("isbi2012", z) is None and time.time() < deadline:
        time.sleep(0.5)
    mask = ws.read_mask("isbi2012", z)
    assert mask is not None, "Save did not write a mask"
    assert mask[100, 150] == 1 and mask[100, 200] == 1, "the stroke is not where it was drawn"
    assert ws.dataset("isbi2012").statuses[z] == "labeled"
    _no_exception(page)
    _shot(page, "04-label-saved")

    _goto(page, url, "augment", "Augment")
    _no_exception(page)
    _shot(page, "05-augment")

    # Train: a tiny 1-epoch run; the live chart shows a point
    _goto(page, url, "train", "Train")
    _set_number(page, "Epochs", 1)
    _set_number(page, "Patch size (px)", 128)
    _set_number(page, "Batch size", 2)
    adv = page.get_by_text("More settings", exact=False)
    if adv.count() and not page.get_by_label("Steps per epoch", exact=True).is_visible():
        adv.first.click()
    _set_number(page, "Steps per epoch", 2)
    page.get_by_role("button", name="Start training").click()
    deadline = time.time() + 400
    while time.time() < deadline:
        runs = ws.catalog.runs("isbi2012")
        if runs and runs[0]["state"] in ("done", "failed", "stopped"):
            break
        time.sleep(2)
    runs = ws.catalog.runs("isbi2012")
    assert runs and runs[0]["state"] == "done", runs[:1]
    assert ws.catalog.epochs(runs[0]["run_id"]), "no epoch metrics recorded"
    page.locator(".js-plotly-plot .scatterlayer .trace").first.wait_for(timeout=60_000)
    page.locator(".js-plotly-plot .scatterlayer .point").first.wait_for(timeout=60_000)
    _settle(page)
    _no_exception(page)
    _shot(page, "06-train")

    # Predictions: predict with that run, the error map and its legend appear
    _goto(page, url, "predictions", "Predictions")
    page.get_by_role("button", name="Predict").click()
    page.get_by_text("false positive", exact=False).first.wait_for(timeout=300_000)
    _settle(page)
    page.get_by_text("Error map", exact=False).first.wait_for()
    # image, mask, prediction, error map, uncertainty: one figure whose pictures zoom and pan together
    assert page.locator("[data-testid='stPlotlyChart'] .js-plotly-plot image").count() >= 3
    _no_exception(page)
    _shot(page, "07-predictions")

    # Export: the mask ZIP is named like the slices, the new mask included
    _goto(page, url, "export", "Export")
    page.get_by_role("button", name="Prepare").first.click()
    _settle(page)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download").first.click()
    target = ARTIFACTS / "masks.zip"
    dl.value.save_as(target)
    names = zipfile.ZipFile(target).namelist()
    assert names[:2] == ["train-00.png", "train-01.png"]
    assert "test-00.png" in names and len(names) == 31
    _no_exception(page)
    _shot(page, "08-export")
    shutil.copy(target, ARTIFACTS / "masks-downloaded.zip")
