"""Fabric.js objects (what the Label page's canvas sends, as ``streamlit-drawable-canvas`` did) as shapes
in image coordinates, and painting them at full resolution: a stroke paints the pixels whose centres lie
within half its width of its centre line (round caps and joins), a polygon fills the pixels whose centres lie inside it
(scanline fill). See :mod:`core.view.canvas` for the approach."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import SegDashError

__all__: list[str] = []  # helpers of core.view.canvas

_CURVE_STEPS = 8  # points per Bezier segment when flattening a path
_ORIGIN = {"left": 0.0, "top": 0.0, "center": 0.5, "right": 1.0, "bottom": 1.0}


def _quad(p0, p1, p2, n=_CURVE_STEPS):
    t = np.linspace(0, 1, n + 1)[1:, None]
    return list(map(tuple, (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2))


def _cubic(p0, p1, p2, p3, n=_CURVE_STEPS):
    t = np.linspace(0, 1, n + 1)[1:, None]
    return list(map(tuple, (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t**2 * p2 + t**3 * p3))


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
            raise SegDashError(f"unsupported path command {op!r} in the drawing")
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
    raise SegDashError(
        f"the drawing holds a {obj.get('type')!r} object; only brush strokes and polygons are turned into masks"
    )


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
                bits[row, c0 : c1 + 1] = True


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
        bits[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] |= dist2 <= r * r + 1e-9
