"""core.nn.bioimageio: a checkpoint as a bioimage.io model package, validated offline by bioimageio.core,
and the package read back as a model that predicts the same masks."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import yaml

from core.data.intensity import normalize
from core.nn.bioimageio import is_package, load_package
from core.nn.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from core.nn.model import ModelConfig, build_model
from core.predict.config import PredictConfig
from core.predict.inferer import predict_slice
from core.predict.stack import predict_stack
from core.store.workspace import Workspace
from core.workflow.model_export import export_bioimageio, test_package
from tests.synthetic import discs

ROOT = Path(__file__).resolve().parents[2]


def _checkpoint(ws: Workspace, path: Path, n_classes: int, seed: int = 0) -> Path:
    """A checkpoint of an untrained (random) classic U-Net 'trained' on the workspace's dataset ``toy``:
    its probabilities vary around the class boundaries, the hardest case for a round trip."""
    torch.manual_seed(seed)
    cfg = ModelConfig(arch="classic", classic_width=4, n_classes=n_classes)
    names = ["background", "cell", "nucleus"][:n_classes]
    model = build_model(cfg).eval()
    with torch.no_grad():  # centre the logits on the data so that every class is predicted somewhere
        x = torch.from_numpy(normalize(ws.read_slice("toy", 0)[:96, :96], (40.0, 220.0)))[None, None]
        model.head.bias -= model(x).median(dim=-1).values.median(dim=-1).values[0]
    return save_checkpoint(
        path,
        model,
        cfg,
        class_names=names,
        norm_window=(40.0, 220.0),
        patch_size=32,
        epoch=2,
        metrics={"val_dice": 0.5},
        run_id="toy-run",
        extra={"dataset": "toy", "val_slices": [1], "train_slices": [0, 2], "train_config": {"epochs": 2}},
    )


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    rng = np.random.default_rng(0)
    pairs = [discs(rng, 96, 150) for _ in range(3)]
    ws.create_dataset("toy", np.stack([p[0] for p in pairs]), [p[1] for p in pairs], class_names=["bg", "cell"])
    return ws


@pytest.fixture(scope="module")
def binary(ws, tmp_path_factory):
    d = tmp_path_factory.mktemp("binary")
    ck = _checkpoint(ws, d / "best.pt", 2)
    summary = export_bioimageio(
        ck, d / "model.zip", workspace=ws, authors=["Ann Example", "Bo Example"], license="MIT", name="toy cells"
    )
    return ck, Path(summary["out"]), summary


def test_package_passes_bioimageio_test_model_offline(binary, monkeypatch):
    _, pkg, summary = binary
    assert summary["weights"] == ["pytorch_state_dict", "torchscript", "onnx"] and summary["onnx"]

    def no_network(*args, **kwargs):
        raise OSError("network access in an offline test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    result = test_package(pkg)
    assert result == {"status": "passed", "failed": []}


def test_package_describes_model_normalisation_and_data(binary):
    ck, pkg, summary = binary
    with zipfile.ZipFile(pkg) as zf:
        names = set(zf.namelist())
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        x = np.load(zf.open("test_input.npy"))
        y = np.load(zf.open("test_output.npy"))
        config = json.loads(zf.read("segdash_config.json"))
    assert {
        "rdf.yaml",
        "cover.png",
        "README.md",
        "segdash_config.json",
        "weights_torchscript.pt",
        "weights.onnx",
        "weights_state_dict.pt",
        "segdash_unet.py",
    } <= names
    assert rdf["type"] == "model" and rdf["name"] == "toy cells" and rdf["license"] == "MIT"
    assert [a["name"] for a in rdf["authors"]] == ["Ann Example", "Bo Example"]
    (inp,), (out,) = rdf["inputs"], rdf["outputs"]
    assert [a.get("id", a["type"]) for a in inp["axes"]] == ["batch", "channel", "y", "x"]
    # the classic U-Net's input multiple; the smallest input leaves room for the output halo on both sides
    assert inp["axes"][2]["size"] == {"min": 16 + 2 * 16, "step": 16}
    assert [a["halo"] for a in out["axes"][2:]] == [16, 16]
    pre = {p["id"]: p.get("kwargs", {}) for p in inp["preprocessing"]}
    lo, hi = 40.0, 220.0
    assert pre["scale_linear"]["gain"] == pytest.approx(1 / (hi - lo))
    assert pre["scale_linear"]["offset"] == pytest.approx(-lo / (hi - lo))
    assert pre["clip"] == {"min": 0.0, "max": 1.0}
    assert out["axes"][1]["channel_names"] == ["background", "cell"]
    assert "argmax" in out["description"]
    seg = rdf["config"]["segdash"]
    assert (
        seg["norm_window"] == [lo, hi]
        and seg["training_dataset"] == "toy"
        and seg["class_names"] == ["background", "cell"]
    )
    assert config["dataset"] == "toy" and config["train_config"] == {"epochs": 2}
    # the test input is a crop of the training data (a validation slice), raw intensities
    assert x.shape == (1, 1, 96, 96) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert y.shape == (1, 2, 96, 96) and np.allclose(y.sum(axis=1), 1, atol=1e-5)
    assert summary["test_shape"] == [1, 1, 96, 96]


def test_test_input_is_cut_from_a_training_slice(binary, ws):
    _, pkg, _ = binary
    with zipfile.ZipFile(pkg) as zf:
        x = np.load(zf.open("test_input.npy"))[0, 0]
    img = ws.read_slice("toy", 1)  # the checkpoint's validation slice, centre crop
    y0, x0 = (img.shape[0] - 96) // 2, (img.shape[1] - 96) // 2
    assert np.array_equal(x, img[y0 : y0 + 96, x0 : x0 + 96].astype(np.float32))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_round_trip_predicts_the_same_masks(ws, tmp_path, n_classes):
    ck = _checkpoint(ws, tmp_path / "best.pt", n_classes, seed=n_classes)
    pkg = Path(export_bioimageio(ck, tmp_path / "model.zip", workspace=ws, authors=["Ann"], onnx=False)["out"])
    assert is_package(pkg) and not is_package(ck)  # a .pt is a ZIP too, without rdf.yaml
    original, loaded = load_checkpoint(ck), load_checkpoint(pkg)
    # the state dict, loaded as data into SegDash's own network; the TorchScript is never loaded
    assert type(loaded.model) is type(original.model) and loaded.extra["weights"] == "pytorch_state_dict"
    assert loaded.class_names == original.class_names and loaded.norm_window == original.norm_window
    assert loaded.model_config == original.model_config
    stack = ws.read_images("toy")
    cfg = PredictConfig(tile=64, overlap=0.25)  # tiled: several forward passes and blending
    a = predict_stack(original, stack, out_masks=tmp_path / "a.tif", out_prob=tmp_path / "ap.tif", cfg=cfg)
    b = predict_stack(loaded, stack, out_masks=tmp_path / "b.tif", out_prob=tmp_path / "bp.tif", cfg=cfg)
    ma, mb = tifffile.imread(a.masks_path), tifffile.imread(b.masks_path)
    assert ma.shape == (3, 96, 150) and len(np.unique(ma)) >= 2  # a real mix of classes, not one class
    assert np.array_equal(ma, mb)
    assert np.array_equal(tifffile.imread(a.prob_path), tifffile.imread(b.prob_path))
    pa, pb = predict_slice(original, stack[0]), predict_slice(loaded, stack[0])
    assert np.allclose(pa, pb, atol=1e-6)


def test_export_refusals(ws, tmp_path):
    ck = _checkpoint(ws, tmp_path / "best.pt", 2)
    with pytest.raises(ValueError, match="licence 'not-a-licence'"):
        export_bioimageio(ck, tmp_path / "m.zip", workspace=ws, authors=["Ann"], license="not-a-licence")
    with pytest.raises(ValueError, match="author"):
        export_bioimageio(ck, tmp_path / "m.zip", workspace=ws, authors=[" "])
    other = Workspace(tmp_path / "other")
    with pytest.raises(ValueError, match="'toy', which is not in the workspace"):
        export_bioimageio(ck, tmp_path / "m.zip", workspace=other, authors=["Ann"])
    assert not (tmp_path / "m.zip").exists()


def test_foreign_or_damaged_packages_are_refused(binary, tmp_path, ws):
    _, pkg, _ = binary
    with pytest.raises(ValueError, match="not a SegDash checkpoint: predict with it, or resume"):
        read_checkpoint_info(pkg)  # training resumes from checkpoints only
    with pytest.raises(ValueError, match="already a bioimage.io model package"):
        export_bioimageio(pkg, tmp_path / "again.zip", workspace=ws)
    with zipfile.ZipFile(pkg) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    rdf = yaml.safe_load(members["rdf.yaml"])

    def write(name, **changes):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w") as zf:
            for n, data in {**members, **changes}.items():
                zf.writestr(n, data)
        return path

    del rdf["config"]["segdash"]
    with pytest.raises(ValueError, match="not exported by SegDash"):
        load_checkpoint(write("foreign.zip", **{"rdf.yaml": yaml.safe_dump(rdf)}))
    sd = bytearray(members["weights_state_dict.pt"])
    sd[-100] ^= 0xFF
    with pytest.raises(ValueError, match="state dict weights do not match their SHA-256"):
        load_checkpoint(write("damaged.zip", **{"weights_state_dict.pt": bytes(sd)}))
    ts = bytearray(members["weights_torchscript.pt"])
    ts[-100] ^= 0xFF
    rdf = yaml.safe_load(members["rdf.yaml"])
    del rdf["weights"]["pytorch_state_dict"]  # TorchScript only: loaded only when trusted, and checked first
    only_ts = write("damaged-ts.zip", **{"weights_torchscript.pt": bytes(ts), "rdf.yaml": yaml.safe_dump(rdf)})
    with pytest.raises(ValueError, match="TorchScript weights do not match their SHA-256"):
        load_checkpoint(only_ts, trust_code=True)
    with pytest.raises(ValueError, match="no rdf.yaml"):
        load_package(ck := _zip_without_rdf(tmp_path))
    assert not is_package(ck)


def _zip_without_rdf(tmp_path):
    path = tmp_path / "plain.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", "x")
    return path


def _cli(*args, ws):
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


@pytest.mark.slow  # four subprocesses, each importing torch
def test_cli_export_model_then_predict_with_the_package(ws, tmp_path):
    ck = _checkpoint(ws, tmp_path / "best.pt", 2)
    assert _cli("export-model", "--help", ws=ws.root).returncode == 0
    out = _cli(
        "export-model",
        "--checkpoint",
        str(ck),
        "--format",
        "bioimageio",
        "--out",
        str(tmp_path / "m.zip"),
        "--authors",
        "Ann Example",
        "--license",
        "CC0-1.0",
        "--name",
        "cli model",
        "--no-onnx",
        ws=ws.root,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (
        summary["name"] == "cli model"
        and summary["weights"] == ["pytorch_state_dict", "torchscript"]
        and summary["license"] == "CC0-1.0"
    )
    tifffile.imwrite(tmp_path / "in.tif", ws.read_images("toy"), photometric="minisblack")
    for src, dst in ((ck, "a.tif"), (tmp_path / "m.zip", "b.tif")):
        out = _cli(
            "predict",
            "--checkpoint",
            str(src),
            "--input",
            str(tmp_path / "in.tif"),
            "--out",
            str(tmp_path / dst),
            ws=ws.root,
        )
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout.strip().splitlines()[-1])["slices"] == 3
    assert np.array_equal(tifffile.imread(tmp_path / "a.tif"), tifffile.imread(tmp_path / "b.tif"))

    out = _cli(
        "export-model",
        "--checkpoint",
        str(ck),
        "--out",
        str(tmp_path / "x.zip"),
        "--authors",
        "Ann",
        "--license",
        "nope",
        ws=ws.root,
    )
    assert out.returncode == 2 and out.stderr.strip().splitlines()[-1].startswith("error: unknown licence")
    assert "Traceback" not in out.stderr and not (tmp_path / "x.zip").exists()


def test_training_data_pixel_size_is_the_axes_scale(tmp_path):
    ws = Workspace(tmp_path / "ws")
    rng = np.random.default_rng(3)
    pairs = [discs(rng, 64, 64) for _ in range(3)]
    ws.create_dataset("toy", np.stack([p[0] for p in pairs]), [p[1] for p in pairs], class_names=["bg", "cell"])
    ws.catalog.set_pixel_size("toy", 1.0, 0.25, 0.25, "micrometer")
    ck = _checkpoint(ws, tmp_path / "best.pt", 2)
    pkg = export_bioimageio(ck, tmp_path / "m.zip", workspace=ws, authors=["Ann"], onnx=False)["out"]
    with zipfile.ZipFile(pkg) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
    for tensor in (rdf["inputs"][0], rdf["outputs"][0]):
        for axis in tensor["axes"][2:]:
            assert axis["scale"] == 0.25 and axis["unit"] == "micrometer"
