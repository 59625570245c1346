"""Model files whose members expand to gigabytes are refused from the ZIP directory, cheaply (issue 25.2).

A 1 MB package with a 1 GiB TorchScript member and a 1.5 MB ``bundle.zip`` with a 1.5 GiB ``model.pt``
go through ``python -m core predict`` in a fresh process: exit status 2, one ``error:`` line naming the
member, and a peak RSS under 500 MB (the child's own ``VmHWM``, as in ``test_hostile.py``). The same
files through ``load_checkpoint`` after torch is imported (``_load_rss.py``) add under 100 MB to the
process's peak. A checkpoint larger than the limit is refused from its size on disk.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from core.data.zips import read_capped
from core.nn.checkpoint import load_checkpoint
from tests.synthetic import tiny_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile_models import zip_with_zeros  # noqa: E402 - a helper beside this file

ROOT = Path(__file__).resolve().parents[2]
MAX_RSS = 500 * 1024**2
GiB = 1024**3

# ``python -m core ARGS`` that writes its own /proc/self/status to argv[1] when it exits
_CHILD = """import atexit, runpy, sys
path = sys.argv.pop(1)
atexit.register(lambda: open(path, "w").write(open("/proc/self/status").read()))
sys.argv[0] = "core"
runpy.run_module("core", run_name="__main__", alter_sys=True)
"""


def _peak_rss(status_file: Path) -> int:
    for line in status_file.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM in {status_file}")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile-models")
    rdf = {"type": "model", "format_version": "0.5.4", "name": "bomb", "weights": {}}
    rdf["weights"]["torchscript"] = {"source": "weights_torchscript.pt", "pytorch_version": "2.5"}
    rdf["config"] = {"segdash": {"model_config": {"arch": "classic"}, "class_names": ["a", "b"], "norm_window": [0, 1]}}
    package = zip_with_zeros(
        d / "model.zip", {"rdf.yaml": json.dumps(rdf).encode(), "README.md": b"# bomb\n"}, "weights_torchscript.pt", GiB
    )
    bundle = zip_with_zeros(
        d / "bundle.zip", {"config.json": b"{}", "metrics.csv": b"epoch\n"}, "model.pt", 3 * GiB // 2
    )
    stack = d / "in.tif"
    tifffile.imwrite(stack, np.zeros((1, 32, 32), np.uint8), photometric="minisblack")
    return {"package": package, "bundle": bundle, "stack": stack}


def test_the_files_are_what_the_issue_describes(files):
    assert files["package"].stat().st_size < 1.2e6 and files["bundle"].stat().st_size < 1.6e6
    with zipfile.ZipFile(files["bundle"]) as zf:
        assert zf.getinfo("model.pt").file_size == 3 * GiB // 2


@pytest.mark.parametrize("which, member", [("package", "weights_torchscript.pt"), ("bundle", "model.pt")])
def test_predict_refuses_a_bomb_cheaply(files, which, member, tmp_path):
    env = {**os.environ, "SEGDASH_WORKSPACE": str(tmp_path / "ws"), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    hwm = tmp_path / "status.txt"
    args = [
        "predict",
        "--checkpoint",
        str(files[which]),
        "--input",
        str(files["stack"]),
        "--out",
        str(tmp_path / "m.tif"),
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(hwm), *args, "--trust-code"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert f"{files[which].name}:{member}" in lines[0] and "refused" in lines[0], lines[0]
    rss = _peak_rss(hwm)
    assert rss < MAX_RSS, f"peak RSS {rss / 1e6:.0f} MB"
    assert not (tmp_path / "m.tif").exists()


@pytest.mark.parametrize("which", ["package", "bundle"])
def test_loading_a_bomb_after_torch_adds_little_memory(files, which):
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "core" / "_load_rss.py"), str(files[which])],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["refused"] and "refused" in result["message"], result
    assert result["growth"] < 100 * 1024**2, result


def test_a_checkpoint_larger_than_the_limit_is_refused_from_its_size(tmp_path):
    huge = tmp_path / "huge.pt"
    with open(huge, "wb") as fh:  # sparse: 5 GiB on paper, nothing on disk
        fh.truncate(5 * GiB)
    with pytest.raises(ValueError, match=r"huge\.pt: a model file of 5\.4 GB, more than the limit"):
        load_checkpoint(huge)


def test_the_limit_is_an_environment_setting(tmp_path):
    ck = tiny_checkpoint(tmp_path / "best.pt", width=4)
    code = "from core.nn.checkpoint import load_checkpoint; load_checkpoint({!r})".format(str(ck))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SEGDASH_MODEL_MAX_BYTES": "1000"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode != 0 and "more than the limit of 1 KB" in out.stderr
    assert load_checkpoint(ck).class_names == ("bg", "fg")  # within the default limit


def test_a_member_is_read_in_a_stream_that_stops_at_its_cap():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("w.pt", bytes(3_000_000))
    with zipfile.ZipFile(buf) as zf:
        info = zf.getinfo("w.pt")
        assert read_capped(zf, info, "x.zip", 4_000_000) == bytes(3_000_000)
        with pytest.raises(ValueError, match=r"x\.zip:w\.pt: 3\.0 MB once decompressed, more than the limit"):
            read_capped(zf, info, "x.zip", 1_000_000)
        info.file_size = 1_000  # a directory entry that lies about the size
        with pytest.raises(ValueError, match=r"x\.zip:w\.pt: (larger than the ZIP's directory says|cannot be read)"):
            read_capped(zf, info, "x.zip", 4_000_000)
