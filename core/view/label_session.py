"""The Label page's session model: tool, class, brush, the unsaved strokes of every slice, the order
Undo and Redo walk, and what a Save says. What napari's ``Labels`` layer is to its Qt controls, this
is to the page: :mod:`pages.label` only binds it to widgets and to the browser canvas.

The browser keeps every stroke until the server has saved it (or the user cleared it): it draws
strokes at once, client-side, and sends its whole list of unsaved strokes in batches (with a key
press, before a click elsewhere on the page, and as a draft every few seconds). The server's copy
(:meth:`LabelSession.receive`) is that list less the strokes it has saved or cleared (``gone``),
which it tells the browser to drop, so a stroke is never lost between the two and never saved twice.

A stroke, as the browser sends it::

    {"id": "s-...", "key": "<dataset>/<z>", "base": 3,           # the version it was drawn on
     "frame": [y0, x0, h, w, canvas_h, canvas_w],                # the image region shown, the canvas size
     "obj": {"type": "Path", "stroke": "rgba(...)", "strokeWidth": 8, "path": [["M", x, y], ["L", x, y]]}}

``obj`` is a Fabric-style object in canvas pixels (a ``Polygon`` with ``points`` for polygon fill),
rasterised at full resolution by :func:`core.view.canvas.paint_layer`.

Example:
    >>> s = LabelSession()
    >>> line = {"type": "Path", "stroke": "rgba(255, 200, 0, 0.9)", "strokeWidth": 1,
    ...         "path": [["M", 0.5, 1.5], ["L", 2.5, 1.5]]}
    >>> s.receive([{"id": "a", "key": "d/0", "base": 0, "frame": [0, 0, 4, 4, 4, 4], "obj": line}])
    >>> s.count("d", 0), s.undo_step("d", 0, can_undo_saved=True)
    (1, 'stroke')
    >>> s.paint("d", 0, n_classes=2, shape=(4, 4))[1].tolist()
    [1, 1, 1, -1]
    >>> s.forget("d", 0), s.count("d", 0), s.undo_step("d", 0, can_undo_saved=True)
    (['a'], 0, 'version')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import SegDashError
from .canvas import ZoomWindow, paint_layer
from .strokes import merge_paint

__all__ = ["Tools", "LabelSession", "slice_key", "save_words", "undo_words"]

_MAX_GONE = 5000  # ids of saved or cleared strokes the browser is told to drop (the newest)


def slice_key(dataset: str, z: int) -> str:
    """How a slice is named in a stroke: ``"<dataset>/<z>"``."""
    return f"{dataset}/{int(z)}"


@dataclass
class Tools:
    """What the next stroke paints: tool, class (``k``, the class its colour encodes), brush in image pixels."""

    tool: str = "Brush"
    k: int = 1
    brush: int = 8


def _valid(stroke: Any) -> bool:
    if not isinstance(stroke, dict):
        return False
    frame = stroke.get("frame")
    return (
        isinstance(stroke.get("id"), str)
        and isinstance(stroke.get("key"), str)
        and isinstance(stroke.get("obj"), dict)
        and isinstance(frame, (list, tuple))
        and len(frame) == 6
        and all(isinstance(v, (int, float)) for v in frame)
        and min(frame[2:]) > 0
    )


class LabelSession:
    """The unsaved strokes of one browser session, every slice, in drawing order."""

    def __init__(self) -> None:
        self.tools = Tools()
        self.strokes: list[dict] = []
        self.gone: dict[str, None] = {}  # ordered set: saved or cleared stroke ids
        self.dropped = 0  # malformed strokes received (never from SegDash's own canvas)

    # -- the browser's list ---------------------------------------------------------------------

    def receive(self, strokes: Sequence[Any] | None) -> None:
        """Take the browser's list of unsaved strokes (all slices), less those already saved or cleared."""
        if strokes is None:
            return
        seen: set[str] = set()
        kept = []
        for s in strokes:
            if not _valid(s):
                self.dropped += 1
                continue
            if s["id"] in self.gone or s["id"] in seen:
                continue
            seen.add(s["id"])
            kept.append(s)
        self.strokes = kept

    def gone_ids(self) -> list[str]:
        """The newest ids of saved or cleared strokes: the browser drops them from its list."""
        return list(self.gone)[-_MAX_GONE:]

    # -- per slice ---------------------------------------------------------------------------------

    def pending(self, dataset: str, z: int) -> list[dict]:
        key = slice_key(dataset, z)
        return [s for s in self.strokes if s["key"] == key]

    def count(self, dataset: str, z: int) -> int:
        return len(self.pending(dataset, z))

    def slices(self, dataset: str) -> list[int]:
        """The slices of ``dataset`` with unsaved strokes, in order."""
        out = set()
        for s in self.strokes:
            name, _, z = s["key"].rpartition("/")
            if name == dataset and z.isdigit():
                out.add(int(z))
        return sorted(out)

    def base(self, dataset: str, z: int) -> int | None:
        """The version the first unsaved stroke was drawn on (to tell a merge), ``None`` if unknown."""
        for s in self.pending(dataset, z):
            b = s.get("base")
            return int(b) if isinstance(b, (int, float)) else None
        return None

    def paint(self, dataset: str, z: int, n_classes: int, shape: Sequence[int]) -> np.ndarray | None:
        """The unsaved strokes of slice ``z`` as one full-resolution paint layer (``-1`` where none), or ``None``.

        Raises:
            SegDashError: a stroke's colour is no class of the dataset, or its frame lies outside the image.
        """
        out = None
        h, w = int(shape[-2]), int(shape[-1])
        for s in self.pending(dataset, z):
            y0, x0, wh, ww, ch, cw = (int(round(v)) for v in s["frame"])
            if y0 < 0 or x0 < 0 or y0 + wh > h or x0 + ww > w:
                raise SegDashError(f"a stroke was drawn on a {wh} x {ww} region that is not inside the {h} x {w} slice")
            layer = paint_layer({"objects": [s["obj"]]}, n_classes, (ch, cw), ZoomWindow(y0, x0, wh, ww), (h, w))
            out = merge_paint(out, layer)
        return out

    def forget(self, dataset: str, z: int, ids: Sequence[str] | None = None) -> list[str]:
        """Drop slice ``z``'s unsaved strokes (after a save or Clear), or only ``ids``; returns the ids dropped."""
        key = slice_key(dataset, z)
        drop = [s["id"] for s in self.strokes if s["key"] == key and (ids is None or s["id"] in ids)]
        for i in drop:
            self.gone[i] = None
        while len(self.gone) > 2 * _MAX_GONE:
            self.gone.pop(next(iter(self.gone)))
        self.strokes = [s for s in self.strokes if s["id"] not in self.gone]
        return drop

    # -- undo order -------------------------------------------------------------------------------

    def undo_step(self, dataset: str, z: int, can_undo_saved: bool) -> str | None:
        """What Undo does next on slice ``z``: ``"stroke"`` (remove the last unsaved stroke) before
        ``"version"`` (step back a saved version); ``None`` when there is nothing to undo."""
        if self.count(dataset, z):
            return "stroke"
        return "version" if can_undo_saved else None

    def undo_stroke(self, dataset: str, z: int) -> dict | None:
        """Remove the last unsaved stroke of slice ``z`` (the server's Undo button); returns it."""
        mine = self.pending(dataset, z)
        if not mine:
            return None
        self.forget(dataset, z, [mine[-1]["id"]])
        return mine[-1]


def save_words(
    name: str, version: int, status: str, n: int, merged_on: int | None, base_empty: bool, last_version: int | None
) -> tuple[str, str]:
    """(kind, text) for the status line after a save.

    ``base_empty``: the slice had no current mask, so the new version holds only the strokes; when
    the history holds an older version (``last_version``, undone), say so and how to get it back.
    """
    text = f"Saved {name}: version {version} ({status}, {n} stroke(s))."
    kind = "success"
    if merged_on is not None:
        kind = "warning"
        text += (
            f" Someone saved version {merged_on} of this slice meanwhile: your strokes were applied on top of it, "
            "so both are kept."
        )
    if base_empty and last_version:
        kind = "warning"
        text += (
            f" The slice showed no mask (version {last_version} had been undone), so version {version} holds only "
            f"your strokes; Restore version {last_version} in the history to get the earlier mask back."
        )
    return kind, text


def undo_words(version: int | None, undone: int, redo_hint: str) -> tuple[str, str]:
    """(kind, text) after stepping back from saved version ``undone`` to ``version`` (0 / None: no mask)."""
    if version:
        return "info", f"Undone: back to version {version}. Redo ({redo_hint}) brings version {undone} back."
    return (
        "info",
        f"Undone: the slice shows no mask now. Redo ({redo_hint}), or Restore version {undone} in the history, "
        "brings it back; a Save now would keep only the new strokes.",
    )
