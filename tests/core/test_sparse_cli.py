"""The CLI with sparse labels: import --unlabeled-value, train on them, export keeps 255."""

import json
import zipfile

import numpy as np
import tifffile
from PIL import Image

from tests.core.test_cli import run


def test_import_unlabeled_value_train_and_export(tmp_path):
    ws = tmp_path / "ws"
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60, (4, 48, 48), dtype=np.uint8)
    truth = np.zeros((4, 48, 48), np.uint8)
    truth[:, 12:30, 10:36] = 1
    imgs[truth == 1] += 150
    strokes = np.full((4, 48, 48), 7, np.uint8)  # 7: not labeled, as another tool wrote it
    strokes[:, 20, 12:34] = 1
    strokes[:, 40, 5:40] = 0
    tifffile.imwrite(tmp_path / "v.tif", imgs, photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", strokes, photometric="minisblack")
    args = ("import", "--name", "toy", "--images", str(tmp_path / "v.tif"), "--masks", str(tmp_path / "m.tif"))
    out = run(*args, "--unlabeled-value", "7", ws=ws)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1])["labeled"] == 4
    assert "read as not labeled" in out.stderr
    cfg = tmp_path / "cfg.json"
    tiny = {"model": {"arch": "classic", "classic_width": 4}, "patch_size": 32, "batch_size": 2, "steps_per_epoch": 2}
    cfg.write_text(json.dumps(tiny))
    out = run("train", "--dataset", "toy", "--epochs", "1", "--config", str(cfg), ws=ws)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["state"] == "done" and summary["val_dice"] is not None
    out = run("export", "--dataset", "toy", "--format", "zip", "--out", str(tmp_path / "m.zip"), ws=ws)
    assert out.returncode == 0, out.stderr
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        with zf.open(sorted(zf.namelist())[0]) as fh:
            back = np.asarray(Image.open(fh))
    expected = np.where(strokes[0] == 7, 255, strokes[0])
    assert np.array_equal(back, expected)
