"""core.workflow.ingest: pairing by slice and by stem, refusals with names and shapes, re-import of exports."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data.masks import StrayMaskValues
from core.workflow.export import export_dataset_zip, export_masks_tiff, export_masks_zip, to_bytes
from core.workflow.ingest import import_dataset


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_stack_with_mask_stack_pairs_by_index(ws, tmp_path):
    imgs = np.random.default_rng(0).integers(0, 4000, (4, 16, 16), dtype=np.uint16)
    masks = np.zeros((4, 16, 16), np.uint8)
    masks[:, 4:8, 4:8] = 255
    tifffile.imwrite(tmp_path / "em.tif", imgs, photometric="minisblack")
    tifffile.imwrite(tmp_path / "em_masks.tif", masks, photometric="minisblack")
    rep = import_dataset(ws, "em", tmp_path / "em.tif", tmp_path / "em_masks.tif", class_names=["bg", "mito"])
    assert rep.dataset.shape == (4, 16, 16) and rep.dataset.dtype == "uint16"
    assert rep.dataset.slice_names == ("em_0000", "em_0001", "em_0002", "em_0003")
    assert ws.read_mask("em", 3)[5, 5] == 1 and ws.read_mask("em", 3)[0, 0] == 0
    np.testing.assert_array_equal(np.asarray(ws.read_images("em")), imgs)


def test_slice_count_mismatch_is_refused_with_counts(ws, tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    with pytest.raises(ValueError, match=r"a.tif\) have 3 slices but masks \(m.tif\) have 2"):
        import_dataset(ws, "x", tmp_path / "a.tif", tmp_path / "m.tif")
    assert ws.dataset_names() == []


def test_shape_mismatch_names_both_shapes(ws, tmp_path):
    _save(tmp_path / "i" / "s1.png", np.zeros((8, 8), np.uint8))
    _save(tmp_path / "m" / "s1.png", np.zeros((8, 9), np.uint8))
    with pytest.raises(ValueError, match=r"8x8.*8x9"):
        import_dataset(ws, "x", tmp_path / "i", tmp_path / "m")


def test_files_pair_by_stem_and_unmatched_images_are_unlabeled(ws, tmp_path):
    for n in ("cell2", "cell10", "cell1"):
        _save(tmp_path / "i" / f"{n}.png", np.full((8, 8), 9, np.uint8))
    _save(tmp_path / "m" / "cell10_mask.png", np.full((8, 8), 1, np.uint8))
    _save(tmp_path / "m" / "cell1.png", np.zeros((8, 8), np.uint8))
    rep = import_dataset(ws, "c", tmp_path / "i", tmp_path / "m")
    assert rep.dataset.slice_names == ("cell1", "cell2", "cell10")
    assert rep.dataset.statuses == ("labeled", "unlabeled", "labeled")
    assert any("no mask" in n for n in rep.notices)
    assert ws.read_mask("c", 2).max() == 1


def test_mask_without_image_is_refused_by_name(ws, tmp_path):
    _save(tmp_path / "i" / "a.png", np.zeros((8, 8), np.uint8))
    _save(tmp_path / "m" / "zzz.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="zzz.png"):
        import_dataset(ws, "x", tmp_path / "i", tmp_path / "m")


def test_stray_mask_values_then_threshold(ws, tmp_path):
    img = np.zeros((1, 16, 16), np.uint8)
    mask = np.zeros((1, 16, 16), np.uint8)
    mask[0, 4:12, 4:12] = 255
    mask[0, 3, 4:12] = 127
    mask[0, 12, 4:12] = 30
    tifffile.imwrite(tmp_path / "i.tif", img, photometric="minisblack")
    tifffile.imwrite(tmp_path / "m.tif", mask, photometric="minisblack")
    with pytest.raises(StrayMaskValues):
        import_dataset(ws, "x", tmp_path / "i.tif", tmp_path / "m.tif")
    rep = import_dataset(ws, "x", tmp_path / "i.tif", tmp_path / "m.tif", mask_threshold=100)
    assert ws.read_mask("x", 0)[3, 5] == 1 and ws.read_mask("x", 0)[12, 5] == 0
    assert any("threshold" in n for n in rep.notices)


def test_multiclass_mri_labels(ws, tmp_path):
    lab = np.zeros((2, 12, 12), np.uint8)
    lab[:, 2:10, 2:10] = 1
    lab[:, 4:8, 4:8] = 2
    lab[:, 5:7, 5:7] = 3
    tifffile.imwrite(tmp_path / "mri.tif", np.ones((2, 12, 12), np.int16) * 300, photometric="minisblack")
    tifffile.imwrite(tmp_path / "lab.tif", lab, photometric="minisblack")
    rep = import_dataset(
        ws,
        "mri",
        tmp_path / "mri.tif",
        tmp_path / "lab.tif",
        class_names=["background", "white matter", "grey matter", "CSF"],
    )
    assert rep.dataset.n_classes == 4 and rep.dataset.dtype == "int16"
    np.testing.assert_array_equal(ws.read_mask("mri", 1), lab[1])
    with pytest.raises(ValueError, match="4 classes but 2 class names"):
        import_dataset(ws, "mri2", tmp_path / "mri.tif", tmp_path / "lab.tif", class_names=["a", "b"])


def test_export_names_and_reimport_round_trip(ws, tmp_path):
    for n in ("s1", "s2"):
        _save(tmp_path / "i" / f"{n}.png", np.random.default_rng(1).integers(0, 255, (8, 8), dtype=np.uint8))
    _save(tmp_path / "m" / "s2.png", np.eye(8, dtype=np.uint8) * 255)
    import_dataset(ws, "orig", tmp_path / "i", tmp_path / "m", class_names=["bg", "axon"])

    z = zipfile.ZipFile(io.BytesIO(to_bytes(export_masks_zip, ws, "orig")))
    assert z.namelist() == ["s2.png"]
    assert np.array(Image.open(z.open("s2.png"))).max() == 255

    tif = tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, ws, "orig")))
    assert tif.series[0].shape == (2, 8, 8)  # one page per image slice: lines up with the images in Fiji
    assert tif.imagej_metadata["Labels"] == ["s1 (unlabeled)", "s2"]
    tif = tifffile.TiffFile(io.BytesIO(to_bytes(export_masks_tiff, ws, "orig", labeled_only=True)))
    assert tif.series[0].shape in ((8, 8), (1, 8, 8)) and tif.imagej_metadata["Labels"] in (
        ["s2"],
        "s2",
    )  # tifffile reads one label as a str

    bundle = tmp_path / "orig.zip"
    export_dataset_zip(ws, "orig", bundle)
    rep = import_dataset(ws, "copy", bundle)
    assert rep.dataset.slice_names == ("s1", "s2") and rep.dataset.class_names == ("bg", "axon")
    assert rep.dataset.statuses == ("unlabeled", "labeled")
    np.testing.assert_array_equal(ws.read_mask("copy", 1), ws.read_mask("orig", 1))
    np.testing.assert_array_equal(np.asarray(ws.read_images("copy")), np.asarray(ws.read_images("orig")))


def test_stack_slices_export_as_dataset_name_and_index(ws, tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((3, 8, 8), np.uint8), photometric="minisblack")
    tifffile.imwrite(tmp_path / "vm.tif", np.ones((3, 8, 8), np.uint8), photometric="minisblack")
    import_dataset(ws, "vol", tmp_path / "v.tif", tmp_path / "vm.tif")
    z = zipfile.ZipFile(io.BytesIO(to_bytes(export_masks_zip, ws, "vol")))
    assert z.namelist() == ["vol_0000.png", "vol_0001.png", "vol_0002.png"]


def test_uint16_dataset_reimports_with_its_dtype(ws, tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.full((2, 8, 8), 4000, np.uint16), photometric="minisblack")
    import_dataset(ws, "u16", tmp_path / "v.tif")
    export_dataset_zip(ws, "u16", tmp_path / "b.zip")
    rep = import_dataset(ws, "u16b", tmp_path / "b.zip")
    assert rep.dataset.dtype == "uint16" and int(ws.read_images("u16b")[1, 3, 3]) == 4000


def test_export_without_masks_is_refused(ws, tmp_path):
    tifffile.imwrite(tmp_path / "v.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    import_dataset(ws, "bare", tmp_path / "v.tif")
    with pytest.raises(ValueError, match="no masks yet"):
        export_masks_zip(ws, "bare", tmp_path / "o.zip")
    assert not (tmp_path / "o.zip").exists()


# -- data sanity and uploads (issue 10 point 7, issue 11 point 3) -------------------------------


class _Upload(io.BytesIO):
    def __init__(self, name, data):
        super().__init__(data)
        self.name = name


def test_one_image_file_and_one_mask_file_pair_whatever_their_names(ws, tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (8, 8), dtype=np.uint8)
    _save(tmp_path / "a.png", img)
    _save(tmp_path / "b.png", np.eye(8, dtype=np.uint8) * 255)
    rep = import_dataset(ws, "ab", tmp_path / "a.png", tmp_path / "b.png")
    assert rep.dataset.statuses == ("labeled",) and ws.read_mask("ab", 0)[3, 3] == 1
    tifffile.imwrite(tmp_path / "x.tif", np.stack([img, img]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "y.tif", np.ones((2, 8, 8), np.uint8), photometric="minisblack")
    assert import_dataset(ws, "xy", tmp_path / "x.tif", tmp_path / "y.tif").dataset.counts()["labeled"] == 2
    up = import_dataset(
        ws,
        "up",
        [_Upload("c.png", (tmp_path / "a.png").read_bytes())],
        [_Upload("d.png", (tmp_path / "b.png").read_bytes())],
    )
    assert up.dataset.statuses == ("labeled",)


def test_too_many_class_names_are_refused(ws, tmp_path):
    from core.workflow.ingest import TooManyClassNames

    lab = np.zeros((2, 12, 12), np.uint8)
    lab[:, 2:6, 2:6], lab[:, 7:10, 7:10] = 1, 2
    tifffile.imwrite(
        tmp_path / "i.tif",
        np.random.default_rng(0).integers(0, 255, (2, 12, 12), dtype=np.uint8),
        photometric="minisblack",
    )
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    with pytest.raises(TooManyClassNames, match=r"4 class names .* hold 3 classes"):
        import_dataset(ws, "x", tmp_path / "i.tif", tmp_path / "l.tif", class_names=["bg", "a", "b", "c"])
    assert not ws.has_dataset("x")
    assert (
        import_dataset(ws, "x", tmp_path / "i.tif", tmp_path / "l.tif", class_names=["bg", "a", "b"]).dataset.n_classes
        == 3
    )


def test_gapped_mask_values_ask_then_remap(ws, tmp_path):
    from core.data.masks import GappedMaskValues

    lab = np.zeros((2, 12, 12), np.uint8)
    lab[:, 2:6, 2:6], lab[:, 7:10, 7:10] = 1, 7
    tifffile.imwrite(
        tmp_path / "i.tif",
        np.random.default_rng(0).integers(0, 255, (2, 12, 12), dtype=np.uint8),
        photometric="minisblack",
    )
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    with pytest.raises(GappedMaskValues, match="l.tif"):
        import_dataset(ws, "g", tmp_path / "i.tif", tmp_path / "l.tif")
    rep = import_dataset(ws, "g", tmp_path / "i.tif", tmp_path / "l.tif", remap_classes=True)
    assert rep.dataset.n_classes == 3 and ws.read_mask("g", 0)[8, 8] == 2


def test_images_that_look_like_masks_are_a_question(ws, tmp_path):
    from core.workflow.ingest import ImagesLookLikeMasks

    binary = np.zeros((2, 8, 8), np.uint8)
    binary[:, 2:5, 2:5] = 255
    tifffile.imwrite(tmp_path / "m.tif", binary, photometric="minisblack")
    with pytest.raises(ImagesLookLikeMasks, match=r"m.tif: the images hold only two values \(0 and 255\)"):
        import_dataset(ws, "s", tmp_path / "m.tif")
    assert import_dataset(ws, "s", tmp_path / "m.tif", images_are_binary=True).dataset.shape == (2, 8, 8)
    tifffile.imwrite(tmp_path / "blank.tif", np.zeros((2, 8, 8), np.uint8), photometric="minisblack")
    assert import_dataset(ws, "blank", tmp_path / "blank.tif").dataset.shape == (2, 8, 8)  # one value: no question


def test_threshold_on_multiclass_masks_asks_before_merging(ws, tmp_path):
    from core.data.masks import ThresholdMergesClasses

    lab = np.zeros((2, 12, 12), np.uint8)
    lab[:, 2:6, 2:6], lab[:, 7:10, 7:10] = 1, 2
    tifffile.imwrite(
        tmp_path / "i.tif",
        np.random.default_rng(0).integers(0, 255, (2, 12, 12), dtype=np.uint8),
        photometric="minisblack",
    )
    tifffile.imwrite(tmp_path / "l.tif", lab, photometric="minisblack")
    with pytest.raises(ThresholdMergesClasses, match="merges"):
        import_dataset(ws, "t", tmp_path / "i.tif", tmp_path / "l.tif", mask_threshold=0.5)
    rep = import_dataset(ws, "t", tmp_path / "i.tif", tmp_path / "l.tif", mask_threshold=0.5, merge_classes=True)
    assert rep.dataset.n_classes == 2 and ws.read_mask("t", 0)[8, 8] == 1


def test_planar_tiff_as_stack_or_colour(ws, tmp_path):
    from core.data.io import StackOrColourNeeded

    data = np.random.default_rng(0).integers(0, 255, (3, 8, 8), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "p.tif", data, photometric="rgb", planarconfig="separate")
    with pytest.raises(StackOrColourNeeded):
        import_dataset(ws, "p", tmp_path / "p.tif")
    assert import_dataset(ws, "p", tmp_path / "p.tif", as_stack=True).dataset.shape == (3, 8, 8)
    assert import_dataset(ws, "c", tmp_path / "p.tif", as_stack=False).dataset.shape == (1, 8, 8)


def test_all_nan_images_are_refused_with_their_own_message(ws, tmp_path):
    tifffile.imwrite(tmp_path / "nan.tif", np.full((3, 8, 8), np.nan, np.float32), photometric="minisblack")
    with pytest.raises(ValueError, match=r"nan.tif: all 3 slices hold no number \(every pixel is NaN") as err:
        import_dataset(ws, "n", tmp_path / "nan.tif", images_are_binary=True)
    assert "two values" not in str(err.value) and not ws.has_dataset("n")
    tifffile.imwrite(tmp_path / "one.tif", np.full((8, 8), np.inf, np.float32))
    with pytest.raises(ValueError, match="one.tif: the image holds no number"):
        import_dataset(ws, "n", tmp_path / "one.tif")
    partly = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    partly[1] = np.nan  # a blank slice among others is data
    tifffile.imwrite(tmp_path / "partly.tif", partly, photometric="minisblack")
    assert import_dataset(ws, "p", tmp_path / "partly.tif").dataset.shape == (3, 8, 8)


def test_page_by_page_images_and_masks_pair_slice_by_slice(ws, tmp_path):
    rng = np.random.default_rng(0)
    for name, page in (("img.tif", lambda: rng.integers(0, 255, (8, 8), dtype=np.uint8)), ("m.tif", None)):
        with tifffile.TiffWriter(tmp_path / name) as tif:
            for z in range(6):
                tif.write(page() if page else np.full((8, 8), z % 2, np.uint8), contiguous=False)
    report = import_dataset(ws, "pp", tmp_path / "img.tif", tmp_path / "m.tif")
    assert report.dataset.shape == (6, 8, 8) and report.dataset.counts()["labeled"] == 6
    assert any("6 pages" in n for n in report.notices)


def test_a_trailing_axis_of_one_reads_images_and_masks_alike(ws, tmp_path):
    from core.data.io import SingletonAxisNeeded

    img = np.random.default_rng(0).integers(0, 255, (5, 16, 1), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "i.tif", img)
    tifffile.imwrite(tmp_path / "m.tif", (img > 128).astype(np.uint8))
    with pytest.raises(SingletonAxisNeeded):
        import_dataset(ws, "s", tmp_path / "i.tif", tmp_path / "m.tif")
    assert import_dataset(ws, "s", tmp_path / "i.tif", tmp_path / "m.tif", as_stack=True).dataset.shape == (5, 16, 1)
    assert import_dataset(ws, "t", tmp_path / "i.tif", tmp_path / "m.tif", as_stack=False).dataset.shape == (1, 5, 16)


def test_a_mask_saved_with_a_trailing_axis_of_one_pairs_with_its_image(ws, tmp_path):
    img = np.random.default_rng(0).integers(0, 255, (16, 24), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "i.tif", img)
    tifffile.imwrite(tmp_path / "m.tif", (img > 128).astype(np.uint8)[..., None])  # (16, 24, 1)
    info = import_dataset(ws, "m", tmp_path / "i.tif", tmp_path / "m.tif").dataset
    assert info.shape == (1, 16, 24) and info.counts()["labeled"] == 1
    assert np.array_equal(ws.read_mask("m", 0), (img > 128).astype(np.uint8))


def test_uploaded_dataset_export_zip_imports_like_a_path(ws, tmp_path):
    for n in ("s1", "s2"):
        _save(tmp_path / "i" / f"{n}.png", np.random.default_rng(1).integers(0, 255, (8, 8), dtype=np.uint8))
    _save(tmp_path / "m" / "s2.png", np.eye(8, dtype=np.uint8) * 255)
    import_dataset(ws, "orig", tmp_path / "i", tmp_path / "m", class_names=["bg", "axon"])
    export_dataset_zip(ws, "orig", tmp_path / "orig.zip")
    rep = import_dataset(ws, "fromweb", [_Upload("orig.zip", (tmp_path / "orig.zip").read_bytes())])
    assert rep.dataset.slice_names == ("s1", "s2") and rep.dataset.class_names == ("bg", "axon")
    assert rep.dataset.statuses == ("unlabeled", "labeled")
    np.testing.assert_array_equal(ws.read_mask("fromweb", 1), ws.read_mask("orig", 1))
    # a hand-made ZIP with Images/ and Masks/ folders (any case), uploaded
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in ("a", "b"):
            zf.writestr(f"Images/{n}.png", (tmp_path / "i" / "s1.png").read_bytes())
        zf.writestr("Masks/b.png", (tmp_path / "m" / "s2.png").read_bytes())
    rep = import_dataset(ws, "hand", [_Upload("hand.zip", buf.getvalue())])
    assert rep.dataset.statuses == ("unlabeled", "labeled")


def test_progress_reports_files_read_and_slices_written(ws, tmp_path):
    tifffile.imwrite(
        tmp_path / "v.tif",
        np.random.default_rng(0).integers(0, 255, (5, 8, 8), dtype=np.uint8),
        photometric="minisblack",
    )
    seen = []
    import_dataset(ws, "v", tmp_path / "v.tif", progress=lambda done, total, stage: seen.append((stage, done, total)))
    assert seen[0] == ("images", 1, 1)
    assert [s for s in seen if s[0] == "writing"] == [("writing", z, 5) for z in range(1, 6)]
    np.testing.assert_array_equal(np.asarray(ws.read_images("v")), tifffile.imread(tmp_path / "v.tif"))


def test_import_roots_limit_paths_with_one_message(ws, tmp_path):
    root = tmp_path / "inbox"
    root.mkdir()
    tifffile.imwrite(tmp_path / "secret.tif", np.arange(64, dtype=np.uint8).reshape(1, 8, 8), photometric="minisblack")
    msgs = set()
    for p in (tmp_path / "secret.tif", tmp_path / "nothing.tif", root / ".." / "secret.tif"):
        with pytest.raises(ValueError) as err:
            import_dataset(ws, "x", p, roots=[root])
        msgs.add(str(err.value))
    assert len(msgs) == 1 and "secret" not in msgs.pop()
    (root / "in.tif").write_bytes((tmp_path / "secret.tif").read_bytes())
    assert import_dataset(ws, "x", root / "in.tif", roots=[root]).dataset.shape == (1, 8, 8)
    with pytest.raises(ValueError, match="outside the folders"):
        import_dataset(ws, "y", root / "in.tif", tmp_path / "secret.tif", roots=[root])


def test_default_import_roots_are_cwd_and_inbox(ws, monkeypatch, tmp_path):
    import os

    from core.workflow.ingest import import_roots

    monkeypatch.delenv("SEGDASH_IMPORT_ROOTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert import_roots(ws) == [tmp_path.resolve(), (ws.root / "inbox").resolve()]
    assert (ws.root / "inbox").is_dir()
    monkeypatch.setenv("SEGDASH_IMPORT_ROOTS", os.pathsep.join(["/data/a", "/data/b"]))
    assert import_roots(ws) == [Path("/data/a"), Path("/data/b")]
