"""Label page pictures: the canvas background, the pan overview, a version's picture, class chips.

UI only (Streamlit caches around :mod:`core.view`). ``root`` and ``stamp`` (the slice's last change)
are cache keys: a new picture after every save or undo.
"""

from __future__ import annotations

import base64
import io
import time

import numpy as np
import streamlit as st
from PIL import Image

from core.data import provenance
from core.data.masks import UNLABELED
from core.view import canvas as cv
from core.view.layers import tint_indexed
from core.view.render import gray_rgb, overlay, tint
from pages._common import workspace
from pages._label_canvas import indexed_png, picture_bytes

__all__ = ["background_picture", "tint_picture", "overview", "version_picture", "chips", "when"]


@st.cache_data(max_entries=16, show_spinner=False)
def background_picture(
    root: str,
    dataset: str,
    z: int,
    shape: tuple[int, ...],
    window: cv.ZoomWindow,
    prediction_id: str = "",
    _prediction: np.ndarray | None = None,
) -> bytes:
    """The canvas picture at the window's own resolution (the browser scales it): the shown region and
    a live round's prediction pale; JPEG bytes. The saved mask is a layer of its own (:func:`tint_picture`),
    so a save does not send this again."""
    ws = workspace()
    rgb = cv.background(ws.read_slice(dataset, z), None, window, (window.height, window.width), prediction=_prediction)
    return picture_bytes(rgb)


@st.cache_data(max_entries=32, show_spinner=False)
def tint_picture(root: str, dataset: str, z: int, stamp: float, window: cv.ZoomWindow, alpha: float) -> bytes:
    """The saved mask's tint over the window as an indexed PNG (mostly transparent: small and quick)."""
    return indexed_png(*tint_indexed(workspace().read_mask(dataset, z), window, alpha))


@st.cache_data(max_entries=8, show_spinner=False)
def overview(root: str, dataset: str, z: int, stamp: float, width: int) -> str:
    """The whole slice with its mask, as a data URL at most ``width`` pixels wide (for the pan map)."""
    ws = workspace()
    img = Image.fromarray(overlay(ws.read_slice(dataset, z), ws.read_mask(dataset, z), 0.4))
    if img.width > width:
        img = img.resize((width, max(1, round(img.height * width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@st.cache_data(max_entries=16, show_spinner=False)
def version_picture(root: str, dataset: str, z: int, version: int) -> bytes:
    """A saved version over the image, as JPEG bytes: encoded once, not by ``st.image`` in every run."""
    ws = workspace()
    return picture_bytes(overlay(ws.read_slice(dataset, z), ws.read_mask(dataset, z, version=version), 0.5))


@st.cache_data(max_entries=8, show_spinner=False)
def provenance_picture(root: str, dataset: str, z: int, stamp: float) -> tuple[np.ndarray, str] | None:
    """The slice tinted by where each label came from (drawn, imported, accepted), and the legend."""
    ws = workspace()
    found = ws.read_provenance(dataset, z)
    if found is None:
        return None
    codes, run = found
    rgb = tint(gray_rgb(ws.read_slice(dataset, z)), codes, 0.55, color=lambda k: provenance.COLORS[k])
    legend = []
    colours = {provenance.DRAWN: "green", provenance.IMPORTED: "blue", provenance.ACCEPTED: "orange"}
    for code, colour in colours.items():
        share = float(np.mean(codes == code))
        if share:
            name = provenance.NAMES[code] + (f" (run {run})" if code == provenance.ACCEPTED and run else "")
            legend.append(f"{colour}: {name}, {100 * share:.1f} % of the pixels")
    return rgb, " · ".join(legend) or "no pixel labeled"


def chips(class_names: tuple[str, ...], current: int | None, scribble: bool = False) -> str:
    """Each class's canvas colour beside its name, the class being painted in bold; in scribble mode
    the eraser's colour (back to not labeled) too."""
    names = {k: name + ("" if scribble or k else " (eraser)") for k, name in enumerate(class_names)}
    if scribble:
        names[UNLABELED] = "not labeled (eraser)"
    out = []
    for k, name in names.items():
        r, g, b = cv.canvas_color(k)
        out.append(
            f"<span style='display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b});"
            f"border:1px solid #888;vertical-align:middle'></span> " + (f"**{name}**" if k == current else name)
        )
    return " &nbsp; ".join(out)


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
