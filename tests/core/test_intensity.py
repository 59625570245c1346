"""core.data.intensity: percentile windows and normalisation."""

import numpy as np
import pytest

from core.data.intensity import normalize, percentile_range, to_uint8


def test_percentile_window_ignores_outliers():
    img = np.full((100, 100), 100, np.uint16)
    img[:50] = 200
    img[0, 0] = 65535
    lo, hi = percentile_range(img, 1, 99)
    assert lo == 100 and hi == 200
    out = normalize(img, (lo, hi))
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1


def test_constant_image_and_bad_percentiles():
    assert percentile_range(np.zeros((4, 4))) == (0.0, 1.0)
    with pytest.raises(ValueError):
        percentile_range(np.zeros((4, 4)), 90, 10)


def test_to_uint8_keeps_uint8_and_scales_others():
    u8 = np.arange(10, dtype=np.uint8).reshape(2, 5)
    assert to_uint8(u8) is not None and np.array_equal(to_uint8(u8), u8)
    f = np.linspace(0, 1, 100, dtype=np.float32).reshape(10, 10)
    assert to_uint8(f, (0.0, 1.0)).max() == 255


def test_stack_is_subsampled_not_read_whole():
    stack = np.random.default_rng(0).random((64, 256, 256)).astype(np.float32)
    lo, hi = percentile_range(stack)
    assert 0 <= lo < 0.05 and 0.95 < hi <= 1
