"""Hostile and malformed inputs through ``python -m core import``: refused cleanly, cheaply, leaving nothing.

Each case of ``hostile_corpus.build`` (written at test time) is imported in a fresh process; the
test asserts exit status 2, one ``error:`` line naming the file (``zip:member`` for a ZIP member),
no traceback, no file bytes or object reprs, nothing left in the workspace, and a peak RSS of the
process under 500 MB. The peak is the child's own ``VmHWM``, read by the child as it exits: its
``ru_maxrss`` would include the RSS of the forked copy of this (large) test process, which Linux
counts into the child's high-water mark at ``exec``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.store.workspace import Workspace
from core.workflow.sample import SAMPLE_MARKER

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_corpus import build, page_by_page  # noqa: E402 - a script beside this file, not a package

ROOT = Path(__file__).resolve().parents[2]
MAX_RSS = 500 * 1024**2
CASES = [
    "zip-many-zeros",
    "png-header-200000",
    "png-30000-zeros",
    "tiff-header-100000",
    "jpeg-header-65000",
    "zip-member-png-bomb",
    "zip-member-tiff-bomb",
    "zip-member-truncated-tiff",
    "folder-truncated-tiff",
    "truncated-tiff",
    "text-as-png",
    "empty-tiff",
    "empty-zip",
    "zip-of-text",
    "not-a-zip",
    "zip-unsafe-name",
    "mask-gapped-values",
    "threshold-merges-classes",
    "too-many-class-names",
    "images-look-like-masks",
    "planar-rgb-or-stack",
    "tiff-several-series",
    "tiff-trailing-axis-of-one",
    "tiff-all-nan",
    "zarr-linked-chunk",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("hostile"))


def run_import(args: list[str], ws: Path, tmp: Path) -> tuple[int, str, str, int]:
    """Run ``python -m core import`` in a fresh process; returns (status, stdout, stderr, peak RSS bytes)."""
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    env.pop("SEGDASH_IMPORT_MEMORY", None)
    out, err, hwm = tmp / "stdout.txt", tmp / "stderr.txt", tmp / "status.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(hwm), "import", *args], stdout=o, stderr=e, env=env, cwd=ROOT
        )
    return proc.returncode, out.read_text(), err.read_text(), _peak_rss(hwm)


# ``python -m core ARGS`` that writes its own /proc/self/status to argv[1] when it exits
_CHILD = """import atexit, runpy, sys
path = sys.argv.pop(1)
atexit.register(lambda: open(path, "w").write(open("/proc/self/status").read()))
sys.argv[0] = "core"
runpy.run_module("core", run_name="__main__", alter_sys=True)
"""


def _peak_rss(status_file: Path) -> int:
    """``VmHWM`` (bytes) from a copy of ``/proc/<pid>/status``."""
    for line in status_file.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in {status_file}")


def empty_workspace(tmp: Path) -> Path:
    ws = tmp / "ws"
    ws.mkdir()
    (ws / SAMPLE_MARKER).write_text("no sample in these tests\n")  # nothing in the workspace but what an import adds
    return ws


def left_in(ws: Path) -> list[str]:
    """Everything under ``ws`` but the catalog and the sample marker."""
    keep = {SAMPLE_MARKER, "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "inbox", "datasets"}
    out = [str(p.relative_to(ws)) for p in ws.rglob("*") if p.relative_to(ws).parts[0] not in keep]
    datasets = ws / "datasets"
    if datasets.is_dir():
        out += [str(p.relative_to(ws)) for p in datasets.iterdir()]
    return out


@pytest.mark.parametrize("case", CASES)
def test_hostile_import_is_refused_cheaply_and_cleanly(corpus, case, tmp_path):
    c = corpus[case]
    ws = empty_workspace(tmp_path)
    status, stdout, stderr, rss = run_import(["--name", "victim", *c.args()], ws, tmp_path)
    lines = stderr.strip().splitlines()
    assert status == 2, (status, stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr and "BytesIO" not in stderr and " at 0x" not in stderr
    assert "b'" not in stderr and 'b"' not in stderr  # no file bytes
    assert c.names in lines[0], lines[0]
    if c.also:
        assert c.also in lines[0], lines[0]
    assert not stdout.strip()
    assert rss < MAX_RSS, f"{case}: peak RSS {rss / 1e6:.0f} MB"
    assert left_in(ws) == []
    assert Workspace(ws).dataset_names() == []


def test_corpus_holds_every_case(corpus):
    assert sorted(corpus) == sorted(CASES)


@pytest.mark.parametrize(
    "case, option",
    [
        ("mask-gapped-values", "--remap-classes"),
        ("threshold-merges-classes", "--merge-classes"),
        ("images-look-like-masks", "--images-are-binary"),
        ("planar-rgb-or-stack", "--as-stack"),
        ("tiff-several-series", "--series 0"),
        ("tiff-trailing-axis-of-one", "--as-image"),
        ("tiff-trailing-axis-of-one", "--as-stack"),
    ],
)
def test_each_question_has_an_option_that_answers_it(corpus, case, option, tmp_path):
    c = corpus[case]
    ws = empty_workspace(tmp_path)
    args = ["--images", str(c.images)] if case == "images-look-like-masks" else c.args()  # binary images alone
    status, stdout, stderr, _ = run_import(["--name", "answered", *args, *option.split()], ws, tmp_path)
    assert status == 0, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["dataset"] == "answered"
    if case == "mask-gapped-values":
        assert summary["classes"] == ["background", "class 1", "class 2", "class 3"]
    if case == "planar-rgb-or-stack":
        assert summary["slices"] == 3
    if case == "tiff-several-series":
        assert summary["slices"] == 4 and summary["shape"] == [4, 32, 32]
    if case == "tiff-trailing-axis-of-one":
        assert summary["shape"] == ([1, 5, 100] if option == "--as-image" else [5, 100, 1])


def test_a_tiff_written_page_by_page_imports_every_page(tmp_path):
    ws = empty_workspace(tmp_path)
    path = page_by_page(tmp_path / "pages.tif")
    status, stdout, stderr, _ = run_import(["--name", "pages", "--images", str(path)], ws, tmp_path)
    assert status == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["slices"] == 20
    assert "notice: pages.tif: its 20 pages" in stderr
