"""Physical pixel size: read from OME / ImageJ TIFF and OME-Zarr on import, kept in the catalog (older
workspaces open), written to OME-Zarr and bioimage.io exports."""

from __future__ import annotations

import sqlite3

import numpy as np
import tifffile

from core.data.omezarr import read_omezarr, write_omezarr
from core.data.pixelsize import PixelSize, normalize_unit, pixel_size_of
from core.store.workspace import Workspace
from core.workflow.export import export_dataset_omezarr
from core.workflow.ingest import import_dataset


def _stack():
    rng = np.random.default_rng(0)
    return rng.integers(0, 250, (3, 32, 40), dtype=np.uint8)


def test_imagej_tiff(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        _stack(),
        imagej=True,
        resolution=(1 / 0.125, 1 / 0.25),
        metadata={"unit": "\\u00B5m", "spacing": 2.5, "axes": "ZYX"},
    )
    assert pixel_size_of(path) == PixelSize(2.5, 0.25, 0.125, "micrometer")
    assert pixel_size_of((path.name, path.read_bytes())) == PixelSize(2.5, 0.25, 0.125, "micrometer")


def test_ome_tiff(tmp_path):
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(
        path,
        _stack(),
        metadata={
            "axes": "ZYX",
            "PhysicalSizeX": 0.2,
            "PhysicalSizeY": 0.2,
            "PhysicalSizeZ": 1.5,
            "PhysicalSizeXUnit": "nm",
            "PhysicalSizeYUnit": "nm",
        },
    )
    assert pixel_size_of(path) == PixelSize(1.5, 0.2, 0.2, "nanometer")


def test_no_size_without_unit_or_metadata(tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", _stack(), resolution=(72.0, 72.0), photometric="minisblack")
    tifffile.imwrite(tmp_path / "nounit.tif", _stack(), imagej=True, resolution=(2.0, 2.0))
    assert pixel_size_of(tmp_path / "plain.tif") is None  # a 72 dpi tag says nothing about the sample
    assert pixel_size_of(tmp_path / "nounit.tif") is None
    assert pixel_size_of(tmp_path / "missing.tif") is None and pixel_size_of(tmp_path) is None
    assert normalize_unit("micron") == normalize_unit("um") == "micrometer" and normalize_unit("pixel") is None


def test_import_keeps_it_and_exports_write_it(tmp_path):
    ws = Workspace(tmp_path / "ws")
    tifffile.imwrite(
        tmp_path / "ij.tif",
        _stack(),
        imagej=True,
        resolution=(2.0, 2.0),
        metadata={"unit": "micron", "spacing": 3.0, "axes": "ZYX"},
    )
    report = import_dataset(ws, "em", tmp_path / "ij.tif")
    assert ws.pixel_size("em") == PixelSize(3.0, 0.5, 0.5, "micrometer")
    assert any("pixel size 0.5 x 0.5 micrometer" in n for n in report.notices)
    assert any("pixel size 0.5 x 0.5 micrometer" in n for n in ws.dataset("em").notices)  # shown on the Data page
    out = export_dataset_omezarr(ws, "em", tmp_path / "em.zarr")
    assert read_omezarr(out)[1]["pixel_size"] == (3.0, 0.5, 0.5)
    assert read_omezarr(out)[1]["labels"] == []  # a dataset without masks: no empty labels image
    ws.rename_dataset("em", "em2")  # follows renames, leaves with deletes
    assert ws.pixel_size("em2") == PixelSize(3.0, 0.5, 0.5, "micrometer")
    ws.delete_dataset("em2")
    assert ws.catalog.pixel_size("em2") is None
    # OME-Zarr import keeps its scale too
    write_omezarr(tmp_path / "z.zarr", _stack(), pixel_size=(1.0, 0.1, 0.1), unit="micrometer")
    import_dataset(ws, "fromzarr", tmp_path / "z.zarr")
    assert ws.pixel_size("fromzarr") == PixelSize(1.0, 0.1, 0.1, "micrometer")


def test_workspace_without_the_table_still_opens(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ws.create_dataset("old", _stack(), None, class_names=["bg", "fg"])
    con = sqlite3.connect(ws.root / "catalog.sqlite")
    assert not con.execute("SELECT name FROM sqlite_master WHERE name='dataset_pixel_size'").fetchall()
    con.close()
    again = Workspace(ws.root)
    assert again.pixel_size("old") is None and again.dataset("old").shape == (3, 32, 40)


def test_masks_tiff_and_dataset_zip_carry_it(tmp_path):
    """The masks TIFF is calibrated like the images in Fiji; a dataset ZIP re-imports with its size."""
    from core.workflow.export import export_dataset_zip, export_masks_tiff

    ws = Workspace(tmp_path / "ws")
    masks = (_stack() > 125).astype(np.uint8)
    tifffile.imwrite(
        tmp_path / "ij.tif",
        _stack(),
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"unit": "nm", "spacing": 5.0, "axes": "ZYX"},
    )
    tifffile.imwrite(tmp_path / "m.tif", masks, photometric="minisblack")
    import_dataset(ws, "em", tmp_path / "ij.tif", tmp_path / "m.tif")
    size = PixelSize(5.0, 0.25, 0.25, "nanometer")
    assert ws.pixel_size("em") == size

    export_masks_tiff(ws, "em", tmp_path / "masks.tif")
    assert pixel_size_of(tmp_path / "masks.tif") == size
    with tifffile.TiffFile(tmp_path / "masks.tif") as tif:
        assert tif.imagej_metadata["unit"] == "nm" and len(tif.imagej_metadata["Labels"]) == 3

    export_dataset_zip(ws, "em", tmp_path / "em.zip")
    import_dataset(ws, "again", tmp_path / "em.zip")
    assert ws.pixel_size("again") == size
    assert np.array_equal(ws.read_masks("again")[1], ws.read_masks("em")[1])


def test_unknown_size_writes_no_calibration(tmp_path):
    from core.workflow.export import export_masks_tiff

    ws = Workspace(tmp_path / "ws")
    tifffile.imwrite(tmp_path / "m.tif", (_stack() > 125).astype(np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "i.tif", _stack(), photometric="minisblack")
    import_dataset(ws, "plain", tmp_path / "i.tif", tmp_path / "m.tif")
    export_masks_tiff(ws, "plain", tmp_path / "masks.tif")
    assert ws.pixel_size("plain") is None and pixel_size_of(tmp_path / "masks.tif") is None
