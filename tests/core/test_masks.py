"""core.data.masks: accepted label forms, mapping of value sets, stray values never silently rounded."""

import numpy as np
import pytest

from core.data.masks import StrayMaskValues, default_class_names, to_export_values, to_labels


@pytest.mark.parametrize(
    "mask, expected",
    [
        (np.array([[0, 1], [1, 0]], np.uint8), [[0, 1], [1, 0]]),
        (np.array([[0, 255], [255, 0]], np.uint8), [[0, 1], [1, 0]]),
        (np.array([[False, True], [True, False]]), [[0, 1], [1, 0]]),
        (np.array([[0, 1], [1, 0]], np.float32), [[0, 1], [1, 0]]),
    ],
)
def test_binary_forms(mask, expected):
    out = to_labels(mask)
    assert out.labels.dtype == np.uint8 and out.n_classes == 2
    assert out.labels.tolist() == expected


def test_label_image_for_mri_classes():
    mask = np.array([[0, 1, 2, 3]] * 4, np.uint16)  # background, WM, GM, CSF
    out = to_labels(mask)
    assert out.n_classes == 4 and out.labels.tolist() == mask.tolist() and out.notice == ""


def test_spread_values_are_mapped_with_notice():
    mask = np.repeat(np.array([0, 85, 170, 255], np.uint8), 100).reshape(20, 20)
    out = to_labels(mask, source="m.png")
    assert out.n_classes == 4
    assert sorted(np.unique(out.labels).tolist()) == [0, 1, 2, 3]
    assert "m.png" in out.notice and out.value_of_class == (0, 85, 170, 255)


def test_antialiased_mask_is_refused_with_threshold_offer():
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    mask[7, 8:24] = 128  # anti-aliased edge
    mask[24, 8:24] = 64
    mask[8:24, 7] = 191
    mask[5, 5] = 3
    with pytest.raises(StrayMaskValues) as err:
        to_labels(mask, source="edge.png")
    assert "edge.png" in str(err.value) and err.value.suggested_threshold == 127
    out = to_labels(mask, threshold=err.value.suggested_threshold)
    assert out.labels[7, 10] == 1 and out.labels[24, 10] == 0 and out.labels[16, 16] == 1


def test_jpeg_noise_is_refused():
    rng = np.random.default_rng(1)
    mask = np.where(rng.random((64, 64)) > 0.5, 250, 3).astype(np.uint8)
    mask += rng.integers(0, 5, mask.shape, dtype=np.uint8)
    with pytest.raises(StrayMaskValues):
        to_labels(mask)


def test_nan_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        to_labels(np.array([[0.0, np.nan]]))


def test_export_values_and_names():
    assert to_export_values(np.array([0, 1], np.uint8), 2).tolist() == [0, 255]
    assert to_export_values(np.array([0, 2], np.uint8), 3).tolist() == [0, 2]
    assert default_class_names(2) == ["background", "foreground"]
    assert default_class_names(3)[2] == "class 2"


def test_gapped_values_are_a_question_remap_answers_it():
    from core.data.masks import GappedMaskValues

    m = np.zeros((2, 12, 12), np.uint8)
    m[:, 1:4, 1:4], m[:, 5:8, 5:8], m[:, 9:11, 9:11] = 1, 2, 7
    with pytest.raises(GappedMaskValues, match=r"values \{0, 1, 2, 7\} leave gaps \(3, 4, 5, 6") as err:
        to_labels(m, source="lab.tif")
    assert err.value.values == [0, 1, 2, 7]
    out = to_labels(m, remap=True)
    assert out.n_classes == 4 and out.labels[0, 10, 10] == 3 and out.value_of_class == (0, 1, 2, 7)
    assert "remapped" in out.notice
    assert to_labels(m, n_classes=8).n_classes == 8  # a SegDash export knows its classes
    assert to_labels(np.array([[0, 1], [2, 3]], np.uint8)).n_classes == 4  # no gap, no question


def test_threshold_over_several_classes_asks_before_merging():
    from core.data.masks import ThresholdMergesClasses

    m = np.zeros((12, 12), np.uint8)
    m[1:5, 1:5], m[6:10, 6:10] = 1, 2
    with pytest.raises(ThresholdMergesClasses, match=r"lab.tif: the masks hold 3 classes \(values 0, 1, 2\)"):
        to_labels(m, threshold=0.5, source="lab.tif")
    merged = to_labels(m, threshold=0.5, merge=True)
    assert merged.n_classes == 2 and merged.labels[7, 7] == 1
    binary = (m > 0).astype(np.uint8) * 255
    assert to_labels(binary, threshold=100).n_classes == 2  # two classes: nothing merged, no question
