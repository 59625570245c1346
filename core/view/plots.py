"""Plotly figure builders for the Train and Predictions pages: numbers in, ``go.Figure`` out.

No streamlit here: pages only call ``st.plotly_chart(fig)``. Every builder accepts plain Python
sequences or numpy arrays and works on empty input (an empty figure with its axes titled), so a
page can draw a chart before the first epoch has finished.

Example:
    >>> fig = training_curves([{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_dice": 0.5, "val_iou": 0.3}])
    >>> [t.name for t in fig.data]
    ['train loss', 'val loss', 'val class-mean Dice', 'val class-mean IoU']
"""

from __future__ import annotations

import base64
import io
from typing import Any, Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..data.records import finite_or_none
from ..errors import SegDashError

__all__ = [
    "METRIC_LABELS",
    "training_curves",
    "compare_runs",
    "confusion_figure",
    "slice_scores_figure",
    "slice_scores_rows",
    "linked_images",
]

METRIC_LABELS = {
    "train_loss": "train loss",
    "val_loss": "val loss",
    "val_dice": "val class-mean Dice",  # the pages' words (core.workflow.runs): the background counted
    "val_iou": "val class-mean IoU",
    "val_dice_fg": "val foreground Dice",
    "val_accuracy": "val accuracy",
    "dice": "Dice",
    "iou": "IoU",
    "lr": "learning rate",
}
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_LAYOUT = dict(
    margin=dict(l=10, r=10, t=40, b=10),
    template="plotly_white",
    legend=dict(orientation="h", yanchor="top", y=-0.22, x=0),
)  # below the x axis titles


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float | None]]:
    """Epochs and values of ``key`` (``None`` where missing or not finite, so the line has a gap)."""
    xs, ys = [], []
    for i, row in enumerate(history):
        xs.append(int(row.get("epoch", i + 1)))
        v = row.get(key)
        ys.append(finite_or_none(v))
    return xs, ys


def training_curves(history: Sequence[Mapping[str, Any]], title: str = "") -> go.Figure:
    """Loss (train and val) and validation Dice/IoU per epoch of one run, side by side (the
    foreground Dice too where the epochs recorded it: two classes).

    Args:
        history: per epoch a mapping with ``epoch`` and any of ``train_loss``, ``val_loss``,
            ``val_dice``, ``val_iou`` (as in ``TrainingJob.snapshot()["history"]`` or
            ``catalog.epochs(run_id)``).
        title: figure title.

    Returns:
        A figure with two subplots: left the losses (traces ``train loss``, ``val loss``), right the
        scores (``val Dice``, ``val IoU``) on a 0..1 axis.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Validation Dice / IoU"), horizontal_spacing=0.08)
    fg = ("val_dice_fg",) if any(finite_or_none(row.get("val_dice_fg")) is not None for row in history) else ()
    for col, keys in ((1, ("train_loss", "val_loss")), (2, (*fg, "val_dice", "val_iou"))):
        for key in keys:
            xs, ys = _series(history, key)
            color = _COLORS[("train_loss", "val_loss", "val_dice", "val_iou", "val_dice_fg").index(key)]
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=METRIC_LABELS[key],
                    mode="lines+markers",
                    line=dict(color=color, dash="dot" if key == "val_iou" else None),
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(title_text="loss", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="score", range=[0, 1.02], row=1, col=2)
    fig.update_layout(title=title or None, height=360, **_LAYOUT)
    return fig


def compare_runs(
    histories: Mapping[str, Sequence[Mapping[str, Any]]], metrics: Sequence[str] = ("val_loss", "val_dice")
) -> go.Figure:
    """Curves of several runs overlaid, one subplot per metric, one colour per run.

    Args:
        histories: run id -> per-epoch history (see :func:`training_curves`).
        metrics: which keys to plot, one subplot each.

    Returns:
        A figure whose traces are named ``"<run id>"`` and grouped by run (toggling a run in the
        legend hides it in every subplot).
    """
    metrics = list(metrics) or ["val_dice"]
    fig = make_subplots(
        rows=1, cols=len(metrics), subplot_titles=[METRIC_LABELS.get(m, m) for m in metrics], horizontal_spacing=0.08
    )
    for i, (run_id, history) in enumerate(histories.items()):
        color = _COLORS[i % len(_COLORS)]
        for col, key in enumerate(metrics, start=1):
            xs, ys = _series(history, key)
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    name=str(run_id),
                    legendgroup=str(run_id),
                    showlegend=col == 1,
                    mode="lines+markers",
                    line=dict(color=color),
                ),
                row=1,
                col=col,
            )
    for col, key in enumerate(metrics, start=1):
        if key.startswith("val_") and key != "val_loss":
            fig.update_yaxes(range=[0, 1.02], row=1, col=col)
        fig.update_yaxes(title_text=METRIC_LABELS.get(key, key), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=380, **_LAYOUT)
    return fig


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str] | None = None) -> go.Figure:
    """Confusion matrix heat map: rows true class, columns predicted, coloured by row-normalised %.

    Args:
        matrix: (K, K) pixel counts, ``matrix[t, p]`` = pixels of true class ``t`` predicted ``p``.
        class_names: K names (default ``class 0`` ...).

    Returns:
        A figure with one ``go.Heatmap`` whose ``z`` is the row percentage (0..100; a class with no
        pixels gives a row of 0) and whose cell text shows the percentage and the count.

    Example:
        >>> fig = confusion_figure(np.array([[3, 1], [0, 4]]), ["bg", "cell"])
        >>> fig.data[0].z.tolist()
        [[75.0, 25.0], [0.0, 100.0]]
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise SegDashError(f"a confusion matrix must be square (K, K); got shape {m.shape}")
    k = m.shape[0]
    names = [str(c) for c in class_names] if class_names is not None else [f"class {i}" for i in range(k)]
    if len(names) != k:
        raise SegDashError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    rows = m.sum(axis=1, keepdims=True)
    pct = np.divide(m * 100.0, rows, out=np.zeros_like(m), where=rows > 0)
    text = [[f"{pct[t, p]:.1f}%<br>{int(m[t, p]):,}" for p in range(k)] for t in range(k)]
    fig = go.Figure(
        go.Heatmap(
            z=pct,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=100,
            colorbar=dict(title="% of true"),
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="predicted class", side="bottom", type="category")
    fig.update_yaxes(title_text="true class", autorange="reversed", type="category")
    fig.update_layout(
        height=max(280, 90 * k + 120), showlegend=False, **{k_: v for k_, v in _LAYOUT.items() if k_ != "legend"}
    )
    return fig


def _score(row: Mapping[str, Any], key: str) -> float | None:
    return finite_or_none(row.get(key))


def slice_scores_rows(
    scores: Sequence[Mapping[str, Any]], keys: Sequence[str] = ("dice", "iou", "wrong_pct")
) -> list[dict[str, Any]]:
    """Rows for a per-slice score table: ``z``, ``slice`` name and the chosen score keys, rounded.

    Missing keys are left out of a row; NaN becomes ``None`` (an empty cell). Order is kept (pass
    scores sorted worst first).
    """
    out = []
    for row in scores:
        r: dict[str, Any] = {"z": int(row["z"])} if "z" in row else {}
        if "name" in row or "slice" in row:
            r["slice"] = row.get("name", row.get("slice"))
        for key in keys:
            if key in row:
                v = _score(row, key)
                r[key] = None if v is None else round(v, 4)
        out.append(r)
    return out


def slice_scores_figure(scores: Sequence[Mapping[str, Any]], metric: str = "dice") -> go.Figure:
    """Bar chart of one score per slice, in the given order (worst first if sorted so).

    Args:
        scores: per slice a mapping with ``z`` (and optionally ``name``) and ``metric``.
        metric: the key to plot (``dice`` or ``iou``).
    """
    labels = [str(r.get("name") or r.get("slice") or f"z={r.get('z')}") for r in scores]
    values = [_score(r, metric) for r in scores]
    colors = [
        "#d62728" if v is not None and v < 0.5 else "#ff7f0e" if v is not None and v < 0.8 else "#2ca02c"
        for v in values
    ]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=values,
            name=METRIC_LABELS.get(metric, metric),
            marker_color=colors,
            customdata=[r.get("z") for r in scores],
            hovertemplate="%{x} (z=%{customdata})<br>%{y:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="slice", type="category")
    fig.update_yaxes(title_text=METRIC_LABELS.get(metric, metric), range=[0, 1.02])
    fig.update_layout(height=300, **_LAYOUT)
    return fig


def _png_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def linked_images(panels: Sequence[tuple[str, np.ndarray]], cols: int | None = None, panel_px: int = 215) -> go.Figure:
    """Pictures side by side that zoom and pan together: one subplot per panel, axes matched.

    Each picture is a ``go.Image`` whose source is a PNG (not a list of pixel values), so a
    768 x 1024 slice costs about its PNG size in the page. Every subplot's x axis matches the
    first's and every y axis the first's (``matches="x"`` / ``"y"``), so a box zoom or a pan in
    one panel shows the same region of the slice in all; double-click resets.

    Args:
        panels: ``(title, (Y, X, 3) uint8 RGB)`` per picture, all of the same (Y, X).
        cols: pictures per row (default all in one row).
        panel_px: height of one picture in pixels (the width follows the aspect ratio).

    Returns:
        the figure; ``layout.annotations`` are the titles.

    Example:
        >>> import numpy as np
        >>> fig = linked_images([("a", np.zeros((4, 6, 3), np.uint8)), ("b", np.ones((4, 6, 3), np.uint8))])
        >>> [a.text for a in fig.layout.annotations], fig.layout.xaxis2.matches
        (['a', 'b'], 'x')
    """
    if not panels:
        raise SegDashError("no picture to show")
    shapes = {np.asarray(img).shape[:2] for _, img in panels}
    if len(shapes) != 1:
        raise SegDashError(f"the pictures differ in size: {sorted(shapes)}")
    h, w = shapes.pop()
    n = len(panels)
    cols = max(1, min(int(cols or n), n))
    rows = -(-n // cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[t for t, _ in panels],
        horizontal_spacing=0.01,
        vertical_spacing=0.06 if rows > 1 else 0.0,
    )
    for i, (title, img) in enumerate(panels):
        fig.add_trace(
            go.Image(
                source=_png_uri(np.asarray(img)),
                name=title,
                hoverinfo="x+y",
                hovertemplate=f"{title}<br>x %{{x}}, y %{{y}}<extra></extra>",
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_xaxes(
        matches="x", showticklabels=False, showgrid=False, zeroline=False, range=[-0.5, w - 0.5], constrain="domain"
    )
    fig.update_yaxes(
        matches="y", showticklabels=False, showgrid=False, zeroline=False, range=[h - 0.5, -0.5], constrain="domain"
    )
    fig.update_layout(yaxis_scaleanchor="x")  # square pixels; the other axes follow through matches
    fig.update_layout(
        height=int(rows * (panel_px + 30) + 10),
        margin=dict(l=0, r=0, t=24, b=0),
        template="plotly_white",
        dragmode="zoom",
        showlegend=False,
    )
    fig.update_annotations(font_size=13)
    return fig
