"""``python -m core measure`` and the Measure workflow: sources, trust on held-out slices, refusals."""

from __future__ import annotations

import json

import numpy as np
import openpyxl
import pytest
import tifffile
from skimage.draw import disk

from core.cli import main
from core.workflow.measure import Source, compare_with_truth, measure, parse_pixel_size, trust


def _discs(z: int, shift: int = 0, r: int = 6) -> np.ndarray:
    m = np.zeros((z, 48, 48), np.uint8)
    for i in range(z):
        for cy, cx in ((12, 12), (30, 34)):
            rr, cc = disk((cy, cx + shift), r, shape=(48, 48))
            m[i, rr, cc] = 1
    return m


@pytest.fixture
def ws(ws):
    truth = _discs(6)
    images = (40 + 100 * truth).astype(np.uint8)
    masks = [truth[i] if i != 5 else None for i in range(6)]  # slice 5 unlabeled
    ws.create_dataset("cells", images, masks, ["background", "cell"])
    folder = ws.predictions_dir("cells", "run-1")
    pred = _discs(6, r=7)  # a little larger everywhere
    pred[3, 5:20, 5:20] = 0  # one object missed on test slice 3
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    split = {"train": [0, 1], "val": [2], "test": [3, 4]}
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "split": split}))
    return ws


def _run(ws, capsys, *args: str) -> tuple[int, dict | str]:
    code = main(["measure", "--workspace", str(ws.root), "--dataset", "cells", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out.strip().splitlines()[-1]) if code == 0 else err)


def test_masks_measured_to_csv_and_labels(ws, capsys, tmp_path):
    code, s = _run(ws, capsys, "--out", str(tmp_path / "o.csv"), "--labels-out", str(tmp_path / "l.tif"))
    assert code == 0, s
    assert s["slices"] == 5 and s["objects"] == 10 and s["counts"] == {"cell": 10} and "trust" not in s
    assert (tmp_path / "o.csv").read_text().count("\n") == 11
    assert tifffile.imread(tmp_path / "l.tif").max() == 10


def test_prediction_to_xlsx_with_trust_on_the_test_slices(ws, capsys, tmp_path):
    code, s = _run(ws, capsys, "--prediction", "run-1", "--out", str(tmp_path / "o.xlsx"), "--pixel-size", "0.5,um")
    assert code == 0, s
    assert openpyxl.load_workbook(tmp_path / "o.xlsx").sheetnames == ["objects", "slices", "dataset"]
    assert s["objects"] == 11 and s["pixel_size"] == [1.0, 0.5, 0.5, "micrometer"]
    t = s["trust"]
    assert t["part"] == "test" and t["slices"] == [3, 4]
    row = t["classes"][0]
    assert (row["n_true"], row["n_pred"], row["tp"], row["fn"], row["fp"]) == (4, 3, 3, 1, 0)
    assert row["count_error_pct"] == -25.0 and row["recall"] == 0.75 and row["size_bias_pct"] > 0
    assert "held-out test slices the model counts 25 % too few cell" in t["sentence"]


def test_3d_and_file_sources(ws, capsys, tmp_path):
    r = measure(ws, "cells", mode="3d")
    assert len(r.objects) == 2 and r.objects["z_first"].tolist() == [0, 0] and r.objects["z_last"].tolist() == [4, 4]
    assert r.objects["intensity_mean"].tolist() == [140.0, 140.0]
    path = tmp_path / "pred.tif"
    tifffile.imwrite(path, _discs(6, shift=4), photometric="minisblack")
    assert measure(ws, "cells", Source("file", str(path))).counts() == {"cell": 12}
    code, s = _run(ws, capsys, "--masks", str(path), "--mode", "3d", "--out", str(tmp_path / "o.csv"))
    assert code == 0 and s["objects"] == 2 and s["source"] == "pred.tif"
    ws.create_dataset("gappy", np.zeros((3, 48, 48), np.uint8), [_discs(1)[0], None, _discs(1)[0]], ["bg", "cell"])
    with pytest.raises(ValueError, match="consecutive"):
        measure(ws, "gappy", mode="3d")
    tifffile.imwrite(path, np.zeros((2, 40, 40), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match="does not fit"):
        measure(ws, "cells", Source("file", str(path)))


def test_trust_without_a_split_says_so(ws):
    folder = ws.predictions_dir("cells", "run-2")
    tifffile.imwrite(folder / "masks.tif", _discs(6), photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5}))
    t = trust(ws, "cells", "run-2")
    assert t.rows == [] and "no test or validation slices" in t.notes[0]
    t = trust(ws, "cells", "run-1", mode="3d")  # test slices 3, 4 are consecutive: 3D objects
    assert t.rows[0]["n_true"] == 2 and t.rows[0]["slices"] == 2
    (folder / "summary.json").write_text(json.dumps({"split": {"test": [4, 5]}}))  # slice 5 has no mask
    t = trust(ws, "cells", "run-2")
    assert t.zs == [4] and "without a mask are left out" in t.notes[0] and t.rows[0]["f1"] == 1.0


def test_refusals_exit_2_with_one_line(ws, capsys, tmp_path):
    code, err = _run(ws, capsys, "--out", str(tmp_path / "o.txt"))
    assert code == 2 and err.startswith("error:") and ".csv or .xlsx" in err
    code, err = _run(ws, capsys, "--prediction", "nope", "--out", str(tmp_path / "o.csv"))
    assert code == 2 and "no prediction 'nope'" in err
    code, err = _run(ws, capsys, "--pixel-size", "x,um", "--out", str(tmp_path / "o.csv"))
    assert code == 2 and "pixel size" in err
    code, err = _run(ws, capsys, "--masks", str(tmp_path / "none.tif"), "--out", str(tmp_path / "o.csv"))
    assert code == 2 and "no such file" in err
    assert parse_pixel_size("3,0.5,0.5,nm").z == 3.0


def test_import_pixel_size_is_stored_and_used(ws, capsys, tmp_path):
    images, masks = tmp_path / "i.tif", tmp_path / "m.tif"
    noise = np.random.default_rng(0).integers(0, 30, (2, 48, 48))
    tifffile.imwrite(images, (40 + 100 * _discs(2) + noise).astype(np.uint8), photometric="minisblack")
    tifffile.imwrite(masks, _discs(2), photometric="minisblack")
    args = ["import", "--workspace", str(ws.root), "--name", "cal", "--images", str(images), "--masks", str(masks)]
    assert main([*args, "--pixel-size", "0.1,0.02,0.02,um"]) == 0
    assert "set by --pixel-size" in capsys.readouterr().err
    assert tuple(ws.pixel_size("cal")) == (0.1, 0.02, 0.02, "micrometer")
    r = measure(ws, "cal")
    assert r.objects["area_um2"].iloc[0] == pytest.approx(r.objects["area"].iloc[0] * 0.02**2)
    assert main([*args[:4], "bad", *args[5:], "--pixel-size=-1,um"]) == 2
    assert "pixel size" in capsys.readouterr().err and not ws.has_dataset("bad")


def test_object_view_outlines_the_object_on_its_slice(ws):
    from core.workflow.measure import object_view

    r = measure(ws, "cells")
    obj = r.objects[(r.objects["z"] == 2) & (r.objects["centroid_x"] > 24)].iloc[0]
    crop, z = object_view(ws, "cells", r, int(obj["object"]), pad=3)
    assert z == 2 and crop.shape == (11 + 6, 11 + 6, 3)  # the disc's 11 px box, 3 px around it
    red = (crop == (255, 40, 40)).all(axis=2)
    assert red.sum() > 20 and not red[0].any() and red[8, 3] and not red[8, 8]  # its edge, not the padding
    with pytest.raises(ValueError, match="no object 999"):
        object_view(ws, "cells", r, 999)


def test_3d_block_by_block_from_the_command_line(ws, capsys, tmp_path):
    code, s = _run(ws, capsys, "--mode", "3d", "--block", "2", "--out", str(tmp_path / "o.csv"))
    assert code == 0 and s["objects"] == 2 and s["block"] == 2
    code, err = _run(ws, capsys, "--block", "2", "--out", str(tmp_path / "o.csv"))
    assert code == 2 and "--block N" in err


def test_a_zarr_masks_volume_from_predict_is_measured(ws, tmp_path):
    from core.data.chunked import create_volume

    arr = create_volume(tmp_path / "pred.zarr", (6, 48, 48), np.uint8, (2, 48, 48))
    arr[:] = _discs(6)
    r = measure(ws, "cells", Source("file", str(tmp_path / "pred.zarr")), keep_labels=False)
    assert r.counts() == {"cell": 12} and r.labels is None
    (tmp_path / "junk.zarr").mkdir()
    with pytest.raises(ValueError, match="junk.zarr"):
        measure(ws, "cells", Source("file", str(tmp_path / "junk.zarr")))


def test_compare_with_truth_judges_masks_in_memory_as_trust_judges_the_stored_prediction(ws):
    pred = tifffile.imread(ws.predictions_dir("cells", "run-1") / "masks.tif")
    stored = trust(ws, "cells", "run-1")
    mine = compare_with_truth(ws, "cells", pred, {"train": [0, 1], "val": [2], "test": [3, 4]})
    assert (mine.part, mine.zs, mine.rows, mine.sentence) == (stored.part, stored.zs, stored.rows, stored.sentence)
    assert compare_with_truth(ws, "cells", pred, {"val": [2]}).part == "validation"
