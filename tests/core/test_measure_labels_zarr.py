"""The instance label image as OME-Zarr labels: written by ``measure --labels-out X.zarr`` and the Measure
page's downloads, valid OME-NGFF 0.4 (ome-zarr-models), read back to the same labels as the table."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr
from skimage.draw import disk

from core.cli import main
from core.data.omezarr import read_omezarr
from core.measure.labels_zarr import write_labels_omezarr
from core.workflow.measure import Source, downloads, measure, write_labels_zarr


def _masks(z: int) -> np.ndarray:
    """Two classes: two discs of class 1 (one cut by the left edge) and a square of class 2 per slice."""
    m = np.zeros((z, 40, 56), np.uint8)
    for i in range(z):
        for cy, cx in ((12, 3), (28, 30)):
            rr, cc = disk((cy, cx), 6, shape=(40, 56))
            m[i, rr, cc] = 1
        m[i, 5:12, 40:50] = 2
    return m


@pytest.fixture
def ws(ws):
    masks = _masks(4)
    images = (30 + 60 * masks + np.arange(4)[:, None, None]).astype(np.uint8)
    ws.create_dataset("two", images, list(masks), ["background", "disc", "box"])
    ws.catalog.set_pixel_size("two", 0.05, 0.01, 0.01, "micrometer")
    return ws


def _validate(path):
    from ome_zarr_models.v04 import Image, ImageLabel

    root = zarr.open_group(str(path), mode="r")
    image = Image.from_zarr(root)
    assert [a.name for a in image.attributes.multiscales[0].axes] == ["z", "y", "x"]
    label = ImageLabel.from_zarr(root["labels/objects"])
    meta = label.attributes.image_label
    assert meta.source is not None and meta.source.image == "../../"
    return json.loads((path / "labels" / "objects" / ".zattrs").read_text())


def test_cli_writes_ome_zarr_labels_that_read_back_as_the_table(ws, capsys, tmp_path):
    out = tmp_path / "objects.zarr"
    argv = ["measure", "--workspace", str(ws.root), "--dataset", "two", "--out", str(tmp_path / "o.csv")]
    assert main([*argv, "--labels-out", str(out)]) == 0
    s = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert s["labels_out"] == str(out.resolve()) and s["counts"] == {"disc": 8, "box": 4}
    attrs = _validate(out)
    table = pd.read_csv(tmp_path / "o.csv")
    props = {p["label-value"]: p for p in attrs["image-label"]["properties"]}
    assert sorted(props) == sorted(table["label"].tolist())  # one entry per object, by its label
    for _, row in table.iterrows():
        p = props[int(row["label"])]
        assert (p["class"], p["object"], p["border"]) == (row["class_name"], row["object"], bool(row["border"]))
    assert attrs["segdash"]["zs"] == [0, 1, 2, 3] and attrs["segdash"]["mode"] == "2d"
    labels, info = read_omezarr(out / "labels" / "objects")
    assert labels.dtype == np.uint32 and info["pixel_size"] == (0.05, 0.01, 0.01) and info["unit"] == "micrometer"
    # the same instance labels as the label TIFF, and every object's pixels where its table row says
    assert main([*argv, "--labels-out", str(tmp_path / "l.tif")]) == 0
    np.testing.assert_array_equal(labels, tifffile.imread(tmp_path / "l.tif"))
    for _, row in table.iterrows():
        assert int((labels[int(row["z"])] == row["label"]).sum()) == row["area"]
    images, root_info = read_omezarr(out)
    np.testing.assert_array_equal(images, ws.read_images("two"))
    assert root_info["labels"] == ["objects"]


def test_3d_labels_and_an_existing_folder_refused(ws, capsys, tmp_path):
    r = measure(ws, "two", mode="3d")
    path = write_labels_zarr(ws, "two", r, tmp_path / "three.zarr")
    attrs = _validate(path)
    assert attrs["segdash"]["mode"] == "3d"
    assert sorted(p["class"] for p in attrs["image-label"]["properties"]) == ["box", "disc", "disc"]
    np.testing.assert_array_equal(read_omezarr(path / "labels" / "objects")[0], r.labels)
    before = sorted(p.relative_to(path) for p in path.rglob("*"))
    argv = ["measure", "--workspace", str(ws.root), "--dataset", "two", "--out", str(tmp_path / "o.csv")]
    assert main([*argv, "--labels-out", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "already exists" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.relative_to(path) for p in path.rglob("*")) == before  # nothing of it overwritten
    assert main([*argv, "--labels-out", str(tmp_path / "l.png")]) == 2
    assert ".zarr" in capsys.readouterr().err


def test_without_a_label_image_refused_in_words(ws, tmp_path):
    r = measure(ws, "two", keep_labels=False)
    with pytest.raises(ValueError, match="kept no label image"):
        write_labels_zarr(ws, "two", r, tmp_path / "x.zarr")
    r = measure(ws, "two")
    with pytest.raises(ValueError, match="does not match"):
        write_labels_omezarr(r, np.zeros((1, 40, 56), np.uint8), tmp_path / "y.zarr")
    assert not (tmp_path / "y.zarr").exists() and not list(tmp_path.glob(".y.zarr*"))


def test_page_downloads_hold_the_ome_zarr_labels_as_a_zip(ws, tmp_path):
    r = measure(ws, "two", Source("masks"))
    files = downloads(r, "two_masks_2d", ws, "two")
    assert list(files) == ["CSV", "Excel", "Label TIFF", "OME-Zarr labels"]
    data, name, mime = files["OME-Zarr labels"]
    assert name == "two_masks_2d_labels.ome.zarr.zip" and mime == "application/zip"
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path)
    folder = tmp_path / "two_masks_2d_labels.ome.zarr"
    _validate(folder)
    np.testing.assert_array_equal(read_omezarr(folder / "labels" / "objects")[0], r.labels)
    assert list(downloads(r, "x")) == ["CSV", "Excel", "Label TIFF"]  # no workspace: no raw image to go with
