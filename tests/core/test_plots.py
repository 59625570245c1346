"""core.view.plots: each builder returns a plotly Figure with the expected traces, axes and values."""

import numpy as np
import plotly.graph_objects as go
import pytest

from core.view import plots

HISTORY = [
    {"epoch": 1, "train_loss": 0.9, "val_loss": 1.0, "val_dice": 0.40, "val_iou": 0.25},
    {"epoch": 2, "train_loss": 0.6, "val_loss": 0.7, "val_dice": 0.60, "val_iou": 0.43},
    {"epoch": 3, "train_loss": 0.4, "val_loss": float("nan"), "val_dice": 0.70, "val_iou": 0.54},
]


def test_training_curves_traces_and_axes():
    fig = plots.training_curves(HISTORY, title="run-1")
    assert isinstance(fig, go.Figure)
    names = [t.name for t in fig.data]
    assert names == ["train loss", "val loss", "val class-mean Dice", "val class-mean IoU"]
    by = {t.name: t for t in fig.data}
    assert list(by["train loss"].x) == [1, 2, 3]
    assert list(by["train loss"].y) == [0.9, 0.6, 0.4]
    assert by["val loss"].y[2] is None  # NaN becomes a gap, not a crash in the JSON
    assert list(by["val class-mean Dice"].y) == [0.40, 0.60, 0.70]
    # losses on the left subplot, scores on the right one with a 0..1 axis
    assert by["train loss"].xaxis == "x" and by["val class-mean Dice"].xaxis == "x2"
    assert tuple(fig.layout.yaxis2.range) == (0, 1.02)
    assert fig.layout.xaxis.title.text == "epoch"
    assert fig.layout.title.text == "run-1"


def test_training_curves_name_the_scores_as_the_pages_do():
    """Issue 27: one vocabulary; a two-class run's foreground Dice is drawn beside the class mean."""
    fig = plots.training_curves([{**row, "val_dice_fg": row["val_dice"] - 0.1} for row in HISTORY])
    names = [t.name for t in fig.data]
    assert names == ["train loss", "val loss", "val foreground Dice", "val class-mean Dice", "val class-mean IoU"]
    assert fig.data[2].xaxis == "x2" and list(fig.data[2].y) == pytest.approx([0.30, 0.50, 0.60])


def test_training_curves_empty_history():
    fig = plots.training_curves([])
    assert len(fig.data) == 4 and all(len(t.x) == 0 for t in fig.data)


def test_compare_runs_one_colour_per_run_and_one_legend_entry():
    fig = plots.compare_runs({"a": HISTORY, "b": HISTORY[:2]}, metrics=("val_loss", "val_dice"))
    assert len(fig.data) == 4
    a = [t for t in fig.data if t.name == "a"]
    b = [t for t in fig.data if t.name == "b"]
    assert len(a) == 2 and len(b) == 2
    assert a[0].line.color == a[1].line.color != b[0].line.color
    assert [t.showlegend for t in a] == [True, False]
    assert list(b[1].y) == [0.40, 0.60] and b[1].xaxis == "x2"
    assert [a.text for a in fig.layout.annotations] == ["val loss", "val class-mean Dice"]


def test_confusion_figure_row_normalised_percent_and_names():
    m = np.array([[90, 10, 0], [5, 15, 0], [0, 0, 0]])
    fig = plots.confusion_figure(m, ["bg", "cell", "nucleus"])
    (hm,) = fig.data
    assert isinstance(hm, go.Heatmap)
    z = np.asarray(hm.z)
    np.testing.assert_allclose(z[0], [90, 10, 0])
    np.testing.assert_allclose(z[1], [25, 75, 0])
    np.testing.assert_allclose(z[2], [0, 0, 0])  # a class with no pixels: no division by zero
    assert list(hm.x) == ["bg", "cell", "nucleus"] and list(hm.y) == ["bg", "cell", "nucleus"]
    assert hm.text[1][0] == "25.0%<br>5"
    assert fig.layout.xaxis.title.text == "predicted class"
    assert fig.layout.yaxis.title.text == "true class"


def test_confusion_figure_refuses_bad_input():
    with pytest.raises(ValueError, match="square"):
        plots.confusion_figure(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="class names"):
        plots.confusion_figure(np.zeros((2, 2)), ["only one"])


def test_slice_scores_figure_and_rows_keep_order():
    scores = [
        {"z": 4, "name": "s4", "dice": 0.2, "iou": 0.11, "wrong_pct": 30.0},
        {"z": 1, "name": "s1", "dice": 0.9, "iou": 0.82, "wrong_pct": 2.0},
        {"z": 2, "name": "s2", "dice": float("nan"), "iou": float("nan")},
    ]
    fig = plots.slice_scores_figure(scores, "dice")
    (bar,) = fig.data
    assert isinstance(bar, go.Bar)
    assert list(bar.x) == ["s4", "s1", "s2"]
    assert bar.y[0] == 0.2 and bar.y[2] is None
    assert fig.layout.yaxis.title.text == "Dice"
    rows = plots.slice_scores_rows(scores)
    assert [r["z"] for r in rows] == [4, 1, 2]
    assert rows[0] == {"z": 4, "slice": "s4", "dice": 0.2, "iou": 0.11, "wrong_pct": 30.0}
    assert rows[2]["dice"] is None and "wrong_pct" not in rows[2]


def test_figures_serialise_to_json():
    for fig in (
        plots.training_curves(HISTORY),
        plots.compare_runs({"a": HISTORY}),
        plots.confusion_figure(np.eye(2)),
        plots.slice_scores_figure([{"z": 0, "dice": 0.5}]),
    ):
        assert "NaN" not in fig.to_json()  # valid JSON for the browser


def test_linked_images_share_axes_and_carry_pngs():
    rgb = np.zeros((6, 10, 3), np.uint8)
    fig = plots.linked_images([("a", rgb), ("b", rgb + 10), ("c", rgb + 20)], cols=2, panel_px=100)
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c"]
    assert all(isinstance(t, go.Image) and t.source.startswith("data:image/png;base64,") for t in fig.data)
    assert fig.layout.xaxis2.matches == "x" and fig.layout.yaxis3.matches == "y"  # zoom and pan together
    assert tuple(fig.layout.xaxis.range) == (-0.5, 9.5) and tuple(fig.layout.yaxis.range) == (5.5, -0.5)
    assert fig.layout.height == 2 * 130 + 10  # two rows
    with pytest.raises(ValueError, match="differ in size"):
        plots.linked_images([("a", rgb), ("b", np.zeros((5, 10, 3), np.uint8))])
