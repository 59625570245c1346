"""The Data page's pixel size editor: the physical size of a pixel, which the Measure page turns
measurements into (read from the images' metadata on import, when they state it)."""

import streamlit as st

from core.data.pixelsize import PixelSize
from core.workflow.measure import UNITS, set_pixel_size
from pages._common import flash, user_errors


def pixel_size_editor(ws, dataset: str) -> None:
    """Shows the dataset's pixel size and stores a new one on Save."""
    px = ws.pixel_size(dataset)
    st.markdown("**Pixel size**")
    st.caption(f"{px.describe()}." if px else "Unknown (the images did not state it): measurements are in pixels only.")
    a, b, c = st.columns(3)
    xy = a.number_input("x and y", min_value=0.0, value=px.x if px else 1.0, format="%g", key=f"data_px_xy_{dataset}")
    z = b.number_input("z step", min_value=0.0, value=px.z if px else 1.0, format="%g", key=f"data_px_z_{dataset}")
    units = list(UNITS) + ([px.unit] if px and px.unit not in UNITS else [])
    unit = c.selectbox("Unit", units, index=units.index(px.unit if px else "micrometer"), key=f"data_px_u_{dataset}")
    if st.button("Save pixel size", key="data_px_save"):
        with user_errors():
            saved = set_pixel_size(ws, dataset, PixelSize(z, xy, xy, unit))
            flash("success", f"Pixel size saved: {saved.describe()}.")
            st.rerun()
