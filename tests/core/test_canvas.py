"""core.view.canvas: strokes drawn at canvas size land on the right full-resolution pixels."""

import numpy as np
import pytest

from core.view import canvas as cv


def _path(points, k=1, sw=1.0, **extra):
    """Fabric JSON of a brush stroke through ``points`` (canvas pixels), ``sw`` canvas pixels wide."""
    cmds = [["M", *points[0]]] + [["L", *p] for p in points[1:]]
    return {"type": "Path", "stroke": cv.stroke_css(k), "strokeWidth": sw, "path": cmds, **extra}


def _poly(points, k=1, sw=0.0, **extra):
    return {
        "type": "Polygon",
        "stroke": cv.stroke_css(k),
        "fill": cv.stroke_css(k, 0.3),
        "strokeWidth": sw,
        "points": [{"x": x, "y": y} for x, y in points],
        **extra,
    }


def test_stroke_on_smaller_canvas_lands_at_full_resolution():
    # a 200 x 300 image shown on a 100 x 150 canvas: canvas point (x, y) is image point (2x, 2y)
    stroke = _path([(20.25, 10.25), (60.25, 10.25)], sw=2.0)  # 4 image pixels wide after scaling
    m = cv.apply_drawing(None, {"objects": [stroke]}, 2, canvas_hw=(100, 150), shape=(200, 300))
    rows = np.nonzero(m.any(axis=1))[0]
    cols = np.nonzero(m.any(axis=0))[0]
    # centre line on image row 20 (y = 20.5), columns 40.5 .. 120.5; pixels within 2 of it
    assert rows.tolist() == [18, 19, 20, 21, 22]
    assert m[18:23, 40:121].all()
    assert (cols.min(), cols.max()) == (38, 122)  # the round caps reach 2 pixels beyond the ends
    assert set(np.unique(m)) == {0, 1}


def test_stroke_on_larger_canvas_is_thinner_in_image_pixels():
    # a 20 x 20 image on a 400 x 400 canvas: a 20-canvas-pixel brush is one image pixel wide
    stroke = _path([(10 * 20 + 10, 5 * 20 + 10), (10 * 20 + 10, 14 * 20 + 10)], sw=20)
    m = cv.apply_drawing(np.zeros((20, 20), np.uint8), {"objects": [stroke]}, 2, canvas_hw=(400, 400))
    expect = np.zeros((20, 20), np.uint8)
    expect[5:15, 10] = 1
    np.testing.assert_array_equal(m, expect)


def test_eraser_paints_background_and_later_objects_win():
    mask = np.ones((10, 10), np.uint8)
    erase = _path([(5.5, 0.5), (5.5, 9.5)], k=0, sw=1)  # column 5, full height
    repaint = _path([(5.5, 2.5), (5.5, 2.5)], k=1, sw=1)  # pixel (2, 5) again
    m = cv.apply_drawing(mask, {"objects": [erase, repaint]}, 2, canvas_hw=(10, 10))
    assert m[:, 5].tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert m[:, [4, 6]].all()
    assert mask.all()  # the input is not modified


def test_polygon_fill_covers_pixel_centres_inside():
    poly = _poly([(2, 2), (8, 2), (8, 6), (2, 6)], k=2)  # canvas = image size: pixels 2..7 x 2..5
    m = cv.apply_drawing(None, {"objects": [poly]}, 3, canvas_hw=(10, 10), shape=(10, 10))
    assert m[2:6, 2:8].all() and (m[2:6, 2:8] == 2).all()
    assert m.sum() // 2 <= (5 * 7)  # at most one extra row/column of edge pixels
    assert m[0].sum() == 0 and m[:, 0].sum() == 0 and m[9].sum() == 0


def test_triangle_polygon_scaled():
    # a right triangle on a canvas 4x the image: the filled half lies below the diagonal
    poly = _poly([(0, 0), (80, 80), (0, 80)])
    m = cv.apply_drawing(None, {"objects": [poly]}, 2, canvas_hw=(80, 80), shape=(20, 20))
    ys, xs = np.nonzero(m)
    assert (xs <= ys + 1).all() and m[19, 0] == 1 and m[0, 19] == 0
    assert abs(int(m.sum()) - 210) <= 20  # about half of 400 plus the diagonal


def test_zoom_window_maps_strokes_into_its_region():
    window = cv.zoom_window((100, 100), 4, center=(80, 20))
    assert window == cv.ZoomWindow(68, 8, 25, 25)
    ch, cw = cv.canvas_size(window)
    assert (ch, cw) == (640, 640)
    s = cw / window.width  # 25.6 canvas pixels per image pixel
    # a dot in the middle of the canvas pixel that shows window pixel (3, 7)
    dot = _path([((7 + 0.5) * s, (3 + 0.5) * s), ((7 + 0.5) * s, (3 + 0.5) * s)], sw=s)
    m = cv.apply_drawing(np.zeros((100, 100), np.uint8), {"objects": [dot]}, 2, (ch, cw), window)
    assert np.argwhere(m).tolist() == [[68 + 3, 8 + 7]]


@pytest.mark.parametrize(
    "shape,zoom,center,expect",
    [
        ((100, 200), 1, None, (0, 0, 100, 200)),
        ((100, 200), 2, None, (25, 50, 50, 100)),
        ((100, 200), 4, (0, 0), (0, 0, 25, 50)),  # clamped at the top-left corner
        ((100, 200), 4, (99, 199), (75, 150, 25, 50)),  # and at the bottom-right
        ((7, 5), 8, (3, 2), (3, 2, 1, 1)),  # never smaller than one pixel
    ],
)
def test_zoom_window(shape, zoom, center, expect):
    w = cv.zoom_window(shape, zoom, center)
    assert (w.y0, w.x0, w.height, w.width) == expect
    assert 0 <= w.y0 and w.y0 + w.height <= shape[0] and w.x0 + w.width <= shape[1]


def test_zoom_window_rejects_bad_input():
    with pytest.raises(ValueError):
        cv.zoom_window((10, 10), 0.5)
    with pytest.raises(ValueError):
        cv.zoom_window((0, 10), 1)


def test_canvas_size_keeps_aspect_and_magnifies_small_images():
    assert cv.canvas_size(cv.ZoomWindow(0, 0, 512, 512)) == (640, 640)
    assert cv.canvas_size(cv.ZoomWindow(0, 0, 32, 64)) == (320, 640)
    assert cv.canvas_size(cv.ZoomWindow(0, 0, 2000, 1000), max_width=600, max_height=600) == (600, 300)
    assert cv.brush_width(8, cv.ZoomWindow(0, 0, 128, 128), (640, 640)) == 40


def test_moved_object_is_placed_where_fabric_shows_it():
    # Fabric 7 JSON of a stroke drawn from (50, 40) to (150, 70), then dragged by (+60, +80) in edit mode
    drawn = _path(
        [(50, 40), (150, 70)], sw=2, originX="center", originY="center", left=100, top=55, width=100, height=30
    )
    moved = dict(drawn, left=160, top=135)
    a = cv.rasterize({"objects": [drawn]}, 2, (300, 400), (300, 400))
    b = cv.rasterize({"objects": [moved]}, 2, (300, 400), (300, 400))
    assert (a >= 0).sum() == (b >= 0).sum() > 0
    np.testing.assert_array_equal(np.argwhere(b >= 0), np.argwhere(a >= 0) + [80, 60])


def test_scaled_object():
    # a 10 x 10 square polygon centred at (20, 20), scaled 2x about its centre by the user
    poly = _poly(
        [(15, 15), (25, 15), (25, 25), (15, 25)],
        originX="center",
        originY="center",
        left=20,
        top=20,
        width=10,
        height=10,
        scaleX=2,
        scaleY=2,
    )
    m = cv.apply_drawing(None, {"objects": [poly]}, 2, (40, 40), shape=(40, 40))
    assert m[10:30, 10:30].all() and m.sum() <= 21 * 21


def test_class_colours_are_distinct_and_decode():
    colours = [cv.canvas_color(k) for k in range(32)]
    assert len(set(colours)) == 32
    assert cv.canvas_color(0) == (255, 255, 255)  # eraser
    for k in range(32):
        assert cv.class_of_color(cv.stroke_css(k), 32) == k
        r, g, b = colours[k]
        assert cv.class_of_color(f"#{r:02x}{g:02x}{b:02x}", 32) == k
    with pytest.raises(ValueError, match="not the colour"):
        cv.class_of_color("rgba(1, 2, 3, 0.5)", 3)
    with pytest.raises(ValueError):
        cv.class_of_color(cv.stroke_css(5), 3)  # class 5 of a 3-class dataset


def test_unknown_object_type_is_a_value_error():
    with pytest.raises(ValueError, match="only brush strokes and polygons"):
        cv.rasterize({"objects": [{"type": "Rect", "stroke": cv.stroke_css(1)}]}, 2, (10, 10), (10, 10))


def test_empty_drawing_keeps_mask_and_background_and_outline_shapes():
    mask = np.zeros((30, 40), np.uint8)
    mask[5:10, 5:10] = 1
    assert np.array_equal(cv.apply_drawing(mask, None, 2, (30, 40)), mask)
    assert cv.count_objects(None) == 0 and cv.count_objects({"objects": [{}, {}]}) == 2
    image = np.arange(1200, dtype=np.uint16).reshape(30, 40)
    w = cv.zoom_window((30, 40), 2, (7, 7))
    bg = cv.background(image, mask, w, (150, 200))
    assert bg.shape == (150, 200, 3) and bg.dtype == np.uint8
    assert bg[0, 0].tolist() != bg[-1, -1].tolist()
    ov = cv.outline(np.zeros((30, 40, 3), np.uint8), w)
    assert ov[w.y0, w.x0 + 3].tolist() == [255, 60, 60] and ov[29, 39].tolist() == [0, 0, 0]


def test_fit_canvas_uses_whole_pixels_when_they_fit():
    assert cv.fit_canvas(cv.ZoomWindow(0, 0, 768, 1024), 1100) == (768, 1024)  # 1:1
    assert cv.fit_canvas(cv.ZoomWindow(0, 0, 768, 1024), 2100) == (1536, 2048)  # 2x, square pixels
    assert cv.fit_canvas(cv.ZoomWindow(0, 0, 768, 1024), 512) == (384, 512)  # shrunk to the width
    assert cv.fit_canvas(cv.ZoomWindow(0, 0, 768, 1024), 2100, 800) == (768, 1024)  # the height limits


def test_paint_layer_keeps_pending_strokes_at_full_resolution():
    window = cv.zoom_window((32, 48), 4, (8, 8))  # rows 4-11, columns 2-13
    hw = cv.fit_canvas(window, 120)  # 10x
    poly = {
        "type": "Polygon",
        "stroke": cv.stroke_css(2),
        "fill": cv.stroke_css(2),
        "strokeWidth": 0,
        "points": [{"x": 0, "y": 0}, {"x": hw[1], "y": 0}, {"x": hw[1], "y": hw[0]}, {"x": 0, "y": hw[0]}],
    }
    layer = cv.paint_layer({"objects": [poly]}, 3, hw, window, (32, 48))
    assert layer.shape == (32, 48) and (layer[window.slices] == 2).all() and (layer >= 0).sum() == 8 * 12
    later = np.full((32, 48), -1, np.int16)
    later[4, 2] = 0
    merged = cv.merge_paint(layer, later)
    mask = cv.apply_paint(np.ones((32, 48), np.uint8), merged)
    assert mask[4, 2] == 0 and mask[5, 3] == 2 and mask[0, 0] == 1
    assert cv.apply_paint(None, merged)[0, 0] == 0
    bg = cv.background(np.zeros((32, 48), np.uint8), None, window, hw, pending=merged)
    assert bg.shape == (*hw, 3) and (bg == cv.canvas_color(2)).all(axis=2).any()  # striped in the class colour


def test_polygon_fills_only_pixel_centres_inside_off_grid_edges():
    # rows 10.2 .. 11.8 in image coordinates hold the centres of rows 10 and 11 only
    poly = {
        "type": "Polygon",
        "stroke": cv.stroke_css(1),
        "fill": cv.stroke_css(1),
        "strokeWidth": 0,
        "points": [{"x": 0, "y": 10.2}, {"x": 48, "y": 10.2}, {"x": 48, "y": 11.8}, {"x": 0, "y": 11.8}],
    }
    out = cv.rasterize({"objects": [poly]}, 2, (32, 48), (32, 48))
    assert np.unique(np.where(out >= 0)[0]).tolist() == [10, 11] and (out >= 0).sum() == 96
