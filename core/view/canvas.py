"""The label canvas without the canvas: strokes to masks, zoom windows, and class colours.

The Label page shows a slice (or a zoomed crop of it) on a ``streamlit-drawable-canvas`` canvas and
gets back the Fabric.js JSON of what was drawn. Everything that turns that JSON into a mask lives
here, as numpy in, numpy out, with no Streamlit import, so it is unit-tested without a browser.

How strokes reach the mask (the approach, chosen over the canvas's ``image_data``):
    The Fabric JSON objects (``Path`` from the brush, ``Polygon`` from the polygon tool) are
    **rasterised again at full image resolution**. Each point is mapped from canvas pixels to
    image pixels by the ratio of the shown region's size to the canvas size (offset by the zoom
    window), and the stroke width is scaled by the same ratio. A stroke paints the pixels whose
    centres lie within half its width of its centre line (round caps and joins, as the canvas
    brush draws); a polygon fills the pixels whose centres lie inside it (a scanline fill). The canvas's own RGBA
    rendering is never used: it is anti-aliased at the display size, so resizing it would smear
    class colours and lose the pixels of small structures.

    The class of an object is read back from its stroke colour: each class has a fixed, distinct
    canvas colour (:func:`canvas_color`; class 0, background, is the eraser's white), so the JSON
    carries the class without extra fields. Objects are painted in drawing order, later over
    earlier; pixels no object touches keep their mask value.

Coordinates: canvas points are continuous ``(x, y)`` with ``(0, 0)`` the canvas's top-left corner;
image pixel ``(row, col)`` covers ``[col, col + 1) x [row, row + 1)`` in image coordinates. Arrays are
(Y, X).

Example:
    >>> import numpy as np
    >>> dot = {"objects": [{"type": "Path", "stroke": stroke_css(1), "strokeWidth": 6,
    ...                     "path": [["M", 5, 5], ["L", 5, 5]]}]}
    >>> # a 4 x 4 image on an 8 x 8 canvas: canvas (5, 5) is the centre of image pixel (2, 2), and
    >>> # the 6-canvas-pixel brush is 3 image pixels wide
    >>> apply_drawing(np.zeros((4, 4), np.uint8), dot, n_classes=2, canvas_hw=(8, 8)).tolist()
    [[0, 0, 0, 0], [0, 1, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]]
"""

from __future__ import annotations

import colorsys
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .render import CLASS_COLORS, overlay

__all__ = ["ZoomWindow", "zoom_window", "canvas_size", "fit_canvas", "brush_width", "paint_layer", "merge_paint",
           "apply_paint", "canvas_color", "stroke_css",
           "class_of_color", "rasterize", "apply_drawing", "background", "outline", "count_objects"]

ERASER_COLOR = (255, 255, 255)
_CURVE_STEPS = 8  # points per Bezier segment when flattening a path
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


# -- zoom ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZoomWindow:
    """The region of the full image the canvas shows: rows ``y0 .. y0+height``, columns ``x0 .. x0+width``."""

    y0: int
    x0: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``mask[window.slices]`` is the shown region."""
        return slice(self.y0, self.y0 + self.height), slice(self.x0, self.x0 + self.width)

    @property
    def center(self) -> tuple[int, int]:
        return self.y0 + self.height // 2, self.x0 + self.width // 2


def zoom_window(shape: Sequence[int], zoom: float = 1.0, center: Sequence[float] | None = None) -> ZoomWindow:
    """The region shown at ``zoom`` (1 = whole image), centred on ``center`` and kept inside the image.

    Args:
        shape: (Y, X) image size.
        zoom: magnification, at least 1; the window is ``ceil(Y / zoom) x ceil(X / zoom)`` pixels.
        center: (row, col) the window is centred on; default the image centre. A window that would
            stick out of the image is moved inside it.

    Example:
        >>> zoom_window((100, 200), 4, center=(0, 190))
        ZoomWindow(y0=0, x0=150, height=25, width=50)
    """
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"image shape {tuple(shape)} is empty")
    if not zoom >= 1:
        raise ValueError(f"zoom must be at least 1, got {zoom}")
    wh, ww = max(1, math.ceil(h / zoom)), max(1, math.ceil(w / zoom))
    cy, cx = (h / 2, w / 2) if center is None else (float(center[0]), float(center[1]))
    y0 = int(min(max(math.floor(cy - wh / 2 + 0.5), 0), h - wh))
    x0 = int(min(max(math.floor(cx - ww / 2 + 0.5), 0), w - ww))
    return ZoomWindow(y0, x0, wh, ww)


def canvas_size(window: ZoomWindow, max_width: int = 640, max_height: int = 640) -> tuple[int, int]:
    """(height, width) of the canvas that shows ``window`` as large as fits, aspect ratio kept.

    Small regions are magnified (a 64 x 64 crop fills a 640 x 640 canvas), large ones shrunk.
    """
    scale = min(max_width / window.width, max_height / window.height)
    return max(1, int(round(window.height * scale))), max(1, int(round(window.width * scale)))


def fit_canvas(window: ZoomWindow, max_width: int, max_height: int | None = None) -> tuple[int, int]:
    """(height, width) of the canvas showing ``window`` in a ``max_width`` (x ``max_height``) space.

    A region that fits is magnified by the largest whole factor that fits (1:1 pixels when only
    that fits, every image pixel a square of ``f x f`` screen pixels otherwise); a larger one is
    shrunk to fit, aspect ratio kept.

    Example:
        >>> fit_canvas(ZoomWindow(0, 0, 768, 1024), 1100), fit_canvas(ZoomWindow(0, 0, 100, 100), 350)
        ((768, 1024), (300, 300))
    """
    max_height = max_height or 10 ** 9
    scale = min(max_width / window.width, max_height / window.height)
    if scale >= 1:
        scale = math.floor(scale)
    return max(1, int(round(window.height * scale))), max(1, int(round(window.width * scale)))


def brush_width(size_px: float, window: ZoomWindow, canvas_hw: Sequence[int]) -> int:
    """Canvas stroke width (canvas pixels) that paints a line ``size_px`` image pixels wide."""
    scale = canvas_hw[1] / window.width
    return max(1, int(round(size_px * scale)))


# -- colours ---------------------------------------------------------------------------------

def canvas_color(k: int) -> tuple[int, int, int]:
    """RGB colour of class ``k`` on the canvas; unique per class so strokes can be read back.

    Class 0 (background) is the eraser's white; classes 1..9 use the overlay colours of
    :data:`core.view.render.CLASS_COLORS`; further classes get evenly spaced hues.

    Example:
        >>> canvas_color(0), canvas_color(1)
        ((255, 255, 255), (255, 200, 0))
    """
    if k < 0:
        raise ValueError(f"class index must be >= 0, got {k}")
    if k == 0:
        return ERASER_COLOR
    if k < len(CLASS_COLORS):
        return CLASS_COLORS[k]
    hue = ((k - len(CLASS_COLORS)) * 0.618034) % 1.0  # golden-ratio hues stay apart
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 0.85)
    return int(r * 255), int(g * 255), int(b * 255)


def stroke_css(k: int, alpha: float = 0.6) -> str:
    """CSS colour for class ``k``'s strokes: ``rgba(r, g, b, alpha)``."""
    r, g, b = canvas_color(k)
    return f"rgba({r}, {g}, {b}, {alpha:g})"


_RGB_RE = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)")


def _parse_rgb(css: str) -> tuple[int, int, int] | None:
    s = str(css).strip().lower()
    m = _RGB_RE.match(s)
    if m:
        return tuple(int(round(float(v))) for v in m.groups())  # type: ignore[return-value]
    if s.startswith("#") and len(s) in (4, 5):
        return tuple(int(c * 2, 16) for c in s[1:4])  # type: ignore[return-value]
    if s.startswith("#") and len(s) in (7, 9):
        return tuple(int(s[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    return None


def class_of_color(css: str, n_classes: int) -> int:
    """The class whose :func:`canvas_color` is ``css`` (``#rrggbb``, ``rgb()`` or ``rgba()``).

    Raises:
        ValueError: the colour is no class colour of an ``n_classes``-class dataset.
    """
    rgb = _parse_rgb(css)
    for k in range(n_classes):
        if rgb == canvas_color(k):
            return k
    raise ValueError(f"a stroke has colour {css!r}, which is not the colour of any of the {n_classes} classes; "
                     "clear the canvas and draw again")


# -- Fabric JSON to points -------------------------------------------------------------------

def _quad(p0, p1, p2, n=_CURVE_STEPS):
    t = np.linspace(0, 1, n + 1)[1:, None]
    return list(map(tuple, (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t ** 2 * p2))


def _cubic(p0, p1, p2, p3, n=_CURVE_STEPS):
    t = np.linspace(0, 1, n + 1)[1:, None]
    return list(map(tuple, (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3))


def _path_polylines(commands: list) -> list[list[tuple[float, float]]]:
    """Flatten SVG path commands (absolute M, L, H, V, Q, C, Z as Fabric writes them) into polylines."""
    lines: list[list[tuple[float, float]]] = []
    cur = np.zeros(2)
    start = np.zeros(2)
    for cmd in commands:
        op, args = str(cmd[0]), [float(v) for v in cmd[1:]]
        if op == "M":
            cur = np.array(args[:2])
            start = cur
            lines.append([tuple(cur)])
            continue
        if not lines:
            lines.append([tuple(cur)])
        if op == "L":
            cur = np.array(args[:2])
            lines[-1].append(tuple(cur))
        elif op == "H":
            cur = np.array([args[0], cur[1]])
            lines[-1].append(tuple(cur))
        elif op == "V":
            cur = np.array([cur[0], args[0]])
            lines[-1].append(tuple(cur))
        elif op == "Q":
            p1, p2 = np.array(args[:2]), np.array(args[2:4])
            lines[-1] += _quad(cur, p1, p2)
            cur = p2
        elif op == "C":
            p1, p2, p3 = np.array(args[:2]), np.array(args[2:4]), np.array(args[4:6])
            lines[-1] += _cubic(cur, p1, p2, p3)
            cur = p3
        elif op in ("Z", "z"):
            lines[-1].append(tuple(start))
            cur = start
        else:
            raise ValueError(f"unsupported path command {op!r} in the drawing")
    return lines


def _origin(value: Any) -> float:
    """Fabric's origin as a fraction of the object's box: ``left``/``top`` 0, ``center`` 0.5, ``right``/``bottom`` 1."""
    if value is None:
        return 0.0
    return _ORIGIN[value] if isinstance(value, str) else float(value)


def _to_scene(obj: dict[str, Any], lines: list[np.ndarray]) -> list[np.ndarray]:
    """Apply the object's own transform (moved, scaled, rotated in the canvas's edit mode).

    Fabric keeps a path's or polygon's points as drawn and places the object by ``left``/``top``
    (at its ``originX``/``originY``), ``scaleX``/``scaleY``, ``angle`` and flips around the centre
    of the points' bounding box. An object never edited maps to itself.
    """
    pts = np.concatenate(lines) if lines else np.zeros((0, 2))
    if len(pts) == 0:
        return lines
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    own_center = (lo + hi) / 2
    sx = float(obj.get("scaleX", 1) or 1) * (-1 if obj.get("flipX") else 1)
    sy = float(obj.get("scaleY", 1) or 1) * (-1 if obj.get("flipY") else 1)
    sw = float(obj.get("strokeWidth", 0) or 0)
    w = float(obj.get("width", hi[0] - lo[0]))
    h = float(obj.get("height", hi[1] - lo[1]))
    if obj.get("strokeUniform"):
        dims = np.array([w * abs(sx) + sw, h * abs(sy) + sw])
    else:
        dims = np.array([(w + sw) * abs(sx), (h + sw) * abs(sy)])
    fx, fy = _origin(obj.get("originX")), _origin(obj.get("originY"))
    a = math.radians(float(obj.get("angle", 0) or 0))
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    if "left" not in obj or "top" not in obj:
        center = own_center
    else:
        center = np.array([float(obj["left"]), float(obj["top"])]) + rot @ ((0.5 - np.array([fx, fy])) * dims)
    if np.allclose(center, own_center, atol=1e-6) and sx == 1 and sy == 1 and a == 0:
        return lines
    m = rot @ np.diag([sx, sy])
    return [(ln - own_center) @ m.T + center for ln in lines]


def _object_shapes(obj: dict[str, Any]) -> tuple[str, list[np.ndarray]]:
    """``("stroke", polylines)`` for a brush path, ``("fill", [polygon])`` for a polygon."""
    kind = str(obj.get("type", "")).lower()
    if kind == "path":
        lines = [np.asarray(ln, float) for ln in _path_polylines(obj.get("path") or [])]
        return "stroke", _to_scene(obj, lines)
    if kind in ("polygon", "polyline"):
        pts = np.asarray([[float(p["x"]), float(p["y"])] for p in obj.get("points") or []], float).reshape(-1, 2)
        return ("fill" if kind == "polygon" else "stroke"), _to_scene(obj, [pts])
    raise ValueError(f"the drawing holds a {obj.get('type')!r} object; only brush strokes and polygons are "
                     "turned into masks")


def count_objects(drawing: dict[str, Any] | None) -> int:
    """How many objects (strokes, polygons) a Fabric JSON drawing holds."""
    return len((drawing or {}).get("objects") or [])


# -- rasterising -----------------------------------------------------------------------------

def rasterize(drawing: dict[str, Any] | None, n_classes: int, canvas_hw: Sequence[int],
              out_hw: Sequence[int]) -> np.ndarray:
    """Paint a Fabric JSON drawing at ``out_hw`` resolution.

    Args:
        drawing: the canvas's ``json_data`` (``{"objects": [...]}``) or ``None``.
        n_classes: classes of the dataset (decodes stroke colours, :func:`class_of_color`).
        canvas_hw: (height, width) of the canvas the drawing was made on, in canvas pixels.
        out_hw: (height, width) of the image region the canvas showed, in image pixels.

    Returns:
        (out_h, out_w) int16: the class painted at each pixel, ``-1`` where nothing was drawn.
    """
    oh, ow = int(out_hw[0]), int(out_hw[1])
    ch, cw = float(canvas_hw[0]), float(canvas_hw[1])
    if min(oh, ow) < 1 or min(ch, cw) <= 0:
        raise ValueError(f"empty canvas {tuple(canvas_hw)} or output {tuple(out_hw)}")
    scale = np.array([ow / cw, oh / ch])
    width_scale = (scale[0] + scale[1]) / 2
    out = np.full((oh, ow), -1, np.int16)
    for obj in (drawing or {}).get("objects") or []:
        k = class_of_color(obj.get("stroke") or obj.get("fill") or "", n_classes)
        mode, shapes = _object_shapes(obj)
        width = float(obj.get("strokeWidth", 0) or 0) * width_scale
        # pixel (row, col) has its centre at (col + 0.5, row + 0.5); PIL puts pixel centres on integers
        shapes = [np.asarray(pts, float) * scale - 0.5 for pts in shapes if len(pts)]
        if shapes:
            _paint(out, mode, shapes, width, k)
    return out


def _paint(out: np.ndarray, mode: str, shapes: list[np.ndarray], width: float, k: int) -> None:
    """Paint one object into ``out``: a filled polygon (pixel centres inside), and its stroke as the pixels whose
    centres lie within ``width / 2`` of the centre line (round caps and joins, symmetric for any
    width), plus the pixel under every vertex so a one-pixel brush marks what it touched.

    Works on a bit layer the size of the object's bounding box, so a short stroke on a large image
    costs little. Points are in PIL coordinates (pixel centres on integers).
    """
    pts = np.concatenate(shapes)
    r = width / 2
    pad = r + 2
    x0, y0 = (np.floor(pts.min(axis=0) - pad)).astype(int)
    x1, y1 = (np.ceil(pts.max(axis=0) + pad)).astype(int) + 1
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, out.shape[1]), min(y1, out.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    bits = np.zeros((y1 - y0, x1 - x0), bool)
    for line in shapes:
        local = line - (x0, y0)
        if mode == "fill" and len(local) >= 3:
            _fill(bits, local)
            local = np.vstack([local, local[:1]])
        if width > 0:
            _stroke(bits, local, r)
    out[y0:y1, x0:x1][bits] = k


def _fill(bits: np.ndarray, pts: np.ndarray) -> None:
    """Set the pixels of ``bits`` whose centres (integer ``x, y``) lie inside the polygon ``pts``.

    A scanline fill (even-odd rule) on exact pixel centres: PIL's ``polygon`` rounds the corners
    to whole pixels first, which let a polygon edge at 9.7 paint row 9.
    """
    h, w = bits.shape
    x, y = pts[:, 0], pts[:, 1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    for row in range(max(0, math.ceil(y.min())), min(h - 1, math.floor(y.max())) + 1):
        cross = ((y <= row) & (y2 > row)) | ((y2 <= row) & (y > row))
        if not cross.any():
            continue
        xa, ya, xb, yb = x[cross], y[cross], x2[cross], y2[cross]
        xs = np.sort(xa + (row - ya) * (xb - xa) / (yb - ya))
        for a, b in zip(xs[0::2], xs[1::2]):
            c0, c1 = max(math.ceil(a), 0), min(math.floor(b), w - 1)
            if c1 >= c0:
                bits[row, c0:c1 + 1] = True


def _stroke(bits: np.ndarray, pts: np.ndarray, r: float) -> None:
    """Set the pixels of ``bits`` whose centres are within ``r`` of the polyline ``pts`` (x, y)."""
    h, w = bits.shape
    for px, py in np.floor(pts + 0.5).astype(int):
        if 0 <= px < w and 0 <= py < h:
            bits[py, px] = True
    segs = [(pts[i], pts[i + 1]) for i in range(len(pts) - 1)] or [(pts[0], pts[0])]
    for a, b in segs:
        lo = np.floor(np.minimum(a, b) - r).astype(int)
        hi = np.ceil(np.maximum(a, b) + r).astype(int)
        xs = np.arange(max(lo[0], 0), min(hi[0] + 1, w))
        ys = np.arange(max(lo[1], 0), min(hi[1] + 1, h))
        if len(xs) == 0 or len(ys) == 0:
            continue
        d = b - a
        length2 = float(d @ d)
        gx, gy = xs[None, :] - a[0], ys[:, None] - a[1]
        t = np.clip((gx * d[0] + gy * d[1]) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        dist2 = (gx - t * d[0]) ** 2 + (gy - t * d[1]) ** 2
        bits[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] |= dist2 <= r * r + 1e-9


def apply_drawing(mask: np.ndarray | None, drawing: dict[str, Any] | None, n_classes: int,
                  canvas_hw: Sequence[int], window: ZoomWindow | None = None,
                  shape: Sequence[int] | None = None) -> np.ndarray:
    """Composite a canvas drawing onto a mask at full resolution.

    Args:
        mask: (Y, X) class indices, or ``None`` for an unlabeled slice (then all background of
            ``shape``).
        drawing: the canvas's Fabric JSON.
        n_classes: classes of the dataset.
        canvas_hw: (height, width) of the canvas, canvas pixels.
        window: the region the canvas showed (:func:`zoom_window`); default the whole image.
        shape: (Y, X) when ``mask`` is ``None``.

    Returns:
        a new (Y, X) uint8 mask; ``mask`` is not modified.
    """
    if mask is None:
        if shape is None:
            raise ValueError("give the image shape for a slice without a mask")
        mask = np.zeros(tuple(int(s) for s in shape[-2:]), np.uint8)
    out = np.array(mask, dtype=np.uint8, copy=True)
    if out.ndim != 2:
        raise ValueError(f"mask must be (Y, X), got shape {out.shape}")
    window = window or ZoomWindow(0, 0, out.shape[0], out.shape[1])
    if window.y0 + window.height > out.shape[0] or window.x0 + window.width > out.shape[1]:
        raise ValueError(f"zoom window {window} lies outside the {out.shape} mask")
    paint = rasterize(drawing, n_classes, canvas_hw, (window.height, window.width))
    region = out[window.slices]
    hit = paint >= 0
    region[hit] = paint[hit]
    return out


def paint_layer(drawing: dict[str, Any] | None, n_classes: int, canvas_hw: Sequence[int], window: ZoomWindow,
                shape: Sequence[int]) -> np.ndarray:
    """A canvas drawing as a full-image paint layer: (Y, X) int16, the class painted, ``-1`` elsewhere.

    Unsaved strokes are kept this way when the canvas goes (another slice, zoom or pan), so they
    survive at full resolution and can be composited later with :func:`apply_paint`.
    """
    out = np.full(tuple(int(v) for v in shape[-2:]), -1, np.int16)
    out[window.slices] = rasterize(drawing, n_classes, canvas_hw, (window.height, window.width))
    return out


def merge_paint(under: np.ndarray | None, over: np.ndarray) -> np.ndarray:
    """Paint layer ``over`` on top of ``under`` (later strokes win where both painted)."""
    if under is None:
        return over.copy()
    out = under.copy()
    hit = over >= 0
    out[hit] = over[hit]
    return out


def apply_paint(mask: np.ndarray | None, paint: np.ndarray | None, shape: Sequence[int] | None = None) -> np.ndarray:
    """A new uint8 mask: ``mask`` (or all background of ``shape``) with the painted pixels set."""
    if mask is None:
        base_shape = paint.shape if paint is not None else shape
        if base_shape is None:
            raise ValueError("give the image shape for a slice without a mask")
        mask = np.zeros(tuple(int(v) for v in base_shape[-2:]), np.uint8)
    out = np.array(mask, dtype=np.uint8, copy=True)
    if paint is not None:
        if paint.shape != out.shape:
            raise ValueError(f"unsaved strokes are {paint.shape}, the mask is {out.shape}")
        hit = paint >= 0
        out[hit] = paint[hit]
    return out


# -- pictures for the canvas -----------------------------------------------------------------

def background(image: np.ndarray, mask: np.ndarray | None, window: ZoomWindow, canvas_hw: Sequence[int],
               alpha: float = 0.4, display_window: tuple[float, float] | None = None,
               pending: np.ndarray | None = None) -> np.ndarray:
    """The canvas background: the shown region with the mask overlaid, resized to the canvas.

    Args:
        image: (Y, X) slice, any dtype.
        mask: (Y, X) class indices or ``None``.
        window: region to show.
        canvas_hw: canvas (height, width).
        alpha: overlay opacity.
        display_window: intensity window (default the whole slice's, so zooming keeps the contrast).
        pending: unsaved strokes as a full-image paint layer (:func:`paint_layer`), drawn apart
            from the saved mask: diagonal stripes of the class colour over the image.

    Returns:
        (canvas_h, canvas_w, 3) uint8; magnified with nearest neighbour, so pixels stay square.
    """
    from ..data.intensity import percentile_range

    if display_window is None and np.asarray(image).dtype != np.uint8:
        display_window = percentile_range(image)
    crop = np.asarray(image)[window.slices]
    crop_mask = None if mask is None else np.asarray(mask)[window.slices]
    rgb = overlay(crop, crop_mask, alpha, window=display_window)
    size = (int(canvas_hw[1]), int(canvas_hw[0]))
    if rgb.shape[1::-1] != size:
        big = rgb.shape[1] < size[0]
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST if big else Image.BILINEAR))
    if pending is not None and (np.asarray(pending)[window.slices] >= 0).any():
        layer = np.asarray(Image.fromarray(np.asarray(pending, np.int16)[window.slices].astype(np.int32))
                           .resize(size, Image.NEAREST))
        rows, cols = np.indices(layer.shape)
        stripe = ((rows + cols) // 3) % 2 == 0
        rgb = rgb.copy()
        for k in np.unique(layer[layer >= 0]):
            sel = layer == k
            rgb[sel & stripe] = canvas_color(int(k))
            rgb[sel & ~stripe] = (rgb[sel & ~stripe] * 0.5).astype(np.uint8)
    return rgb


def outline(rgb: np.ndarray, window: ZoomWindow, color: tuple[int, int, int] = (255, 60, 60),
            width: int | None = None) -> np.ndarray:
    """A copy of a full-image RGB picture with the zoom window's rectangle drawn on it (an overview)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    width = width or max(1, round(max(img.size) / 150))
    ImageDraw.Draw(img).rectangle([window.x0, window.y0, window.x0 + window.width - 1,
                                   window.y0 + window.height - 1], outline=color, width=width)
    return np.asarray(img)
