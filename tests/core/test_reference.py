"""Zarr / OME-Zarr volumes imported by reference (core.store.volumes): no copy of the images, every
reader (slices, training, prediction, exports) reads only the chunks it needs, and a moved volume is
a clear refusal that keeps the masks."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from core.cli import main
from core.data.chunked import Volume
from core.data.omezarr import write_omezarr
from core.errors import SegDashError
from core.store.workspace import Workspace
from core.workflow.ingest import import_dataset
from tests.synthetic import disc_stack

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/core/conftest.py

TINY = {
    "model": {"arch": "classic", "classic_width": 4},
    "patch_size": 64,
    "batch_size": 4,
    "steps_per_epoch": 3,
    "epochs": 1,
    "lr": 1e-2,
}


def _volume(path: Path, z: int, side: int = 64, zarr_format: int = 3, chunks_z: int = 4, seed: int = 0):
    """A (z, side, side) uint8 Zarr array of discs at ``path``; returns its data and masks."""
    rng = np.random.default_rng(seed)
    data, masks = disc_stack(rng, z, side, side, 3)
    arr = zarr.create_array(
        str(path), shape=data.shape, chunks=(chunks_z, side, side), dtype="uint8", zarr_format=zarr_format
    )
    arr[:] = data
    return data, masks


def _tables(ws: Workspace) -> set[str]:
    con = sqlite3.connect(ws.root / "catalog.sqlite")
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_import_by_reference_writes_no_image_and_reads_in_place(ws, tmp_path, zarr_format):
    data, masks = _volume(tmp_path / "vol.zarr", 10, zarr_format=zarr_format)
    tifffile.imwrite(tmp_path / "masks.tif", masks)
    report = import_dataset(ws, "ref", str(tmp_path / "vol.zarr"), str(tmp_path / "masks.tif"), by_reference=True)
    info = report.dataset
    assert info.volume == str((tmp_path / "vol.zarr").resolve()) and report.summary()["by_reference"] is True
    assert any("not copied" in n for n in report.notices)
    assert not ws.images_path("ref").exists()
    stored = sum(f.stat().st_size for f in ws.dataset_dir("ref").rglob("*") if f.is_file())
    assert stored < data.nbytes / 4  # the masks' PNGs only
    assert len(list((ws.dataset_dir("ref") / "masks").glob("*.v1.png"))) == 10
    images = ws.read_images("ref")
    assert isinstance(images, Volume) and images.shape == data.shape and images.dtype == np.uint8
    assert len(images) == 10 and images.ndim == 3
    assert np.array_equal(ws.read_slice("ref", 7), data[7]) and np.array_equal(images[2:5, 3, ::2], data[2:5, 3, ::2])
    assert np.array_equal(images[[1, 8]], data[[1, 8]]) and np.array_equal(images[-1], data[-1])
    with pytest.raises(TypeError):
        images[0] = 0  # read-only
    assert (ws.read_mask("ref", 4) == masks[4]).all()
    # the copy route (no --by-reference) keeps what import did before: a TIFF in the workspace
    copy = import_dataset(ws, "copy", str(tmp_path / "vol.zarr")).dataset
    assert copy.volume == "" and np.array_equal(ws.read_images("copy"), data)


def test_n5_by_reference_reads_in_place_and_trains(ws, tmp_path, capsys):
    from tests.core.test_volume import write_n5

    data, masks = disc_stack(np.random.default_rng(3), 6, 64, 64, 3)
    n5 = tmp_path / "em.n5"
    write_n5(
        n5 / "setup0" / "timepoint0" / "s0",
        data,
        (2, 32, 32),
        pixelResolution={"dimensions": [10, 10, 50], "unit": "nm"},
    )
    (n5 / "attributes.json").write_text(json.dumps({"n5": "2.2.0"}))
    tifffile.imwrite(tmp_path / "masks.tif", masks)
    cli = ["import", "--workspace", str(ws.root), "--name", "em", "--images", str(n5)]
    assert main([*cli, "--masks", str(tmp_path / "masks.tif"), "--by-reference"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["by_reference"] is True and summary["shape"] == [6, 64, 64]
    info = ws.dataset("em")
    assert info.volume == str(n5.resolve()) and not ws.images_path("em").exists()
    assert ws.pixel_size("em").z == 50 and ws.pixel_size("em").x == 10 and ws.pixel_size("em").unit == "nanometer"
    images = ws.read_images("em")
    assert isinstance(images, Volume) and np.array_equal(images[2:5, 3, ::2], data[2:5, 3, ::2])
    assert np.array_equal(ws.read_slice("em", 5), data[5]) and (ws.read_mask("em", 1) == masks[1]).all()
    from core.train.headless import train_headless

    run = train_headless(ws, "em", config=TINY)
    assert run["state"] == "done", run.get("error")
    assert main([*cli[:3], "--name", "em-copy", "--images", str(n5)]) == 0  # without: a copy
    assert np.array_equal(ws.read_images("em-copy"), data)


_READS: list[int] = []  # module level: dask copies what its graph holds, a class of a test by value


class _ReadSpy:
    """A zarr array that records the size of each read in ``_READS``."""

    def __init__(self, arr):
        self.arr = arr

    def __getitem__(self, key):
        out = self.arr[key]
        _READS.append(np.asarray(out).size)
        return out


def test_omezarr_export_of_a_referenced_volume_reads_a_chunk_at_a_time(ws, tmp_path, monkeypatch):
    from dataclasses import replace

    import core.store.volumes as volumes
    from core.data.omezarr import read_omezarr
    from core.workflow.export import export_dataset_omezarr

    data, masks = _volume(tmp_path / "vol.zarr", 12, chunks_z=2)
    import_dataset(ws, "ref", str(tmp_path / "vol.zarr"), by_reference=True)
    for z in (2, 7):
        ws.save_mask("ref", z, masks[z])
    _READS.clear()
    opened = volumes.open_volume
    monkeypatch.setattr(
        volumes, "open_volume", lambda *a, **k: replace(opened(*a, **k), array=_ReadSpy(opened(*a, **k).array))
    )
    export_dataset_omezarr(ws, "ref", tmp_path / "out.zarr")
    assert _READS and max(_READS) <= 2 * 64 * 64  # one chunk (2 slices) at a time, never the volume
    image, info = read_omezarr(tmp_path / "out.zarr")
    assert np.array_equal(image, data)
    labels, _ = read_omezarr(tmp_path / "out.zarr" / "labels" / "masks")
    # unlabeled slices are written 255, "not labeled", never 0 (background): issue 27.6
    assert np.array_equal(labels[[2, 7]], masks[[2, 7]]) and (labels[[0, 1, 3, 11]] == 255).all()


def test_omezarr_by_reference_and_refusals(ws, tmp_path):
    img = np.arange(3 * 40 * 50, dtype=np.uint16).reshape(3, 40, 50)
    write_omezarr(tmp_path / "o.zarr", img, None, class_names=["bg", "fg"], pixel_size=(2.0, 0.5, 0.5))
    info = import_dataset(ws, "ome", str(tmp_path / "o.zarr"), by_reference=True).dataset
    assert info.shape == (3, 40, 50) and info.dtype == "uint16" and ws.pixel_size("ome").y == 0.5
    assert np.array_equal(ws.read_slice("ome", 1), img[1])
    tifffile.imwrite(tmp_path / "s.tif", img)
    with pytest.raises(SegDashError, match="only a Zarr .*, OME-Zarr or N5 folder"):
        import_dataset(ws, "tif", str(tmp_path / "s.tif"), by_reference=True)
    assert not ws.has_dataset("tif")


def test_moved_or_replaced_volume_is_a_clear_error_and_keeps_the_masks(ws, tmp_path):
    data, _ = _volume(tmp_path / "vol.zarr", 6)
    import_dataset(ws, "ref", str(tmp_path / "vol.zarr"), by_reference=True)
    ws.save_mask("ref", 2, np.eye(64, dtype=np.uint8))
    shutil.move(tmp_path / "vol.zarr", tmp_path / "elsewhere.zarr")
    for read in (lambda: ws.read_images("ref"), lambda: ws.read_slice("ref", 0)):
        with pytest.raises(SegDashError, match="missing or moved.*masks are kept"):
            read()
    assert (ws.read_mask("ref", 2) == np.eye(64)).all() and ws.labeled_slices("ref") == [2]
    export = ["export", "--workspace", str(ws.root), "--dataset", "ref", "--format", "dataset"]
    assert main([*export, "--out", str(tmp_path / "d.zip")]) == 2
    assert main(["train", "--workspace", str(ws.root), "--dataset", "ref"]) == 2  # refused before a run starts
    assert ws.runs("ref") == []
    shutil.move(tmp_path / "elsewhere.zarr", tmp_path / "vol.zarr")  # put back: readable again
    assert np.array_equal(ws.read_slice("ref", 5), data[5])
    shutil.rmtree(tmp_path / "vol.zarr")
    _volume(tmp_path / "vol.zarr", 7)  # another volume under the same name
    with pytest.raises(SegDashError, match="was it replaced"):
        ws.read_images("ref")
    # renaming and deleting the dataset never touch the volume
    ws.rename_dataset("ref", "ref2")
    assert ws.dataset("ref2").volume == str((tmp_path / "vol.zarr").resolve())
    assert "the volume is kept" in ws.deletion_summary("ref2")
    ws.delete_dataset("ref2")
    assert (tmp_path / "vol.zarr").is_dir() and ws.catalog.volume("ref2") is None


def test_cli_import_by_reference(tmp_path, capsys):
    _volume(tmp_path / "vol.zarr", 5)
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("other", np.zeros((1, 8, 8), np.uint8), None, ["a", "b"])  # not empty: no sample import
    base = ["import", "--workspace", str(ws.root), "--images", str(tmp_path / "vol.zarr")]
    assert main([*base, "--name", "v", "--by-reference"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["by_reference"] is True and summary["shape"] == [5, 64, 64]
    assert not ws.images_path("v").exists()
    assert main([*base, "--name", "c"]) == 0  # a chunked copy, as before
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["by_reference"] is False
    assert ws.images_path("c").exists()
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 8, 8), np.uint8))
    bad = ["import", "--workspace", str(ws.root), "--name", "t", "--images", str(tmp_path / "s.tif"), "--by-reference"]
    assert main(bad) == 2 and "only a Zarr (format 2 or 3), OME-Zarr or N5 folder" in capsys.readouterr().err


def test_a_workspace_without_the_reference_table_opens_and_takes_one(tmp_path):
    """A catalog as earlier releases made it (no ``dataset_volumes`` table): its datasets read as before,
    and the first import by reference adds the table."""
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("old", np.full((2, 8, 8), 7, np.uint8), [np.eye(8, dtype=np.uint8), None], ["a", "b"])
    assert "dataset_volumes" not in _tables(ws)
    ws = Workspace(tmp_path / "ws")
    assert ws.dataset("old").volume == "" and ws.catalog.volume("old") is None
    assert isinstance(ws.read_images("old"), np.memmap) and ws.read_slice("old", 1)[0, 0] == 7
    _volume(tmp_path / "vol.zarr", 3)
    import_dataset(ws, "new", str(tmp_path / "vol.zarr"), by_reference=True)
    assert "dataset_volumes" in _tables(ws) and ws.read_slice("old", 0)[0, 0] == 7


class _ReadLog:
    """Every selection read from the zarr arrays, as the number of z slices it spans."""

    def __init__(self, monkeypatch, depth: int, most: int):
        self.spans: list[int] = []
        original = zarr.Array.__getitem__

        def getitem(arr, selection):
            sel = selection if isinstance(selection, tuple) else (selection,)
            z = sel[0]
            span = len(range(*z.indices(arr.shape[0]))) if isinstance(z, slice) else 1
            self.spans.append(span)
            if arr.shape[0] == depth and span > most:
                raise AssertionError(f"read {span} slices of the volume at once")
            return original(arr, selection)

        monkeypatch.setattr(zarr.Array, "__getitem__", getitem)


def test_training_and_opening_a_deep_referenced_volume_reads_only_a_few_slices(ws, tmp_path, monkeypatch):
    """200 slices, 4 labeled: importing, opening, the intensity window and training read single slices
    (sampled or labeled), never the volume whole; a whole read fails the test."""
    from core.train.headless import train_headless

    depth, labeled = 200, (20, 80, 140, 190)
    data, masks = _volume(tmp_path / "deep.zarr", depth, chunks_z=8)
    log = _ReadLog(monkeypatch, depth, most=1)
    import_dataset(ws, "deep", str(tmp_path / "deep.zarr"), by_reference=True)
    for z in labeled:
        ws.save_mask("deep", z, masks[z])
    ws.read_images("deep")
    summary = train_headless(ws, "deep", config=TINY)
    assert summary["state"] == "done", summary.get("error")
    assert log.spans and max(log.spans) == 1
    assert len(log.spans) <= 8 + 8 + 2 * len(labeled)  # import check + window samples + labeled slices
    run = ws.catalog.run(summary["run_id"])
    assert sorted(run["extra"]["train_slices"] + run["extra"]["val_slices"]) == list(labeled)
    with pytest.raises(AssertionError, match="read 200 slices"):
        np.asarray(ws.read_images("deep"))  # the guard does catch a whole read


def test_train_predict_and_export_a_referenced_dataset(ws, tmp_path):
    from core.predict.config import PredictConfig
    from core.predict.dataset import predict_dataset
    from core.train.headless import train_headless
    from core.workflow.export import export_dataset_omezarr, export_dataset_zip, export_masks_tiff

    data, masks = _volume(tmp_path / "vol.zarr", 8)
    import_dataset(ws, "ref", str(tmp_path / "vol.zarr"), by_reference=True)
    for z in (1, 3, 5, 7):
        ws.save_mask("ref", z, masks[z])
    summary = train_headless(ws, "ref", config=TINY)
    assert summary["state"] == "done", summary.get("error")
    result = predict_dataset(ws, "ref", summary["best_checkpoint"], PredictConfig(device="cpu"), run_id="p")
    assert result.n_done == 8
    pred = tifffile.imread(result.masks_path)
    assert pred.shape == (8, 64, 64) and pred.dtype == np.uint8
    assert (ws.predictions_dir("ref", "p") / "summary.json").is_file()
    export_dataset_zip(ws, "ref", tmp_path / "d.zip")
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        assert len([n for n in zf.namelist() if n.startswith("images/")]) == 8
    export_masks_tiff(ws, "ref", tmp_path / "m.tif")
    export_dataset_omezarr(ws, "ref", tmp_path / "out.zarr")
    back = import_dataset(ws, "back", str(tmp_path / "d.zip")).dataset
    assert np.array_equal(ws.read_images("back"), data) and back.volume == ""
