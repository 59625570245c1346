"""What the browser tests share: Debian chromium, a `streamlit run app.py` server on a free port,
waiting for Streamlit to settle. Not a test file (no ``test_`` prefix); the tests import it.

The browser is Debian's ``/usr/bin/chromium``, never a downloaded one. Without it the tests skip,
except with ``CI=true``, where they must run (``scripts/test.sh`` installs chromium).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("SEGDASH_ARTIFACTS", ROOT / "test-artifacts"))
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_browser() -> None:
    """Skip without chromium or playwright; fail instead under ``CI=true``."""
    missing = [
        what
        for what, ok in (
            ("Debian chromium at /usr/bin/chromium", Path(CHROMIUM).exists()),
            ("python playwright", _has_playwright()),
        )
        if not ok
    ]
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


def launch(playwright):
    """Debian's chromium, headless, as every browser test here starts it (never a downloaded browser)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
        ],
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(workspace: Path, log_dir: Path) -> Iterator[str]:
    """``streamlit run app.py`` on ``workspace``; yields its URL; at the end its log has no traceback."""
    port = free_port()
    env = {**os.environ, "SEGDASH_WORKSPACE": str(workspace), "PYTHONUNBUFFERED": "1"}
    log = open(Path(log_dir) / "streamlit.log", "w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline, up = time.time() + 120, False
    while not up and proc.poll() is None and time.time() < deadline:
        try:
            up = urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200
        except OSError:
            time.sleep(0.5)
    if not up:
        proc.kill()
        log.seek(0)
        pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.seek(0)
    text = log.read()
    assert "Traceback" not in text, text[-5000:]


def settle(page, quiet_s: float = 1.0, timeout_s: float = 120) -> None:
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


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']"
    ).first.inner_text()


def choose(page, select_box, option: str, tries: int = 3) -> None:
    """Open a Streamlit select box and pick ``option``.

    A click that lands while Streamlit redraws the box (a rerun still finishing) opens nothing;
    the box is clicked again until the option shows, instead of waiting out the full timeout.
    """
    item = page.get_by_role("option", name=option, exact=True)
    for attempt in range(tries):
        settle(page, 0.5)
        select_box.click()
        try:
            item.wait_for(state="visible", timeout=10_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: try the click again
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
    item.click()
