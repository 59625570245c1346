"""The headless CLI: options, exit codes, last-line JSON, one-line errors (a public interface)."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from tests.synthetic import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def run(*args, ws):
    env = {**os.environ, "SEGDASH_WORKSPACE": str(ws), "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )


@pytest.fixture
def ws(tmp_path):
    return tmp_path / "ws"


def test_help_of_every_command(ws):
    for cmd in ("import", "export", "train", "predict", "list"):
        out = run(cmd, "--help", ws=ws)
        assert out.returncode == 0 and "usage: python -m core " + cmd in out.stdout


def test_fresh_workspace_has_the_sample_and_export_names_match(ws, tmp_path):
    out = run("list", ws=ws)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["datasets"][0]["name"] == "isbi2012" and summary["datasets"][0]["slices"] == 60
    target = tmp_path / "masks.zip"
    out = run("export", "--dataset", "isbi2012", "--format", "zip", "--out", str(target), ws=ws)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["out"] == str(target)
    names = zipfile.ZipFile(target).namelist()
    assert names[0] == "train-00.png" and len(names) == 30
    out = run("export", "--dataset", "isbi2012", "--format", "tiff", "--out", str(tmp_path / "m.tif"), ws=ws)
    assert out.returncode == 0 and tifffile.imread(tmp_path / "m.tif").shape == (60, 512, 512)
    labels = tifffile.TiffFile(tmp_path / "m.tif").imagej_metadata["Labels"]
    assert labels[0] == "train-00" and labels[30].endswith("(unlabeled)")  # one page per image slice
    out = run(
        "export", "--dataset", "isbi2012", "--format", "tiff", "--labeled-only", "--out", str(tmp_path / "l.tif"), ws=ws
    )
    assert out.returncode == 0 and tifffile.imread(tmp_path / "l.tif").shape == (30, 512, 512)


def test_import_stack_with_masks(ws, tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((3, 8, 8), np.uint16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", np.full((3, 8, 8), 255, np.uint8), photometric="minisblack")
    out = run(
        "import",
        "--name",
        "vol",
        "--images",
        str(tmp_path / "v.tif"),
        "--masks",
        str(tmp_path / "m.tif"),
        "--classes",
        "bg,mito",
        ws=ws,
    )
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["dataset"] == "vol" and last["labeled"] == 3 and last["classes"] == ["bg", "mito"]


@pytest.mark.parametrize("case", ["missing", "mismatch", "unsafe-zip", "duplicate", "bad-name", "no-dataset"])
def test_refusals_exit_2_with_one_line(ws, tmp_path, case):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as zf:
        zf.writestr("../../etc/x.png", b"x")
    args = {
        "missing": ["import", "--name", "x", "--images", str(tmp_path / "nope.tif")],
        "mismatch": ["import", "--name", "x", "--images", str(tmp_path / "a.tif"), "--masks", str(tmp_path / "b.tif")],
        "unsafe-zip": ["import", "--name", "x", "--images", str(tmp_path / "evil.zip")],
        "duplicate": ["import", "--name", "isbi2012", "--images", str(tmp_path / "a.tif")],
        "bad-name": ["import", "--name", "../x", "--images", str(tmp_path / "a.tif")],
        "no-dataset": ["export", "--dataset", "nope", "--out", str(tmp_path / "o.zip")],
    }[case]
    out = run(*args, ws=ws)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in out.stderr


def test_usage_error_exits_2(ws):
    out = run("export", "--dataset", "isbi2012", ws=ws)  # --out missing
    assert out.returncode == 2 and "--out" in out.stderr


def test_train_then_predict_headless(ws, tmp_path):
    """train and predict run the same code as the UI and end with a JSON line scripts can parse."""
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60, (4, 48, 48), dtype=np.uint8)
    masks = np.zeros((4, 48, 48), np.uint8)
    masks[:, 12:30, 10:36] = 1
    imgs[masks == 1] += 150
    tifffile.imwrite(tmp_path / "v.tif", imgs, photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", masks, photometric="minisblack")
    assert (
        run(
            "import", "--name", "toy", "--images", str(tmp_path / "v.tif"), "--masks", str(tmp_path / "m.tif"), ws=ws
        ).returncode
        == 0
    )
    cfg = tmp_path / "cfg.json"
    cfg.write_text(
        json.dumps(
            {
                "model": {"arch": "classic", "classic_width": 4},
                "patch_size": 32,
                "batch_size": 2,
                "steps_per_epoch": 2,
                "epochs": 5,
            }
        )
    )
    out = run("train", "--dataset", "toy", "--epochs", "1", "--config", str(cfg), ws=ws)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["state"] == "done" and summary["epochs"] == 1 and 0 <= summary["val_dice"] <= 1
    assert Path(summary["best_checkpoint"]).is_file()

    out = run(
        "predict",
        "--checkpoint",
        summary["best_checkpoint"],
        "--input",
        str(tmp_path / "v.tif"),
        "--out",
        str(tmp_path / "pred.tif"),
        "--prob",
        str(tmp_path / "prob.tif"),
        ws=ws,
    )
    assert out.returncode == 0, out.stderr
    pred = json.loads(out.stdout.strip().splitlines()[-1])
    assert pred["slices"] == 4
    assert tifffile.imread(tmp_path / "pred.tif").shape == (4, 48, 48)
    assert pred["warnings"] == [] and "warning:" not in out.stderr  # the training data fits its own model
    assert len(pred["checkpoint"]["class_names"]) == 2 and pred["checkpoint"]["trained_on"] == "toy"

    from core.train.bundle import write_bundle  # the run's reproducibility bundle works as --checkpoint too

    bundle = write_bundle(ws, summary["run_id"])
    out = run(
        "predict",
        "--checkpoint",
        str(bundle),
        "--input",
        str(tmp_path / "v.tif"),
        "--out",
        str(tmp_path / "pred_bundle.tif"),
        ws=ws,
    )
    assert out.returncode == 0, out.stderr
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "pred_bundle.tif"), tifffile.imread(tmp_path / "pred.tif"))

    wide = imgs.astype(np.uint16) * 250  # a 16-bit stack on a model trained on 8-bit data: warned, still exit 0
    tifffile.imwrite(tmp_path / "v16.tif", wide, photometric="minisblack")
    out = run(
        "predict",
        "--checkpoint",
        summary["best_checkpoint"],
        "--input",
        str(tmp_path / "v16.tif"),
        "--out",
        str(tmp_path / "pred16.tif"),
        ws=ws,
    )
    assert out.returncode == 0, out.stderr
    warned = [ln for ln in out.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warned) == 1 and "uint16" in warned[0] and "8-bit" in warned[0]
    assert json.loads(out.stdout.strip().splitlines()[-1])["warnings"] == [warned[0][len("warning: ") :]]

    out = run("train", "--dataset", "toy", "--resume", summary["run_id"], "--epochs", "2", "--config", str(cfg), ws=ws)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["epochs"] == 2

    bad = tmp_path / "foreign.pt"
    bad.write_bytes(b"not a checkpoint")
    out = run(
        "predict", "--checkpoint", str(bad), "--input", str(tmp_path / "v.tif"), "--out", str(tmp_path / "x.tif"), ws=ws
    )
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    assert not (tmp_path / "x.tif").exists()

    with zipfile.ZipFile(tmp_path / "two.zip", "w") as zf:  # a ZIP that is no bundle: refused, naming what is inside
        zf.write(summary["best_checkpoint"], "a/best.pt")
        zf.write(summary["best_checkpoint"], "a/last.pt")
    out = run(
        "predict",
        "--checkpoint",
        str(tmp_path / "two.zip"),
        "--input",
        str(tmp_path / "v.tif"),
        "--out",
        str(tmp_path / "x.tif"),
        ws=ws,
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr
    assert "two.zip" in out.stderr and "a/best.pt" in out.stderr and "a/last.pt" in out.stderr
    assert not (tmp_path / "x.tif").exists()


@pytest.mark.parametrize("error, code", [("SegDashError", 2), ("ValueError", 1)])
def test_only_a_segdash_error_is_a_refusal(tmp_path, monkeypatch, capsys, error, code):
    """A user's mistake (SegDashError) exits 2 with its message; a plain ValueError, as numpy or torch
    raise, is an internal error: exit 1, named as such, still one line."""
    from core import cli
    from core.errors import SegDashError
    from core.store.workspace import Workspace

    exc = (
        SegDashError("a message for the user")
        if error == "SegDashError"
        else ValueError("operands could not be broadcast together")
    )

    def boom(self):
        raise exc

    monkeypatch.delenv("SEGDASH_DEBUG", raising=False)
    monkeypatch.setattr(Workspace, "dataset_names", boom)
    assert cli.main(["list", "--workspace", str(tmp_path / "ws")]) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    if code == 2:
        assert err == "error: a message for the user"
    else:
        assert err.startswith("error: ValueError: operands could not be broadcast together")


def test_predict_asks_how_to_read_a_planar_tiff_and_takes_either_answer(ws, tmp_path):
    """A 3-plane TIFF written without photometric is 3 slices or one colour image: never guessed."""

    ckpt = tiny_checkpoint(tmp_path / "m.pt", ["bg", "fg"], seed=0)
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(planar, np.random.default_rng(0).integers(0, 256, (3, 32, 32), dtype=np.uint8))
    out = tmp_path / "m.tif"

    asked = run("predict", "--checkpoint", str(ckpt), "--input", str(planar), "--out", str(out), ws=ws)
    assert asked.returncode == 2, asked.stderr
    lines = asked.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "planar.tif" in lines[0], asked.stderr
    assert "--as-stack" in lines[0] and "--as-colour" in lines[0] and not out.exists()

    for option, slices in (("--as-stack", 3), ("--as-colour", 1)):
        done = run("predict", "--checkpoint", str(ckpt), "--input", str(planar), "--out", str(out), option, ws=ws)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.strip().splitlines()[-1])["slices"] == slices
        assert tifffile.imread(out).reshape(-1, 32, 32).shape[0] == slices


def test_export_a_stored_prediction(ws, tmp_path):
    """export --stored-prediction RUN writes what the Export page offers for a stored prediction;
    --prediction keeps meaning the OME-Zarr labels image; wrong combinations exit 2."""
    from core.store.workspace import Workspace

    w = Workspace(ws)
    w.create_dataset(
        "d", np.zeros((2, 8, 8), np.uint8), [np.eye(8, dtype=np.uint8), None], ["bg", "a", "b"], ["s1", "s2"]
    )
    folder = w.predictions_dir("d", "r1")
    prob = np.random.default_rng(0).integers(0, 256, (2, 3, 8, 8), dtype=np.uint8)
    tifffile.imwrite(folder / "masks.tif", prob.argmax(1).astype(np.uint8), metadata={"segdash": "masks", "classes": 3})
    tifffile.imwrite(folder / "prob.tif", prob, metadata={"segdash": "prob", "classes": 3, "scale": 255.0})
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "prob_scale": 255.0}))

    for fmt, name in (("zip", "m.zip"), ("tiff", "m.tif"), ("prob-tiff", "p.tif"), ("csv", "s.csv")):
        out = run(
            "export",
            "--dataset",
            "d",
            "--stored-prediction",
            "r1",
            "--format",
            fmt,
            "--out",
            str(tmp_path / name),
            ws=ws,
        )
        assert out.returncode == 0, out.stderr
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        assert summary["stored_prediction"] == "r1" and summary["bytes"] == (tmp_path / name).stat().st_size > 0
    assert zipfile.ZipFile(tmp_path / "m.zip").namelist() == ["s1.png", "s2.png"]
    with tifffile.TiffFile(tmp_path / "p.tif") as tif:
        np.testing.assert_array_equal(tif.asarray(), prob)
        assert tif.imagej_metadata["channels"] == 3 and len(tif.imagej_metadata["Labels"]) == 6
    assert (tmp_path / "s.csv").read_text().splitlines()[1].startswith("0,s1,")

    refused = {
        "prob-tiff without a prediction": ["--format", "prob-tiff"],
        "ome-zarr with --stored-prediction": ["--format", "ome-zarr", "--stored-prediction", "r1"],
        "no such prediction": ["--format", "tiff", "--stored-prediction", "nope"],
    }
    for why, args in refused.items():
        out = run("export", "--dataset", "d", "--out", str(tmp_path / "x"), *args, ws=ws)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1, why
    assert not (tmp_path / "x").exists()
