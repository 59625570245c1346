"""SegDash as a package (issue 28.4): ``pip install .`` gives the ``segdash`` command (the subcommands of
``python -m core``), ``--version``; import and export show a progress bar with an ETA on a terminal, on
standard error only, and nothing when piped or with ``-q``."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import __version__
from core.cli import main, version
from core.commands._common import stage_progress
from core.workflow.export import export_dataset_omezarr
from tests.synthetic import discs

ROOT = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_version_is_the_package_metadata_or_the_constant(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"python -m core {version()}"
    assert version() == __version__  # the checkout's constant (or the same version installed)


def test_progress_is_a_bar_with_an_eta_on_a_terminal_and_quiet_otherwise(monkeypatch):
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    bar = stage_progress("export")
    for done in range(1, 11):
        bar(done, 10, "images")
    text = term.getvalue()
    assert "\r" in text and "export images [" in text and "10/10" in text and "ETA" in text
    assert text.endswith("\n")  # the finished bar leaves its line
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    quiet = stage_progress("export", quiet=True)
    quiet(5, 10, "images")
    assert term.getvalue() == ""
    piped = io.StringIO()  # not a terminal
    monkeypatch.setattr(sys, "stderr", piped)
    stage_progress("import")(5, 10, "images")
    assert piped.getvalue() == ""


def test_omezarr_export_reports_its_progress(ws, tmp_path):
    rng = np.random.default_rng(0)
    pairs = [discs(rng, 64, 64) for _ in range(3)]
    ws.create_dataset("d", np.stack([p[0] for p in pairs]), [pairs[0][1], None, None], class_names=["bg", "fg"])
    calls: list[tuple[int, int, str]] = []
    export_dataset_omezarr(ws, "d", tmp_path / "d.zarr", progress=lambda *a: calls.append(a))
    stages = {stage: (done, total) for done, total, stage in calls}
    assert set(stages) == {"images (level 1/1)", "masks (level 1/1)"}  # 64 px: no smaller level
    assert all(done == total > 0 for done, total in stages.values())


def test_cli_import_and_export_keep_stdout_to_the_json_line(ws, tmp_path, capsys):
    rng = np.random.default_rng(1)
    pairs = [discs(rng, 64, 64) for _ in range(2)]
    ws.create_dataset("d", np.stack([p[0] for p in pairs]), [pairs[0][1], None], class_names=["bg", "fg"])
    out = tmp_path / "d.zarr"
    assert (
        main(["export", "--workspace", str(ws.root), "--dataset", "d", "--format", "ome-zarr", "--out", str(out)]) == 0
    )
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip())["format"] == "ome-zarr" and "[" not in captured.err  # piped: no bar
    args = ["import", "--workspace", str(ws.root), "--name", "e", "--images", str(out), "--masks"]
    assert main([*args, str(out / "labels" / "masks"), "-q"]) == 0
    summary = json.loads(capsys.readouterr().out.strip())
    assert summary["labeled"] == 1 and summary["classes"] == ["bg", "fg"]


@pytest.mark.slow  # a venv and a wheel build: about a minute
def test_pip_install_gives_a_working_segdash_command(tmp_path):
    """In a fresh venv that sees the installed dependencies (--system-site-packages), ``pip install
    --no-deps --no-build-isolation`` (nothing downloaded: the build uses the setuptools already there)
    of a copy of the checkout gives ``segdash --version`` and ``segdash list``, outside the checkout."""
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", "workspace", "test-artifacts", "__pycache__", "*.egg-info", "build"),
    )
    venv = tmp_path / "venv"
    # --without-pip: the venv's own pip and setuptools would be those Python bundles (setuptools 65, no
    # bdist_wheel without the wheel package); the system's pip and setuptools, seen through
    # --system-site-packages, install into the venv all the same
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SEGDASH_WORKSPACE")}
    env["PIP_NO_INDEX"] = "1"  # never a download, whatever pip would like to fetch
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(src)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    segdash = venv / "bin" / "segdash"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(src)  # the installed package must not lean on the checkout it came from
    out = subprocess.run([str(segdash), "--version"], capture_output=True, text=True, env=env, cwd=elsewhere)
    assert out.returncode == 0 and out.stdout.strip() == f"segdash {__version__}", out.stderr
    out = subprocess.run(
        [str(segdash), "list", "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    listing = json.loads(out.stdout.strip().splitlines()[-1])
    assert [d["name"] for d in listing["datasets"]] == ["isbi2012"]  # the bundled sample came along
    check = subprocess.run(
        [str(py), "-c", "import core, importlib.util as u; print(core.__file__, u.find_spec('pages.home').origin)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=elsewhere,
    )
    assert check.returncode == 0, check.stderr[-2000:]
    assert all(str(venv) in path for path in check.stdout.split()), check.stdout  # both installed, in the venv
