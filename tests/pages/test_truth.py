"""Issue 27, pages that tell the truth: the walk of its 'Why' list that the other page tests do not
already cover (runs table without a bare None, the Export model picker and live rounds, Redo worded
as Undo, partial datasets exported with their unlabeled slices marked as such)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from streamlit.testing.v1 import AppTest

from tests.synthetic import add_tiny_run

DONE = "tiny-20261207-010000-aaaa"
LIVE = "tiny-live-20261207-235959-0001"


def _open(page, name: str) -> AppTest:
    at = AppTest.from_file(page(name), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _cells(frame) -> list:
    return [v for col in frame.columns for v in frame[col].tolist()]


def test_runs_table_has_no_bare_none(ws_env, page, make_dataset):
    """'raw None in the runs table': a finished run without device, error or test slices beside a
    failed one (whose error makes the error column appear) shows words or dashes, never None."""
    make_dataset("tiny", z=3, labeled=(0, 1))
    ws_env.catalog.create_run(DONE, "tiny", {"epochs": 2}, state="done")
    ws_env.catalog.add_epoch(DONE, 1, {"train_loss": 0.5, "val_loss": 0.4, "val_dice": 0.9, "val_dice_fg": 0.8})
    ws_env.catalog.create_run("tiny-20261207-020000-bbbb", "tiny", {"epochs": 2}, state="failed")
    ws_env.catalog.update_run("tiny-20261207-020000-bbbb", error="out of memory")
    at = _open(page, "train.py")
    (table,) = [d.value for d in at.dataframe if "run id" in d.value.columns]
    cells = _cells(table)
    assert "out of memory" in cells and DONE in cells
    assert not any(v is None or (isinstance(v, float) and np.isnan(v)) or str(v) == "None" for v in cells), cells
    assert set(table["score"]) == {"validation foreground Dice 0.800", "not scored"}
    (compare,) = at.multiselect(key="train_compare").options  # a picker names the run as the others do
    assert compare == f"tiny · Dec 07 01:00 · done · 1/2 epochs · validation foreground Dice 0.800 ({DONE})"
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "train_compare_chart" in c.proto.id]
    titles = [a["text"] for a in json.loads(chart.proto.spec)["layout"]["annotations"]]
    assert titles == ["train loss", "val loss", "val foreground Dice"]  # the pages' words, two classes


def test_export_model_picker_keeps_live_rounds_apart_and_not_scored(ws_env, page, make_dataset):
    """'Train on my strokes rounds appear in the model picker as 1.000 beside real runs': in the Export
    page's picker a newer live round with a checkpoint (catalog best_dice 1.0, the old record) comes
    last, says 'not scored', and the best finished run is preselected, named in full with its state,
    epochs and score."""
    make_dataset("tiny", z=3, shape=(64, 64), labeled=(0, 2))
    add_tiny_run(ws_env, DONE, "tiny", best_dice=0.9)
    ws_env.catalog.add_epoch(DONE, 1, {"val_dice": 0.9, "val_dice_fg": 0.8})
    ckpt = add_tiny_run(ws_env, LIVE, "tiny", best_dice=1.0)
    ws_env.catalog.add_epoch(LIVE, 1, {"val_dice": 1.0, "val_dice_fg": 1.0})
    ws_env.catalog.update_run(LIVE, state="stopped", best_checkpoint=str(ckpt))
    at = _open(page, "export.py")
    box = at.selectbox(key="tools_run")
    assert box.value == DONE
    labels = box.options
    assert DONE in labels[0] and LIVE in labels[-1]
    assert "done" in labels[0] and "validation foreground Dice 0.800" in labels[0] and "1 epoch" in labels[0]
    assert "not scored" in labels[-1] and "1.000" not in labels[-1]
    box.set_value(LIVE).run()
    assert any("live-loop round" in w.value for w in at.warning)  # asked before packaging, as a stopped run


def test_redo_with_nothing_to_redo_is_said_as_undo_says_it(ws_env, page, make_dataset):
    """'"Nothing to undo on this slice." beside "slice 5 of 'lucchi12' has nothing to redo"': a Redo
    pressed when another session already redid (the button was drawn enabled) says it as Undo does."""
    make_dataset("tiny", z=1, shape=(32, 48), labeled=(0,))
    at = _open(page, "label.py")
    at.button(key="label_undo").click().run()
    assert not at.button(key="label_redo").disabled
    ws_env.redo_mask("tiny", 0)  # another session, meanwhile
    at.button(key="label_redo").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [i.value for i in at.info if "redo" in i.value.lower()] == ["Nothing to redo on this slice."]
    # the Label page started the live loop's background imports (core.workflow.live.warm_up): let them
    # end here, since on CPython 3.11.7 an import that parses source in one thread while AppTest compiles
    # a page in another fails that page ("AST constructor recursion depth mismatch")
    from core.workflow.live import warm_up

    warm_up().join(timeout=300)


def test_partial_dataset_exports_mark_unlabeled_slices(ws_env, page, make_dataset, tmp_path):
    """'A partial dataset's TIFF export writes unlabeled slices as all-0 pages': the OME-Zarr labels
    write them as 255 (not labeled, transparent, named so in the labels' properties) and list them;
    the dataset ZIP lists them in segdash.json and holds no mask for them; both import back the same."""
    from core.data.omezarr import read_omezarr
    from core.workflow.ingest import import_dataset

    make_dataset("tiny", z=3, labeled=(0, 2))
    at = _open(page, "export.py")
    at.button(key="tools_omezarr_prepare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    with zipfile.ZipFile(io.BytesIO(at.session_state["tools_export_ready"]["data"])) as zf:
        zf.extractall(tmp_path)
    masks_path = tmp_path / "tiny.zarr" / "labels" / "masks"
    labels = read_omezarr(masks_path)[0]
    assert (labels[1] == 255).all() and set(np.unique(labels[0])) == {0, 1}
    attrs = json.loads((masks_path / ".zattrs").read_text())
    assert attrs["segdash"]["labeled_slices"] == [0, 2] and attrs["segdash"]["unlabeled_slices"] == [1]
    assert attrs["segdash"]["unlabeled_value"] == 255
    props = {p["label-value"]: p for p in attrs["image-label"]["properties"]}
    assert props[255]["class"] == "not labeled"
    again = import_dataset(ws_env, "fromzarr", tmp_path / "tiny.zarr", masks_path)
    assert again.dataset.statuses[1] == "unlabeled" and ws_env.read_mask("fromzarr", 1) is None
    assert np.array_equal(ws_env.read_mask("fromzarr", 2), ws_env.read_mask("tiny", 2))

    at.radio(key="export_format").set_value(at.radio(key="export_format").options[2]).run()
    at.button(key="export_prepare").click().run()
    data = at.session_state["export_ready"]["data"]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        manifest = json.loads(zf.read("segdash.json"))
        assert "masks/tiny_0001.png" not in zf.namelist()
    assert manifest["labeled"] == [0, 2] and manifest["unlabeled"] == [1]
    zipped = import_dataset(ws_env, "fromzip", ("tiny_dataset.zip", data))
    assert zipped.dataset.statuses == ws_env.dataset("tiny").statuses
    assert any("unlabeled" in c.value and "255" in c.value for c in at.caption)  # the page says so


def test_prediction_pickers_name_the_run_that_made_it(ws_env, page, make_dataset):
    """'Every run shown anywhere carries its state, epochs done and a score': the Predictions, Export
    and Measure pages' prediction pickers name the prediction's run as the model pickers do."""
    from tests.pages.test_predictions import _stored_prediction

    make_dataset("tiny", z=3, labeled=(0, 2))
    add_tiny_run(ws_env, DONE, "tiny", best_dice=0.9)  # its best.pt: the Predictions page's model too
    ws_env.catalog.add_epoch(DONE, 1, {"val_dice": 0.9, "val_dice_fg": 0.8})
    pred = np.zeros((3, 32, 48), np.uint8)
    pred[:, 4:12, 4:12] = 1
    _stored_prediction(ws_env, "tiny", DONE, pred)
    named = f"tiny · Dec 07 01:00 · done · 1 epoch · validation foreground Dice 0.800 ({DONE})"
    for name, key in (("predictions.py", "pred_shown"), ("export.py", "export_pred_run")):
        at = _open(page, name)
        box = at.selectbox(key=key)
        assert box.value == DONE and box.options == [named], (name, box.options)
        if name == "predictions.py":  # the model box is narrow: the full id is said below it
            assert any(c.value.startswith(f"Run `{DONE}` predicts all 3 slices") for c in at.caption)
    at = _open(page, "measure.py")
    at.radio(key="measure_source").set_value("A stored prediction").run()
    assert at.selectbox(key="measure_run").options == [named]
