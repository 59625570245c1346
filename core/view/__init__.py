"""View layer: pictures and figures, built in core so pages only display them.

Owns overlays and colours (:mod:`~core.view.render`), plotly figure builders
(:mod:`~core.view.plots`) and the Label page's canvas geometry and strokes
(:mod:`~core.view.canvas`). May import: :mod:`core.data` only; never torch or streamlit.
"""
