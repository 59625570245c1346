"""Objects and measurements against hand-computed values on small synthetic shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.draw import disk

from core.data.pixelsize import PixelSize
from core.errors import SegDashError
from core.measure.objects import label_class
from core.measure.tables import measure_masks, write_labels, write_table
from core.measure.trust import match_objects, trust_figures, trust_sentence

CLASSES = ["background", "cell"]


def _disc(shape=(1, 100, 100), centre=(50, 50), r=20, value=1) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    rr, cc = disk(centre, r, shape=shape[1:])
    m[:, rr, cc] = value
    return m


def test_a_disc_area_and_perimeter_are_close_to_pi_r2_and_2_pi_r():
    r = 20
    obj = measure_masks(_disc(r=r), None, CLASSES).objects
    assert len(obj) == 1
    row = obj.iloc[0]
    assert row["area"] == pytest.approx(math.pi * r * r, rel=0.01)  # 1245 px for 1256.6
    assert row["perimeter"] == pytest.approx(2 * math.pi * r, rel=0.03)  # 128.6 px for 125.7
    assert row["equivalent_diameter"] == pytest.approx(2 * r, rel=0.01)
    assert 0.93 < row["circularity"] <= 1.0
    assert row["aspect_ratio"] == pytest.approx(1.0, abs=0.01)
    assert row["feret_min"] == pytest.approx(2 * r, abs=1.5) and row["feret_max"] == pytest.approx(2 * r, abs=2)
    assert not row["border"]


def test_a_rectangle_measures_as_counted_by_hand():
    m = np.zeros((1, 30, 40), np.uint8)
    m[0, 5:15, 10:30] = 1  # 10 x 20
    img = np.full((1, 30, 40), 7, np.uint8)
    img[0, 5:10, 10:30] = 9
    row = measure_masks(m, img, CLASSES).objects.iloc[0]
    assert row["area"] == 200 and row["solidity"] == pytest.approx(1.0)
    assert row["feret_min"] == pytest.approx(10) and row["feret_max"] == pytest.approx(math.hypot(10, 20), abs=0.5)
    assert row["intensity_mean"] == 8 and row["intensity_min"] == 7 and row["intensity_max"] == 9
    assert row["intensity_std"] == pytest.approx(1.0)
    assert (row["bbox_y0"], row["bbox_x0"], row["bbox_y1"], row["bbox_x1"]) == (5, 10, 15, 30)
    assert row["aspect_ratio"] == pytest.approx(2.0, rel=0.02)


def test_two_touching_discs_are_one_object_until_split():
    m = _disc((1, 100, 140), (50, 45), 22) | _disc((1, 100, 140), (50, 85), 22)
    assert len(measure_masks(m, None, CLASSES).objects) == 1
    split = measure_masks(m, None, CLASSES, split=True, min_distance=10)
    assert len(split.objects) == 2
    assert split.objects["area"].sum() == (m == 1).sum()
    assert split.objects["area"].min() > 0.4 * (m == 1).sum()


def test_an_object_spanning_slices_is_one_object_in_3d_and_one_per_slice_in_2d():
    m = _disc((5, 60, 60), (30, 30), 10)
    assert len(measure_masks(m, None, CLASSES, mode="2d").objects) == 5
    r = measure_masks(m, None, CLASSES, mode="3d", zs=[10, 11, 12, 13, 14])
    assert len(r.objects) == 1
    row = r.objects.iloc[0]
    assert row["volume"] == (m == 1).sum() and (row["z_first"], row["z_last"]) == (10, 14)
    assert row["border"]  # it reaches the first and the last slice of the stack
    assert 0 < row["sphericity"] <= 1 and row["surface"] > 0
    # 26-connectivity joins a diagonal step between slices, 6-connectivity does not
    d = np.zeros((2, 5, 5), bool)
    d[0, 1, 1] = d[1, 2, 2] = True
    assert label_class(d, "3d").max() == 1 and label_class(d, "3d", connectivity=1).max() == 2


def test_3d_refuses_slices_that_are_not_consecutive():
    with pytest.raises(SegDashError, match="consecutive"):
        measure_masks(np.zeros((2, 5, 5), np.uint8), None, CLASSES, mode="3d", zs=[0, 2])


def test_an_object_cut_by_the_border_is_flagged():
    m = _disc((1, 60, 60), (30, 30), 8)
    m[0, 0:5, 40:50] = 1
    obj = measure_masks(m, None, CLASSES).objects.sort_values("area")
    assert obj["border"].tolist() == [True, False]
    assert measure_masks(m, None, CLASSES).dataset["border"].tolist() == [1]


def test_physical_units_scale_lengths_by_the_pixel_and_areas_by_its_square():
    px = PixelSize(z=1.0, y=0.5, x=0.5, unit="micrometer")
    r = measure_masks(_disc(r=15), None, CLASSES, pixel_size=px)
    row = r.objects.iloc[0]
    assert row["area_um2"] == pytest.approx(row["area"] * 0.25)
    assert row["perimeter_um"] == pytest.approx(row["perimeter"] * 0.5)
    assert row["feret_max_um"] == pytest.approx(row["feret_max"] * 0.5)
    assert r.dataset["density_per_um2"].iloc[0] == pytest.approx(1 / (100 * 100 * 0.25))
    # in 3D the z step counts: 2 slices 3 um apart make each voxel 0.5 x 0.5 x 3 um
    v = measure_masks(
        _disc((2, 40, 40), (20, 20), 5), None, CLASSES, mode="3d", pixel_size=PixelSize(3, 0.5, 0.5, "um")
    )
    row = v.objects.iloc[0]
    n = (_disc((2, 40, 40), (20, 20), 5) == 1).sum()
    assert row["volume_um3"] == pytest.approx(n * 0.5 * 0.5 * 3)


def test_classes_are_measured_apart_and_numbered_into_one_label_image(tmp_path):
    m = _disc((1, 60, 60), (20, 20), 6, 1) + _disc((1, 60, 60), (40, 40), 6, 2)
    m[0, 0, 0] = 255  # not labeled: neither object nor background
    r = measure_masks(m, None, ["bg", "a", "b"])
    assert r.counts() == {"a": 1, "b": 1}
    assert sorted(np.unique(r.labels).tolist()) == [0, 1, 2]
    assert r.notes and "not-labeled" in r.notes[0]
    assert write_table(r, tmp_path / "o.csv").read_text().startswith("object,class,class_name,label")
    import openpyxl

    wb = openpyxl.load_workbook(write_table(r, tmp_path / "o.xlsx"))
    assert wb.sheetnames == ["objects", "slices", "dataset"]
    import tifffile

    assert (tifffile.imread(write_labels(r, tmp_path / "l.tif")) == r.labels[0]).all()
    with pytest.raises(SegDashError, match=".csv or .xlsx"):
        write_table(r, tmp_path / "o.txt")


def test_matching_is_one_to_one_at_iou_half():
    t = np.zeros((20, 20), int)
    t[0:10, 0:10] = 1
    t[12:18, 12:18] = 2
    p = np.zeros((20, 20), int)
    p[0:10, 0:6] = 1  # IoU 0.6 with truth 1
    p[0:10, 6:10] = 2  # IoU 0.4: a second prediction on the same object does not match
    m = match_objects(t, p)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["mean_matched_iou"] == pytest.approx(0.6)


def test_trust_figures_count_error_size_bias_and_f1():
    truth = _disc((1, 100, 100), (30, 30), 10) | _disc((1, 100, 100), (70, 70), 10)
    pred = _disc((1, 100, 100), (30, 30), 11)  # one found, a little too large; one missed
    rows = trust_figures(measure_masks(truth, None, CLASSES), measure_masks(pred, None, CLASSES))
    r = rows[0]
    assert (r["n_true"], r["n_pred"], r["tp"], r["fp"], r["fn"]) == (2, 1, 1, 0, 1)
    assert r["count_error_pct"] == -50.0 and r["precision"] == 1.0 and r["recall"] == 0.5
    assert r["f1"] == pytest.approx(2 / 3, abs=1e-4)
    a10, a11 = (_disc(r=10) == 1).sum(), (_disc(r=11) == 1).sum()
    assert r["size_bias_pct"] == pytest.approx(100 * (a11 - a10) / a10, abs=0.01)
    assert r["area_fraction_bias_pct"] == pytest.approx(100 * (a11 - 2 * a10) / (2 * a10), abs=0.01)
    assert "counts 50 % too few cell objects (1 vs 2)" in trust_sentence(rows, "held-out test")


def test_a_volume_read_slice_by_slice_without_labels_measures_the_same():
    from core.data.chunked import Volume

    m = _disc((3, 60, 60), (30, 30), 9) | _disc((3, 60, 60), (10, 45), 5)
    img = (m * 50 + 20).astype(np.uint8)
    whole = measure_masks(m, img, CLASSES)
    lazy = measure_masks(Volume.from_array(m), Volume.from_array(img), CLASSES, keep_labels=False)
    assert lazy.labels is None and lazy.objects.equals(whole.objects) and lazy.slices.equals(whole.slices)
    with pytest.raises(SegDashError, match="no label image"):
        write_labels(lazy)


@pytest.mark.parametrize("connectivity", [1, 3])
def test_3d_block_by_block_merges_objects_across_blocks_as_the_whole_volume_does(connectivity):
    from core.data.chunked import Volume

    rng = np.random.default_rng(3)
    m = (rng.random((9, 24, 24)) < (0.3 if connectivity == 1 else 0.05)).astype(np.uint8)  # many, some across blocks
    m[:, 10:14, 10:14] = 1  # one through all 9 slices
    img = rng.integers(0, 255, m.shape).astype(np.uint8)
    keys = ["volume", "z_first", "z_last", "bbox_y0", "bbox_x1", "centroid_z", "centroid_x", "border"]
    keys += ["intensity_mean", "intensity_std", "intensity_min", "intensity_max"]
    whole = measure_masks(m, img, CLASSES, mode="3d", connectivity=connectivity, zs=range(5, 14))
    blocks = measure_masks(
        Volume.from_array(m),
        Volume.from_array(img),
        CLASSES,
        mode="3d",
        connectivity=connectivity,
        zs=range(5, 14),
        block=2,
    )
    assert len(blocks.objects) == len(whole.objects) > 20 and blocks.labels is None
    a = whole.objects.sort_values(keys[:6]).reset_index(drop=True)
    b = blocks.objects.sort_values(keys[:6]).reset_index(drop=True)
    for k in keys:
        assert np.allclose(a[k].astype(float), b[k].astype(float)), k
    assert blocks.slices["count"].tolist() == whole.slices["count"].tolist()
    assert "slices at a time" in blocks.notes[-1]


def test_split_on_the_models_probability_follows_its_two_peaks():
    m = _disc((1, 60, 100), (30, 35), 16) | _disc((1, 60, 100), (30, 62), 16)
    yy, xx = np.mgrid[:60, :100]
    prob = np.maximum(
        np.exp(-((yy - 30) ** 2 + (xx - 35) ** 2) / 200), np.exp(-((yy - 30) ** 2 + (xx - 62) ** 2) / 200)
    )
    r = measure_masks(m, None, CLASSES, split=True, min_distance=8, probability=prob[None])
    assert len(r.objects) == 2
    left = r.objects.sort_values("centroid_x").iloc[0]
    assert left["centroid_x"] < 48 and left["bbox_x1"] <= 50  # the cut lies between the peaks
