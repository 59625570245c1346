"""core.data.omezarr: images + masks as OME-Zarr that ome-zarr's reader (napari's plugin) opens as an image with
a labels layer; OME-Zarr folders read on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Multiscales, Reader

from core.data.io import ChannelChoiceNeeded, read_stack
from core.data.omezarr import is_omezarr, read_omezarr, write_omezarr
from core.store.workspace import Workspace
from core.workflow.export import export_dataset_omezarr
from tests.synthetic import discs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ws(ws):
    """The shared empty workspace (conftest) with a dataset 'cells' of 3 disc slices, 3 classes."""
    rng = np.random.default_rng(1)
    pairs = [discs(rng, 300, 260) for _ in range(3)]
    masks = [pairs[0][1], None, pairs[2][1] * 2]  # slice 1 unlabeled; classes 0..2
    ws.create_dataset("cells", np.stack([p[0] for p in pairs]), masks, class_names=["bg", "cell", "nucleus"])
    return ws


def _nodes(path):
    return list(Reader(parse_url(str(path)))())


def test_export_reads_back_as_image_with_labels(ws, tmp_path):
    out = export_dataset_omezarr(ws, "cells", tmp_path / "cells.zarr")
    assert out == tmp_path / "cells.zarr" and is_omezarr(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cells.zarr")]  # no temporary left
    nodes = _nodes(out)
    image = next(n for n in nodes if n.load(Multiscales) and not n.load(Label))
    labels = next(n for n in nodes if n.load(Label))
    assert [a["name"] for a in image.metadata["axes"]] == ["z", "y", "x"]
    assert np.array_equal(np.asarray(image.data[0]), ws.read_images("cells"))
    assert len(image.data) == 2 and image.data[1].shape == (3, 150, 130)  # a pyramid for large slices
    assert labels.metadata["name"] == "masks"
    assert [a["name"] for a in labels.metadata["axes"]] == ["z", "y", "x"]
    lab = np.asarray(labels.data[0])
    assert lab.dtype == np.uint8 and lab.shape == (3, 300, 260)
    assert np.array_equal(lab[0], ws.read_mask("cells", 0)) and np.array_equal(lab[2], ws.read_mask("cells", 2))
    assert (lab[1] == 255).all()  # the unlabeled slice is 'not labeled' (255), never background (issue 27.6)...
    root_attrs = json.loads((out / ".zattrs").read_text())
    assert root_attrs["segdash"]["labeled_slices"] == [0, 2]  # ...is listed as not labeled
    props = json.loads((out / "labels" / "masks" / ".zattrs").read_text())["image-label"]["properties"]
    assert [p["class"] for p in props] == ["bg", "cell", "nucleus", "not labeled"]  # 255 named too


def test_pixel_size_is_the_axes_scale(tmp_path):
    img = np.zeros((2, 40, 50), np.uint16)
    write_omezarr(
        tmp_path / "a.zarr",
        img,
        np.zeros(img.shape, np.uint8),
        class_names=["bg", "fg"],
        pixel_size=(2.0, 0.25, 0.25),
        unit="micrometer",
    )
    data, info = read_omezarr(tmp_path / "a.zarr")
    assert data.shape == (2, 40, 50) and data.dtype == np.uint16
    assert info["pixel_size"] == (2.0, 0.25, 0.25) and info["unit"] == "micrometer" and info["labels"] == ["masks"]
    node = _nodes(tmp_path / "a.zarr")[0]
    assert node.metadata["coordinateTransformations"][0][0] == {"type": "scale", "scale": [2.0, 0.25, 0.25]}
    with pytest.raises(ValueError, match="already exists"):
        write_omezarr(tmp_path / "a.zarr", img)


def test_read_stack_takes_an_omezarr_folder_and_its_labels(ws, tmp_path):
    out = export_dataset_omezarr(ws, "cells", tmp_path / "cells.zarr")
    stack = read_stack(out)
    assert stack.shape == (3, 300, 260) and np.array_equal(stack.data, ws.read_images("cells"))
    masks = read_stack(out / "labels" / "masks")
    assert np.array_equal(masks.data[2], ws.read_mask("cells", 2))
    with pytest.raises(ValueError, match="outside the folders"):
        read_stack(out, roots=[tmp_path / "elsewhere"])
    assert read_stack(out, roots=[tmp_path]).shape == (3, 300, 260)


def test_channels_and_time_need_a_choice(tmp_path):
    import zarr
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    data = np.arange(2 * 3 * 4 * 32 * 32, dtype=np.uint16).reshape(2, 3, 4, 32, 32)
    root = zarr.open_group(str(tmp_path / "h.zarr"), mode="w", zarr_format=2)
    write_image(data[:1], root, axes="tczyx", fmt=FormatV04(), scale_factors=[])
    with pytest.raises(ChannelChoiceNeeded):
        read_stack(tmp_path / "h.zarr")
    assert np.array_equal(read_stack(tmp_path / "h.zarr", channel=2).data, data[0, 2])
    root = zarr.open_group(str(tmp_path / "t.zarr"), mode="w", zarr_format=2)
    write_image(data[:, :1], root, axes="tczyx", fmt=FormatV04(), scale_factors=[])
    with pytest.raises(ValueError, match="2 time points"):
        read_stack(tmp_path / "t.zarr")


def test_zip_export_for_download(ws, tmp_path):
    out = export_dataset_omezarr(ws, "cells", tmp_path / "cells.zip")
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        zf.extractall(tmp_path / "x")
    assert "cells.zarr/.zattrs" in names and "cells.zarr/labels/masks/.zattrs" in names
    assert np.array_equal(read_omezarr(tmp_path / "x" / "cells.zarr")[0], ws.read_images("cells"))


@pytest.mark.slow  # two subprocesses
def test_cli_export_and_import_omezarr(ws, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("SEGDASH_DEBUG", None)

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "core", *args, "--workspace", str(ws.root)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=120,
        )

    out = cli("export", "--dataset", "cells", "--format", "ome-zarr", "--out", str(tmp_path / "c.zarr"))
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["format"] == "ome-zarr" and summary["bytes"] > 0 and is_omezarr(summary["out"])
    out = cli(
        "import",
        "--name",
        "again",
        "--images",
        str(tmp_path / "c.zarr"),
        "--masks",
        str(tmp_path / "c.zarr" / "labels" / "masks"),
        "--classes",
        "bg,cell,nucleus",
    )
    assert out.returncode == 0, out.stderr
    again = Workspace(ws.root)
    assert np.array_equal(again.read_images("again"), ws.read_images("cells"))
    assert np.array_equal(again.read_mask("again", 2), ws.read_mask("cells", 2))
    out = cli("export", "--dataset", "cells", "--format", "ome-zarr", "--out", str(tmp_path / "c.zarr"))
    assert out.returncode == 2 and "already exists" in out.stderr
    out = cli("export", "--dataset", "cells", "--format", "zip", "--out", str(tmp_path / "m.zip"), "--prediction", "r")
    assert out.returncode == 2 and "ome-zarr only" in out.stderr and not (tmp_path / "m.zip").exists()


def test_a_prediction_is_a_second_labels_image(ws, tmp_path):
    import tifffile

    folder = ws.predictions_dir("cells", "run-1")
    pred = np.zeros((2, 300, 260), np.uint8)  # cancelled after two slices
    pred[:, 10:50, 20:80] = 2
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "slices": []}))
    out = export_dataset_omezarr(ws, "cells", tmp_path / "p.zarr", prediction="run-1")
    labels = {n.metadata["name"]: np.asarray(n.data[0]) for n in _nodes(out) if n.load(Label)}
    assert set(labels) == {"masks", "prediction_run-1"}
    assert np.array_equal(labels["prediction_run-1"][:2], pred) and not labels["prediction_run-1"][2].any()
    with pytest.raises(ValueError, match="no prediction 'nope'"):
        export_dataset_omezarr(ws, "cells", tmp_path / "q.zarr", prediction="nope")
    assert not (tmp_path / "q.zarr").exists()
