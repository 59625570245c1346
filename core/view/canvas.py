"""The label canvas without the canvas: strokes to masks, zoom windows, and class colours.

The Label page shows a slice (or a zoomed crop of it) on its canvas and gets back Fabric.js-style JSON
of what was drawn (SegDash's own canvas writes the objects ``streamlit-drawable-canvas`` did).
Everything that turns that JSON into a mask lives here, as numpy in, numpy out, with no Streamlit
import, so it is unit-tested without a browser.

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

from ..data.masks import UNLABELED
from ..errors import SegDashError
from .fabric import _object_shapes, _paint
from .render import CLASS_COLORS, class_color, overlay, tint
from .strokes import apply_paint, merge_paint

__all__ = [
    "ZoomWindow",
    "zoom_window",
    "canvas_size",
    "fit_canvas",
    "brush_width",
    "paint_layer",
    "merge_paint",
    "apply_paint",
    "canvas_color",
    "stroke_css",
    "class_of_color",
    "rasterize",
    "apply_drawing",
    "background",
    "outline",
    "count_objects",
]

ERASER_COLOR = (255, 255, 255)
UNLABEL_COLOR = (255, 0, 255)  # the scribble-mode eraser: paints "not labeled" (UNLABELED)


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
        raise SegDashError(f"image shape {tuple(shape)} is empty")
    if not zoom >= 1:
        raise SegDashError(f"zoom must be at least 1, got {zoom}")
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
    max_height = max_height or 10**9
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

    Class 0 (background) is the eraser's white; :data:`~core.data.masks.UNLABELED` (the scribble-mode
    eraser, back to not labeled) is magenta; classes 1..9 use the overlay colours of
    :data:`core.view.render.CLASS_COLORS`; further classes get evenly spaced hues.

    Example:
        >>> canvas_color(0), canvas_color(1)
        ((255, 255, 255), (255, 200, 0))
    """
    if k < 0:
        raise SegDashError(f"class index must be >= 0, got {k}")
    if k == 0:
        return ERASER_COLOR
    if k == UNLABELED:
        return UNLABEL_COLOR
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
        return tuple(int(s[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    return None


def class_of_color(css: str, n_classes: int) -> int:
    """The class whose :func:`canvas_color` is ``css`` (``#rrggbb``, ``rgb()`` or ``rgba()``);
    :data:`~core.data.masks.UNLABELED` for the scribble-mode eraser's colour.

    Raises:
        ValueError: the colour is no class colour of an ``n_classes``-class dataset.
    """
    rgb = _parse_rgb(css)
    for k in (*range(n_classes), UNLABELED):
        if rgb == canvas_color(k):
            return k
    raise SegDashError(
        f"a stroke has colour {css!r}, which is not the colour of any of the {n_classes} classes; "
        "clear the canvas and draw again"
    )


# -- Fabric JSON to points -------------------------------------------------------------------


def count_objects(drawing: dict[str, Any] | None) -> int:
    """How many objects (strokes, polygons) a Fabric JSON drawing holds."""
    return len((drawing or {}).get("objects") or [])


# -- rasterising -----------------------------------------------------------------------------


def rasterize(
    drawing: dict[str, Any] | None, n_classes: int, canvas_hw: Sequence[int], out_hw: Sequence[int]
) -> np.ndarray:
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
        raise SegDashError(f"empty canvas {tuple(canvas_hw)} or output {tuple(out_hw)}")
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


def apply_drawing(
    mask: np.ndarray | None,
    drawing: dict[str, Any] | None,
    n_classes: int,
    canvas_hw: Sequence[int],
    window: ZoomWindow | None = None,
    shape: Sequence[int] | None = None,
) -> np.ndarray:
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
            raise SegDashError("give the image shape for a slice without a mask")
        mask = np.zeros(tuple(int(s) for s in shape[-2:]), np.uint8)
    out = np.array(mask, dtype=np.uint8, copy=True)
    if out.ndim != 2:
        raise SegDashError(f"mask must be (Y, X), got shape {out.shape}")
    window = window or ZoomWindow(0, 0, out.shape[0], out.shape[1])
    if window.y0 + window.height > out.shape[0] or window.x0 + window.width > out.shape[1]:
        raise SegDashError(f"zoom window {window} lies outside the {out.shape} mask")
    paint = rasterize(drawing, n_classes, canvas_hw, (window.height, window.width))
    region = out[window.slices]
    hit = paint >= 0
    region[hit] = paint[hit]
    return out


def paint_layer(
    drawing: dict[str, Any] | None, n_classes: int, canvas_hw: Sequence[int], window: ZoomWindow, shape: Sequence[int]
) -> np.ndarray:
    """A canvas drawing as a full-image paint layer: (Y, X) int16, the class painted, ``-1`` elsewhere.

    Unsaved strokes are kept this way when the canvas goes (another slice, zoom or pan), so they
    survive at full resolution and can be composited later with :func:`apply_paint`.
    """
    out = np.full(tuple(int(v) for v in shape[-2:]), -1, np.int16)
    out[window.slices] = rasterize(drawing, n_classes, canvas_hw, (window.height, window.width))
    return out


# -- pictures for the canvas -----------------------------------------------------------------


def background(
    image: np.ndarray,
    mask: np.ndarray | None,
    window: ZoomWindow,
    canvas_hw: Sequence[int],
    alpha: float = 0.4,
    display_window: tuple[float, float] | None = None,
    pending: np.ndarray | None = None,
    prediction: np.ndarray | None = None,
    prediction_alpha: float = 0.3,
) -> np.ndarray:
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
        prediction: (Y, X) class indices a model predicted, tinted under the mask (with
            ``prediction_alpha``), so strokes go where it is wrong.

    A partial mask (some pixels :data:`~core.data.masks.UNLABELED`) is tinted in the canvas colours,
    background strokes white too, so labeled and not-labeled pixels differ.

    Returns:
        (canvas_h, canvas_w, 3) uint8; magnified with nearest neighbour, so pixels stay square.
    """
    from ..data.intensity import percentile_range

    if display_window is None and np.asarray(image).dtype != np.uint8:
        display_window = percentile_range(image)
    crop = np.asarray(image)[window.slices]
    crop_mask = None if mask is None else np.asarray(mask)[window.slices]
    rgb = overlay(crop, None, window=display_window)
    if prediction is not None:
        rgb = tint(rgb, np.asarray(prediction)[window.slices], prediction_alpha)
    if crop_mask is not None:
        partial = mask is not None and bool((np.asarray(mask) == UNLABELED).any())
        rgb = tint(rgb, crop_mask, alpha, not partial, canvas_color if partial else class_color)
    size = (int(canvas_hw[1]), int(canvas_hw[0]))
    if rgb.shape[1::-1] != size:
        big = rgb.shape[1] < size[0]
        rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.NEAREST if big else Image.BILINEAR))
    if pending is not None and (np.asarray(pending)[window.slices] >= 0).any():
        layer = np.asarray(
            Image.fromarray(np.asarray(pending, np.int16)[window.slices].astype(np.int32)).resize(size, Image.NEAREST)
        )
        rows, cols = np.indices(layer.shape)
        stripe = ((rows + cols) // 3) % 2 == 0
        rgb = rgb.copy()
        for k in np.unique(layer[layer >= 0]):
            sel = layer == k
            rgb[sel & stripe] = canvas_color(int(k))
            rgb[sel & ~stripe] = (rgb[sel & ~stripe] * 0.5).astype(np.uint8)
    return rgb


def outline(
    rgb: np.ndarray, window: ZoomWindow, color: tuple[int, int, int] = (255, 60, 60), width: int | None = None
) -> np.ndarray:
    """A copy of a full-image RGB picture with the zoom window's rectangle drawn on it (an overview)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    width = width or max(1, round(max(img.size) / 150))
    ImageDraw.Draw(img).rectangle(
        [window.x0, window.y0, window.x0 + window.width - 1, window.y0 + window.height - 1], outline=color, width=width
    )
    return np.asarray(img)
