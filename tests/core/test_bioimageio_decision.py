"""What a bioimage.io package carries besides its weights (issue 28.2): the tuned decision, so that
``predict --checkpoint best.pt`` and ``--checkpoint model.zip`` give the same masks; an output halo, so
that bioimageio.core's blockwise prediction joins without seams; authors (required), maintainers,
version and sample tensors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import yaml

from core.nn.checkpoint import load_checkpoint
from core.predict.stack import predict_headless
from core.store.workspace import Workspace
from core.workflow.model_export import export_bioimageio, output_halo
from tests.synthetic import discs, tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]
TUNED = {"threshold": 0.35, "min_size": 64, "hole_size": 16}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    rng = np.random.default_rng(5)
    pairs = [discs(rng, 128, 128) for _ in range(3)]
    ws.create_dataset("toy", np.stack([p[0] for p in pairs]), [p[1] for p in pairs], class_names=["bg", "cell"])
    return ws


@pytest.fixture(scope="module")
def tuned(ws, tmp_path_factory):
    """A checkpoint whose decision was 'tuned' (threshold 0.35, cleanup), exported with its metadata."""
    import torch

    from core.data.intensity import normalize
    from core.nn.model import ModelConfig, build_model

    d = tmp_path_factory.mktemp("tuned")
    torch.manual_seed(3)
    model = build_model(ModelConfig(arch="classic", classic_width=4)).eval()
    with torch.no_grad():  # logits centred on the data: both classes, many pixels near the threshold
        x = torch.from_numpy(normalize(ws.read_slice("toy", 0), (40.0, 220.0)))[None, None]
        model.head.bias -= model(x).median()
    ck = tiny_checkpoint(
        d / "best.pt",
        ("background", "cell"),
        width=4,
        patch_size=64,
        model=model,
        norm_window=(40.0, 220.0),
        extra={"dataset": "toy", "val_slices": [1]},
        decision=TUNED,
    )
    summary = export_bioimageio(
        ck,
        d / "model.zip",
        workspace=ws,
        authors=["Ann Lee"],
        maintainers=["annlee"],
        version="1.2.0",
        onnx=False,
    )
    return ck, Path(summary["out"]), summary


def _rdf(pkg: Path) -> dict:
    with zipfile.ZipFile(pkg) as zf:
        return yaml.safe_load(zf.read("rdf.yaml"))


def test_the_decision_travels_and_both_give_identical_masks(ws, tuned, tmp_path):
    ck, pkg, _ = tuned
    assert _rdf(pkg)["config"]["segdash"]["decision"] == {**TUNED, "class_weights": []}
    assert load_checkpoint(pkg).decision == load_checkpoint(ck).decision
    stack = tmp_path / "in.tif"
    tifffile.imwrite(stack, ws.read_images("toy"), photometric="minisblack")
    a = predict_headless(ck, stack, tmp_path / "a.tif", prob=tmp_path / "ap.tif")
    b = predict_headless(pkg, stack, tmp_path / "b.tif", prob=tmp_path / "bp.tif")
    ma, mb = tifffile.imread(tmp_path / "a.tif"), tifffile.imread(tmp_path / "b.tif")
    assert np.array_equal(ma, mb) and a["decision"] == b["decision"]
    assert np.array_equal(tifffile.imread(tmp_path / "ap.tif"), tifffile.imread(tmp_path / "bp.tif"))
    # the tuned decision is what made these masks: the default (0.5, no cleanup) gives others
    predict_headless(ck, stack, tmp_path / "c.tif", threshold=0.5, cleanup=False)
    assert not np.array_equal(ma, tifffile.imread(tmp_path / "c.tif"))


def test_the_package_readme_states_the_same_decision_and_halo(tuned):
    _, pkg, summary = tuned
    with zipfile.ZipFile(pkg) as zf:
        readme = zf.read("README.md").decode()
    assert "`P(cell) > 0.35`" in readme and "smaller than 64 pixels" in readme and "smaller than 16 pixels" in readme
    assert "config.segdash.decision" in readme and f"halo of {summary['halo']} pixels" in readme
    assert 'pip install bioimageio.core==0.11.0 "pydantic<2.14"' in readme


def test_metadata_authors_maintainers_version_and_sample_tensors(tuned):
    _, pkg, summary = tuned
    rdf = _rdf(pkg)
    assert [a["name"] for a in rdf["authors"]] == ["Ann Lee"]
    assert rdf["maintainers"] == [{"github_user": "annlee"}] and rdf["version"] == "1.2.0"
    inp, out = rdf["inputs"][0], rdf["outputs"][0]
    assert summary["halo"] == output_halo(64, 16) == 16
    assert [a.get("halo") for a in out["axes"][2:]] == [16, 16]
    assert inp["axes"][2]["size"] == {"min": 48, "step": 16}  # room for the halo on both sides
    with zipfile.ZipFile(pkg) as zf:
        x = tifffile.imread(zf.open(inp["sample_tensor"]["source"]))
        y = tifffile.imread(zf.open(out["sample_tensor"]["source"]))
        test_x = np.load(zf.open(inp["test_tensor"]["source"]))
    assert np.array_equal(x, test_x[0, 0]) and y.shape == (2, *x.shape)


def test_export_without_authors_is_refused(ws, tuned, tmp_path):
    ck, _, _ = tuned
    with pytest.raises(ValueError, match="needs at least one author"):
        export_bioimageio(ck, tmp_path / "m.zip", workspace=ws)
    with pytest.raises(ValueError, match="GitHub user names"):
        export_bioimageio(ck, tmp_path / "m.zip", workspace=ws, authors=["Ann"], maintainers=["not a name"])
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws.root), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    code = "import sys; from core.cli import main; rc = main(sys.argv[1:]); print('torch' in sys.modules); sys.exit(rc)"
    out = subprocess.run(
        [sys.executable, "-c", code, "export-model", "--checkpoint", str(ck), "--out", str(tmp_path / "m.zip")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr
    assert (
        out.stderr.strip().splitlines()[-1].startswith("error: a bioimage.io model needs its authors: give --authors")
    )
    assert out.stdout.strip() == "False"  # refused before torch is imported
    assert not (tmp_path / "m.zip").exists()


def _without_halo(pkg: Path, out: Path) -> Path:
    with zipfile.ZipFile(pkg) as src, zipfile.ZipFile(out, "w") as dst:
        rdf = yaml.safe_load(src.read("rdf.yaml"))
        for axis in rdf["outputs"][0]["axes"][2:]:
            del axis["halo"]
        for name in src.namelist():
            dst.writestr(name, yaml.safe_dump(rdf) if name == "rdf.yaml" else src.read(name))
    return out


def test_blockwise_prediction_equals_the_whole_image(tuned, tmp_path, monkeypatch):
    from bioimageio.core import load_description, predict

    def no_network(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    _, pkg, _ = tuned
    with zipfile.ZipFile(pkg) as zf:
        x = np.load(zf.open("test_input.npy"))  # (1, 1, 128, 128) raw intensities
    diffs = []
    for source in (pkg, _without_halo(pkg, tmp_path / "nohalo.zip")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = load_description(source, perform_io_checks=False)
            whole = predict(model=model, inputs=x).members["probabilities"].data.values
            # input blocks of 48 + 16 * 2 = 80 px: 3 x 3 blocks of 48 px inside a halo of 16 px
            blocks = predict(model=model, inputs=x, blocksize_parameter=2).members["probabilities"].data.values
        assert blocks.shape == whole.shape == (1, 2, 128, 128)
        diffs.append(float(np.abs(blocks - whole).max()))
    with_halo, without = diffs
    assert with_halo < 1e-5, diffs  # the blocks join without seams
    assert without > 10 * with_halo, diffs  # and it is the halo that does it
