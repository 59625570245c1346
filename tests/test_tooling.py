"""Repository checks: ruff's lint and format (configured in pyproject.toml) pass on the whole tree."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREE = ["app.py", "conftest.py", "core", "pages", "tests", "benchmarks"]


def _ruff() -> str:
    ruff = shutil.which("ruff")
    if ruff is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("CI=true but ruff is missing: scripts/test.sh installs requirements-test.txt")
        pytest.skip("ruff not installed (scripts/test.sh installs it)")
    return ruff


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    out = subprocess.run([_ruff(), *command, *TREE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
