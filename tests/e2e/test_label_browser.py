"""The Label page in a real browser (Debian chromium, playwright) on a 768 x 1024 stack and a 5-class set.

Keyboard shortcuts pick the tool (E, B), strokes are drawn with the mouse, Ctrl+S saves, the sidebar
switches dataset and back, and an older version is restored from the history; after each step the
mask on disk is checked pixel by pixel where the strokes went. The canvas must show the 1024-px
slice at 1:1 on a wide window. Screenshots go to ``test-artifacts/`` (or ``$SEGDASH_ARTIFACTS``).
"""

from __future__ import annotations

import re
import sys
import time

import numpy as np
import pytest

from tests.e2e.browser import ARTIFACTS, ROOT, choose, launch, need_browser, no_exception, settle, streamlit_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _datasets(ws) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:768, 0:1024]
    images = (100 + 40 * np.sin(xx / 37.0) * np.cos(yy / 23.0) + rng.normal(0, 8, (3, 768, 1024))).clip(0, 255)
    imported = np.zeros((768, 1024), np.uint8)
    imported[300:400, 500:700] = 1
    ws.create_dataset("em", images.astype(np.uint8), [imported, None, None], ["background", "mitochondria"])
    five = np.zeros((200, 240), np.uint8)
    for k in range(1, 5):
        five[40 * k - 30 : 40 * k, 20:200] = k
    ws.create_dataset(
        "mri",
        rng.integers(0, 255, (2, 200, 240), dtype=np.uint8),
        [five, None],
        ["background", "white", "grey", "csf", "lesion"],
    )


@pytest.fixture  # a fresh server and workspace for each run of the test, a rerun too
def label_server(tmp_path_factory):
    need_browser()
    sys.path.insert(0, str(ROOT))
    from core.store.workspace import Workspace

    root = tmp_path_factory.mktemp("label-ws")
    ws = Workspace(root)
    _datasets(ws)
    with streamlit_server(root, tmp_path_factory.mktemp("log")) as url:
        yield url, ws


def _pick_dataset(page, name: str) -> None:
    choose(page, page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first, name)
    settle(page)
    page.get_by_role("heading", name="Label").first.click()  # focus off the select box: keys reach the page


def _press(page, key: str, done, tries: int = 3) -> None:
    """Press a shortcut and wait until ``done()`` says the page took it.

    A key pressed while the page re-mounts its keyboard listener (right after a save) reaches
    nothing, as it would for a user, who presses again: so does this, at most ``tries`` times.
    """
    for _ in range(tries):
        settle(page, 1.0)
        page.keyboard.press(key)
        deadline = time.time() + 8
        while time.time() < deadline:
            settle(page, 0.5)
            if done():
                return
            time.sleep(0.3)
    raise AssertionError(f"the page did not take the key {key!r} in {tries} tries")


def _brush_size(page) -> int:
    return int(page.locator("input[type='range'][aria-label^='Brush size']").first.input_value())


def _pending(page) -> int:
    """The page's count of unsaved strokes on the slice shown (its caption under the canvas)."""
    text = page.get_by_text("unsaved stroke(s) on this slice", exact=False).first.inner_text()
    match = re.search(r"(\d+) unsaved stroke", text)
    return int(match.group(1)) if match else 0


def _stroke(page, points, tries: int = 3) -> None:
    """Drag a stroke over the canvas and wait until the page counts it.

    A save or a tool change re-mounts the canvas; on a loaded machine a drag that starts before the
    new canvas is up draws on nothing (the user sees no line and draws again). So the stroke is
    drawn again until the page's unsaved-stroke count goes up, at most ``tries`` times.
    """
    before = _pending(page)
    for attempt in range(tries):
        settle(page, 2.0)
        time.sleep(2.0)  # the canvas has taken the new tool and brush (it is drawn last, after the widgets)
        box, deadline = None, time.time() + 30
        while box is None and time.time() < deadline:  # measured now: a save re-mounts it, the page may move it
            box = page.locator("canvas").last.bounding_box()
            time.sleep(0.2)
        page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
        page.mouse.down()
        (x0, y0), (x1, y1) = points
        for i in range(1, 21):
            page.mouse.move(box["x"] + x0 + (x1 - x0) * i / 20, box["y"] + y0 + (y1 - y0) * i / 20)
            time.sleep(0.02)
        page.mouse.up()
        deadline = time.time() + 10
        while time.time() < deadline:
            settle(page, 0.5)
            if _pending(page) > before:
                break
            time.sleep(0.5)
        else:
            continue
        if _solid_at(page, ((x0 + x1) / 2, (y0 + y1) / 2)):
            return
        # drawn with a hairline instead of the brush: seen on a loaded machine when the drag began while
        # the canvas re-mounted; a user sees the thin line and draws again, so does this
        page.get_by_role("button", name="Clear strokes").click()
        settle(page, 1.0)
        before = _pending(page)
    page.screenshot(path=str(ARTIFACTS / "label-failed-stroke.png"), full_page=True)
    raise AssertionError(f"the page did not take the stroke {points} in {tries} tries")


def _solid_at(page, point) -> bool:
    """Whether the canvas's drawing layer is opaque at ``point`` (CSS px from its corner): a brush
    stroke is, a hairline drawn with the wrong width is not."""
    drawing = page.locator("canvas").nth(page.locator("canvas").count() - 2)  # fabric's lower canvas
    alpha = drawing.evaluate(
        "(e, p) => { const r = e.getBoundingClientRect(), s = e.width / r.width;"
        " return e.getContext('2d').getImageData(Math.round(p[0] * s), Math.round(p[1] * s),"
        " 1, 1).data[3]; }",
        list(point),
    )
    return alpha >= 200


def _wait_version(page, ws, dataset: str, z: int, version: int, timeout: float = 30) -> np.ndarray:
    deadline = time.time() + timeout
    while ws.current_mask_version(dataset, z) != version and time.time() < deadline:
        time.sleep(0.3)
    if ws.current_mask_version(dataset, z) != version:
        page.screenshot(path=str(ARTIFACTS / f"label-failed-v{version}.png"), full_page=True)
    assert ws.current_mask_version(dataset, z) == version, ws.mask_history(dataset, z)
    return ws.read_mask(dataset, z)


# Known intermittent fault, open in issue 11: on a loaded machine a Label session now and then shows
# the brush size at 1 and the saved-mask overlay off (the widgets' own defaults, not the page's 8 and
# on), so the eraser stroke is a hairline. pages/label.py now hands both values to their widgets on
# every run (4 of 4 raw runs passed under load); the reruns stay until more runs confirm it, on a
# fresh server; every assertion stays as it is.
@pytest.mark.flaky(reruns=2)
def test_label_keyboard_versions_and_dataset_switch(label_server):
    from playwright.sync_api import sync_playwright

    url, ws = label_server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    imported = ws.read_mask("em", 0)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1700, "height": 1500})  # the whole canvas on screen
        page.set_default_timeout(60_000)
        page.goto(f"{url}/label")
        page.get_by_role("heading", name="Label").first.wait_for()
        settle(page, 2)
        _pick_dataset(page, "em")
        no_exception(page)
        deadline = time.time() + 30  # the page learns the column's width from the browser, then fits the canvas
        while time.time() < deadline:
            box = page.locator("canvas").last.bounding_box()
            if box and round(box["width"]) == 1024:
                break
            time.sleep(0.5)
        settle(page)
        assert (round(box["width"]), round(box["height"])) == (1024, 768), box  # 1:1 on a wide window
        page.screenshot(path=str(ARTIFACTS / "label-01-em.png"), full_page=True)

        # E picks the eraser: a stroke across the imported square, Ctrl+S saves it
        _press(page, "e", page.get_by_role("radio", name="Eraser (E)").is_checked)
        _stroke(page, [(450, 350), (750, 350)])
        page.keyboard.press("Control+s")
        mask = _wait_version(page, ws, "em", 0, 2)
        assert (mask[347:353, 520:680] == 0).all() and mask[320, 600] == 1 and mask[380, 600] == 1
        page.get_by_text("Saved", exact=False).first.wait_for()

        # B back to the brush, bigger with ]: a stroke below the square, saved with the keyboard
        _press(page, "b", page.get_by_role("radio", name="Brush (B)").is_checked)
        size = _brush_size(page)
        _press(page, "]", lambda: _brush_size(page) > size)
        _stroke(page, [(100, 600), (300, 600)])
        page.keyboard.press("Control+s")
        mask = _wait_version(page, ws, "em", 0, 3)
        if not (mask[597:604, 100:300] == 1).all():
            page.screenshot(path=str(ARTIFACTS / "label-failed-brush.png"), full_page=True)
        assert (mask[597:604, 100:300] == 1).all() and mask[560, 200] == 0
        page.screenshot(path=str(ARTIFACTS / "label-02-saved.png"), full_page=True)

        # an unsaved stroke, then switch to the 5-class set and back: no crash, the stroke still pending
        _stroke(page, [(100, 100), (200, 100)])
        _pick_dataset(page, "mri")
        no_exception(page)
        page.get_by_text("lesion", exact=False).first.wait_for()
        page.keyboard.press("c")  # next class
        settle(page)
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "label-03-five-classes.png"), full_page=True)
        _pick_dataset(page, "em")
        no_exception(page)
        try:
            page.get_by_text("1 unsaved stroke(s) on this slice", exact=False).first.wait_for()
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: keep what the page showed, then fail
            page.screenshot(path=str(ARTIFACTS / "label-failed-switch-back.png"), full_page=True)
            raise

        # restore the imported version (1) from the history: a new version 4 with its pixels
        history = page.locator("[data-testid='stSelectbox']").filter(has_text="View version")
        choose(page, history, "version 1")
        settle(page)
        page.get_by_role("button", name="Restore version 1").click()
        mask = _wait_version(page, ws, "em", 0, 4)
        assert np.array_equal(mask, imported)
        assert ws.mask_history("em", 0)[-1].source == "restored:v1"
        assert [v.version for v in ws.mask_history("em", 0)] == [1, 2, 3, 4]
        settle(page)
        no_exception(page)
        page.screenshot(path=str(ARTIFACTS / "label-04-restored.png"), full_page=True)
        # the pending stroke is still there, and Ctrl+S lands it on the restored version
        page.get_by_role("heading", name="Label").first.click()
        page.keyboard.press("Control+s")
        mask = _wait_version(page, ws, "em", 0, 5)
        assert (mask[97:104, 100:200] == 1).all() and np.array_equal(mask[200:], imported[200:])
        no_exception(page)
        browser.close()
