"""The Label page's canvas: a small components-v2 component of SegDash's own (``_label_canvas.js``, read
from disk, no build step, nothing downloaded) that draws strokes in the browser and keeps them there
until the server has saved them.

UI only. Why not ``streamlit-drawable-canvas``: it sends a
stroke to the server only by rerunning the page (``update_streamlit=True``, about 1 s a stroke on
2 cores, the page greyed), it re-mounts whenever its key or background changes (the first stroke after
a slice change was drawn on a canvas that was going away: 5 of 5 lost in the issue's check), and it
shows a toolbar of its own. This canvas keeps one key for the whole session, swaps its picture only
once the new one is decoded, and sends its strokes in batches (see :mod:`core.view.label_session`).

The component's state value ``ui`` is ``{page, n, items, strokes, have}``: ``n`` the message's number,
``items`` the last 20 ``[number, action, "<dataset>/<z>"]`` shortcuts of this page load (each run
once, see :func:`pages._keys.new_actions`), ``strokes`` every unsaved stroke of every slice, ``have``
the pictures it holds. The canvas is rendered in a fragment (``pages/label.py``); a message that should
rerun the whole page goes through the relay (:func:`label_relay`) instead, with the same value.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Callable

import numpy as np
import streamlit as st
from PIL import Image

__all__ = [
    "label_canvas",
    "label_relay",
    "CANVAS_KEY",
    "RELAY_KEY",
    "picture_bytes",
    "picture_url",
    "indexed_png",
    "held",
]

CANVAS_KEY = "label_canvas"

_CSS = """
.segdash-canvas { width: 100%; user-select: none; }
.segdash-canvas .stage { position: relative; touch-action: none; cursor: crosshair; }
.segdash-canvas img, .segdash-canvas canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.segdash-canvas .note { font: 13px sans-serif; color: #777; margin-top: 4px; }
"""

_component = st.components.v2.component(
    "segdash_label_canvas",
    html='<div class="segdash-canvas"></div>',
    css=_CSS,
    js=(Path(__file__).with_name("_label_canvas.js")).read_text(encoding="utf-8"),
)


def picture_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    """A picture as JPEG bytes (RGB) or PNG bytes (RGBA, fast compression: a mask layer is mostly empty)."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    buf = io.BytesIO()
    if img.mode == "RGBA":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def indexed_png(idx: np.ndarray, palette: np.ndarray) -> bytes:
    """An indexed (palette) PNG of ``idx`` (h, w uint8) with RGBA ``palette`` (n, 4): the mask tint,
    one byte a pixel to compress instead of four, a few ms to encode and decode."""
    img = Image.fromarray(np.ascontiguousarray(idx, np.uint8), mode="P")
    img.putpalette(palette[:, :3].astype(np.uint8).tobytes(), rawmode="RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1, transparency=palette[:, 3].astype(np.uint8).tobytes())
    return buf.getvalue()


def held() -> set[str]:
    """The ids of the pictures the browser's canvas holds (it said so with its last strokes): the page
    does not send those again. A picture the canvas lacks after all, it asks for (it sends its list)."""
    state = st.session_state.get(CANVAS_KEY)
    try:
        have = state["ui"]["have"]
    except (KeyError, TypeError, AttributeError):
        return set()
    return {h for h in have if isinstance(h, str)} if isinstance(have, list) else set()


def picture_url(data: bytes, name: str) -> str:
    """A data URL for picture ``data``. Not a Streamlit media file: those are dropped when a later
    run does not reference them, and a slice's picture that failed to load left the canvas showing the
    previous slice while its strokes went to the new one (seen in the browser test after "Next
    unlabeled"). A data URL cannot go missing; it costs the picture's bytes in every run's message."""
    mimetype = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f"data:{mimetype};base64," + base64.b64encode(data).decode("ascii")


RELAY_KEY = "label_relay"
_relay = st.components.v2.component(
    "segdash_label_relay",
    html="<div></div>",
    js="export default function ({ setStateValue }) { window.__segdashRelay = (ui) => setStateValue('ui', ui); }",
)


def label_relay(on_ui: Callable[[], None]) -> Any:
    """The canvas's way to rerun the whole page: it sits outside the canvas's fragment, so a message
    the canvas sends through it (a slice change, a tool, the refresh after a save) reruns the page
    like a button does. A plain ``st.rerun()`` in the canvas's callback reran the page too, but the
    canvas's new data reached the browser only when that run ended (2.5 s after "." in the browser
    test, against 0.4 s for the Next button)."""
    return _relay(key=RELAY_KEY, on_ui_change=on_ui, height=0)


def label_canvas(data: dict[str, Any], on_ui: Callable[[], None]) -> Any:
    """Render the canvas with ``data`` (see ``pages/label.py``); ``on_ui`` runs when it sends strokes or keys."""
    return _component(data=data, key=CANVAS_KEY, on_ui_change=on_ui, width="stretch", height="content")
