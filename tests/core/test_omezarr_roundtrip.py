"""OME-Zarr round trip (issue 28.1): a dataset exported as OME-Zarr and imported back (``--images X.zarr
--masks X.zarr/labels/masks``) is the same dataset: every mask, which slices are labeled, the pixels not
labeled in partial masks, the class names and the pixel size; the metadata is valid for
ome-zarr-models, and every level is chunked one slice deep, at most 1024 x 1024."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from core.data.masks import UNLABELED
from core.data.omezarr import CHUNK_SIDE, labels_manifest
from core.workflow.export import export_dataset_omezarr
from core.workflow.ingest import import_dataset
from tests.synthetic import discs


def _dataset(ws, name: str, n_classes: int, shape=(8, 300, 260)) -> None:
    """Slices 0, 2, 5 labeled whole, 3 and 6 partly (255 elsewhere), 1, 4, 7 unlabeled; a pixel size."""
    rng = np.random.default_rng(n_classes)
    z, h, w = shape
    pairs = [discs(rng, h, w) for _ in range(z)]
    masks: list[np.ndarray | None] = []
    for i, (_, mask) in enumerate(pairs):
        m = mask.astype(np.uint8)
        if n_classes > 2:
            m = m * (1 + (np.arange(w)[None, :] > w // 2)).astype(np.uint8)  # classes 0, 1, 2
        if i in (3, 6):
            m = m.copy()
            m[:, : w // 3] = UNLABELED  # a partial mask: only part of the slice labeled
        masks.append(None if i in (1, 4, 7) else m)
    names = ["background", "membrane"] if n_classes == 2 else ["bg", "cell", "nucleus"]
    ws.create_dataset(name, np.stack([p[0] for p in pairs]).astype(np.uint16) * 300, masks, class_names=names)
    ws.catalog.set_pixel_size(name, 2.0, 0.25, 0.25, "micrometer")


def _same_dataset(ws, a: str, b: str) -> None:
    ia, ib = ws.dataset(a), ws.dataset(b)
    assert ib.shape == ia.shape and ib.class_names == ia.class_names
    np.testing.assert_array_equal(ws.read_images(b), ws.read_images(a))
    assert ws.labeled_slices(b) == ws.labeled_slices(a)
    assert [s != "unlabeled" for s in ib.statuses] == [s != "unlabeled" for s in ia.statuses]
    assert ib.labeled == ia.labeled  # the share of pixels labeled, slice by slice (None: whole)
    for z in range(ia.shape[0]):
        ma, mb = ws.read_mask(a, z), ws.read_mask(b, z)
        assert (ma is None) == (mb is None), z
        if ma is not None:
            np.testing.assert_array_equal(mb, ma)
    assert ws.pixel_size(b) == ws.pixel_size(a)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_export_then_import_gives_back_the_same_dataset(ws, tmp_path, n_classes):
    _dataset(ws, "orig", n_classes)
    assert "partial" in ws.dataset("orig").coverage
    out = export_dataset_omezarr(ws, "orig", tmp_path / "x.zarr")
    manifest = labels_manifest(out / "labels" / "masks")
    assert manifest["labeled_slices"] == [0, 2, 3, 5, 6] and manifest["unlabeled_value"] == UNLABELED
    report = import_dataset(ws, "back", out, out / "labels" / "masks")
    assert report.summary()["labeled"] == 5 and report.summary()["unlabeled"] == 3
    assert ws.dataset("back").coverage == ws.dataset("orig").coverage
    _same_dataset(ws, "orig", "back")


def test_import_of_an_export_without_partial_masks_keeps_unlabeled_slices_unlabeled(ws, tmp_path):
    rng = np.random.default_rng(3)
    pairs = [discs(rng, 64, 64) for _ in range(6)]
    masks = [p[1] if z % 2 == 0 else None for z, p in enumerate(pairs)]
    ws.create_dataset("half", np.stack([p[0] for p in pairs]), masks, class_names=["bg", "mito"])
    out = export_dataset_omezarr(ws, "half", tmp_path / "h.zarr")
    # whole masks, but slices without one: those are 255 ('not labeled', issue 27.6), never 0 (background)
    assert labels_manifest(out / "labels" / "masks")["unlabeled_value"] == 255
    import_dataset(ws, "back", out, out / "labels" / "masks")
    _same_dataset(ws, "half", "back")
    assert ws.dataset("back").class_names == ("bg", "mito")
    # class names given on import still win over the recorded ones
    import_dataset(ws, "named", out, out / "labels" / "masks", class_names=["background", "mitochondria"])
    assert ws.dataset("named").class_names == ("background", "mitochondria")
    assert ws.labeled_slices("named") == [0, 2, 4]


def test_metadata_validates_with_ome_zarr_models(ws, tmp_path):
    from ome_zarr_models.v04 import Image, ImageLabel

    _dataset(ws, "orig", 3)
    out = export_dataset_omezarr(ws, "orig", tmp_path / "x.zarr")
    root = zarr.open_group(str(out), mode="r")
    image = Image.from_zarr(root)
    assert [a.name for a in image.attributes.multiscales[0].axes] == ["z", "y", "x"]
    label = ImageLabel.from_zarr(root["labels/masks"])
    meta = label.attributes.image_label
    assert meta.source is not None and meta.source.image == "../../"
    assert sorted(c.label_value for c in meta.colors) == [0, 1, 2, UNLABELED]
    props = json.loads((out / "labels" / "masks" / ".zattrs").read_text())["image-label"]["properties"]
    assert {p["label-value"]: p["class"] for p in props} == {0: "bg", 1: "cell", 2: "nucleus", 255: "not labeled"}


def test_every_level_is_chunked_one_slice_deep_and_at_most_1024_a_side(ws, tmp_path):
    rng = np.random.default_rng(5)
    z, h, w = 3, 1100, 300
    images = np.stack([discs(rng, h, w)[0] for _ in range(z)])
    ws.create_dataset("tall", images, [discs(rng, h, w)[1], None, None], class_names=["bg", "fg"])
    out = export_dataset_omezarr(ws, "tall", tmp_path / "t.zarr")
    for group in (out, out / "labels" / "masks"):
        levels = sorted(p.name for p in group.iterdir() if p.name.startswith("s"))
        assert levels == ["s0", "s1"]
        for level in levels:
            arr = zarr.open_array(str(group / level), mode="r")
            assert arr.chunks == (1, min(arr.shape[1], CHUNK_SIDE), min(arr.shape[2], CHUNK_SIDE)), (group, level)
    np.testing.assert_array_equal(zarr.open_array(str(out / "s0"), mode="r")[:], images)
