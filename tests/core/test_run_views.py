"""core.workflow.runs: one score per run that means the same everywhere, live rounds apart, the default
model the best finished run; and ``python -m core list`` reporting the same."""

from __future__ import annotations

import numpy as np
import pytest

from core.workflow.listing import workspace_listing
from core.workflow.runs import (
    CLASS_MEAN_DICE,
    FOREGROUND_DICE,
    default_run,
    export_warning,
    interrupted_runs,
    last_finished,
    picker_runs,
    run_views,
    short_name,
)

_SPLIT = {"train": [0, 1, 2], "val": [3]}
_BINARY = ["background", "cell"]


@pytest.fixture
def ws(ws):
    images = np.zeros((6, 16, 16), np.uint8)
    ws.create_dataset("d", images, [np.zeros((16, 16), np.uint8)] * 4 + [None] * 2, _BINARY)
    ws.create_dataset("e", images, [np.zeros((16, 16), np.uint8)] * 4 + [None] * 2, _BINARY)
    return ws


def _run(ws, run_id, dataset="d", state="done", epochs=(), extra=None, best=None, ckpt=True):
    """A run in the catalog (created now: runs made later are newer)."""
    ws.create_run(run_id, dataset, {"epochs": 5}, state=state)
    for i, row in enumerate(epochs, 1):
        ws.add_epoch(run_id, i, row)
    updates = {"extra": {"class_names": _BINARY, "split": _SPLIT, **(extra or {})}}
    if ckpt:
        path = ws.run_dir(run_id) / "best.pt"
        path.write_bytes(b"w")
        updates.update(best_checkpoint=str(path), last_checkpoint=str(path))
    if best is not None:
        updates["best_dice"] = best
    ws.update_run(run_id, **updates)


def test_score_is_test_else_validation_foreground_dice(ws):
    _run(ws, "d-a", epochs=[{"val_dice": 0.98, "val_dice_fg": 0.91}], best=0.98)
    _run(
        ws,
        "d-b",
        epochs=[{"val_dice": 0.98, "val_dice_fg": 0.91}],
        extra={"finish": {"val": {"dice_fg": 0.90, "mean_dice": 0.95}, "test": {"dice_fg": 0.876}}},
        best=0.98,
    )
    by_id = {v.run_id: v for v in run_views(ws, "d")}
    a, b = by_id["d-a"], by_id["d-b"]
    assert (a.score, a.score_on, a.measure) == (0.91, "validation", FOREGROUND_DICE)
    assert a.score_text == "validation foreground Dice 0.910"
    assert (b.score, b.score_on) == (0.876, "test") and b.score_text == "test foreground Dice 0.876"
    assert b.epochs_text == "1/5 epochs" and b.run_id in b.label and "done" in b.label


def test_multi_class_runs_are_scored_with_the_class_mean(ws):
    _run(ws, "d-m", epochs=[{"val_dice": 0.8}], extra={"class_names": ["bg", "a", "b"]}, best=0.8)
    (v,) = run_views(ws, "d")
    assert (v.score, v.measure) == (0.8, CLASS_MEAN_DICE)


def test_live_rounds_and_unvalidated_runs_are_not_scored(ws):
    # a live round validates on its own training slices: 1.0 is not a score
    _run(ws, "d-live-20261207-031500-0001", epochs=[{"val_dice": 1.0, "val_dice_fg": 1.0}], best=1.0)
    _run(ws, "d-same", epochs=[{"val_dice": 1.0, "val_dice_fg": 1.0}], extra={"split": {"train": [0], "val": [0]}})
    _run(ws, "d-early", state="stopped")  # stopped after a few steps: no validation at all
    views = {v.run_id: v for v in run_views(ws, "d")}
    for v in views.values():
        assert v.score is None and v.score_text == "not scored"
    assert views["d-live-20261207-031500-0001"].live
    listing = {r["run_id"]: r for r in workspace_listing(ws)["runs"]}
    live = listing["d-live-20261207-031500-0001"]
    assert live["best_dice"] is None and live["score"] is None and live["score_text"] == "not scored"
    assert live["live"] and live["short_name"] == "d live · Dec 07 03:15"
    assert export_warning(views["d-same"]) == ""  # validated, on its training slices: scored "not scored", no refusal
    assert "before its first validation" in export_warning(views["d-early"])
    assert "live-loop round" in export_warning(views["d-live-20261207-031500-0001"])


def test_the_default_is_the_best_finished_run_never_a_live_round(ws):
    _run(ws, "d-good", epochs=[{"val_dice": 0.9, "val_dice_fg": 0.86}], best=0.9)
    _run(ws, "d-worse", epochs=[{"val_dice": 0.8, "val_dice_fg": 0.6}], best=0.8)
    _run(ws, "d-stopped", state="stopped")  # newest, with a checkpoint, never validated
    _run(ws, "d-live-20261207-031500-0002", epochs=[{"val_dice": 1.0}], best=1.0)
    _run(ws, "e-other", dataset="e", epochs=[{"val_dice": 0.99, "val_dice_fg": 0.99}], best=0.99)
    views = run_views(ws, with_checkpoint=True)
    assert default_run(views, "d").run_id == "d-good"
    ordered, index = picker_runs(views, "d")
    assert ordered[index].run_id == "d-good"
    assert [v.run_id for v in ordered] == [
        "d-stopped",
        "d-worse",
        "d-good",
        "e-other",
        "d-live-20261207-031500-0002",
    ]  # this dataset's runs, other datasets', then live rounds apart
    ordered, index = picker_runs(views, "nothing-trained")
    assert ordered[index].run_id == "e-other"  # no run of the dataset: the best of any


def test_last_finished_and_interrupted_apart(ws):
    _run(ws, "d-done", epochs=[{"val_dice": 0.9, "val_dice_fg": 0.8}])
    _run(ws, "d-killed", state="interrupted")
    _run(ws, "d-killed-2", state="interrupted")
    _run(ws, "d-resume", state="stopped", extra={"resumed_from": "d-killed-2"})
    views = run_views(ws, "d")
    assert last_finished(views).run_id == "d-done"
    assert [v.run_id for v in interrupted_runs(views)] == ["d-killed"]


def test_short_names():
    assert short_name("isbi2012-20261207-031500-ab12", "isbi2012") == "isbi2012 · Dec 07 03:15"
    assert short_name("run-0001", "tiny") == "run-0001"


def test_cli_list_headline_is_the_held_out_foreground_score_named_as_such(ws, capsys):
    """Issue 27: ``list`` reported best_dice 0.980 (class mean with the background, validation crops)
    for an EPFL run whose foreground Dice was 0.910 on validation and 0.876 on test. The headline is
    now the held-out foreground score, named; ``best_dice`` stays (public JSON), saying what it is."""
    import json

    from core import cli

    _run(
        ws,
        "d-20261207-031500-ab12",
        epochs=[{"val_dice": 0.98, "val_dice_fg": 0.93}],
        extra={
            "finish": {
                "val": {"dice_fg": 0.910, "mean_dice": 0.95, "iou_fg": 0.835, "mean_iou": 0.90},
                "test": {"dice_fg": 0.876, "mean_dice": 0.93, "iou_fg": 0.780, "mean_iou": 0.87},
            }
        },
        best=0.98,
    )
    _run(ws, "d-live-20261207-041500-0001", epochs=[{"val_dice": 1.0, "val_dice_fg": 1.0}], best=1.0)
    assert cli.main(["list", "--workspace", str(ws.root)]) == 0
    out, err = capsys.readouterr()
    runs = {r["run_id"]: r for r in json.loads(out.strip().splitlines()[-1])["runs"]}
    run = runs["d-20261207-031500-ab12"]
    assert (run["score"], run["score_on"], run["score_measure"]) == (0.876, "test", FOREGROUND_DICE)
    assert run["held_out"]["test"] == {
        "foreground_dice": 0.876,
        "class_mean_dice": 0.93,
        "foreground_iou": 0.78,
        "class_mean_iou": 0.87,
    }
    assert run["held_out"]["validation"]["foreground_dice"] == 0.91
    assert run["best_dice"] == 0.98 and run["best_dice_measure"].startswith(CLASS_MEAN_DICE)  # kept, and named
    line = next(x for x in err.splitlines() if x.startswith("run d-20261207-031500-ab12"))
    assert "test foreground Dice 0.876" in line and "0.98" not in line
    live = runs["d-live-20261207-041500-0001"]
    assert live["held_out"] == {} and live["score_text"] == "not scored" and "1.000" not in err


def test_export_model_warns_of_a_checkpoint_never_validated(ws, capsys):
    """Issue 27: a CLI run stopped after 6 steps was packaged from last.pt without a word; export-model
    now says so on stderr (``warning: ...``) before packaging, and says nothing of a scored run."""
    from core.workflow.runs import checkpoint_warning

    _run(ws, "d-early", state="stopped")
    _run(ws, "d-good", epochs=[{"val_dice": 0.9, "val_dice_fg": 0.8}], best=0.9)
    early = ws.run("d-early")["last_checkpoint"]
    assert "before its first validation" in checkpoint_warning(ws, early)
    assert checkpoint_warning(ws, ws.run("d-good")["best_checkpoint"]) == ""
    assert checkpoint_warning(ws, ws.root / "elsewhere.pt") == ""

    from core import cli

    code = cli.main(
        ["export-model", "--workspace", str(ws.root), "--checkpoint", early, "--out", str(ws.root / "m.zip")]
        + ["--authors", "Ann Lee"]
    )
    err = capsys.readouterr().err
    assert code != 0  # b"w" is no checkpoint: refused after the warning
    assert err.splitlines()[0].startswith("warning: Run d-early was stopped before its first validation")


def test_a_round_is_told_apart_by_its_origin_not_its_id(ws):
    """Rounds are ordinary requests with the run id of every run: their origin ``live`` marks them
    (the ``-live-`` ids of older rounds still do)."""
    from core.workflow.training import runs_table

    _run(ws, "d-good", epochs=[{"val_dice": 0.9, "val_dice_fg": 0.86}], best=0.9)
    ws.create_run("d-20261207-031600-ab12", "d", {"epochs": 5}, state="stopped", origin="live")
    ws.add_epoch("d-20261207-031600-ab12", 1, {"val_dice": 1.0, "val_dice_fg": 1.0})
    ws.update_run("d-20261207-031600-ab12", last_checkpoint=str(ws.root / "catalog.sqlite"))
    views = {v.run_id: v for v in run_views(ws, "d")}
    rnd = views["d-20261207-031600-ab12"]
    assert rnd.live and rnd.score_text == "not scored" and rnd.short == "d live · Dec 07 03:16"
    assert not views["d-good"].live
    ordered, index = picker_runs(list(views.values()), "d")
    assert ordered[-1].run_id == rnd.run_id and ordered[index].run_id == "d-good"
    rows = runs_table(ws, "d")  # the Train page's table: rounds last, trained by the live loop
    assert rows[-1]["run id"] == rnd.run_id and rows[-1]["trained by"] == "live loop"
