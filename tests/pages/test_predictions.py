"""Predictions page: predict with a tiny untrained checkpoint, then review: error map, scores, queue, accept."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from core.predict.dataset import prediction_jobs
from tests.synthetic import add_tiny_run


@pytest.fixture
def tiny_run(ws_env, make_dataset):
    """A 4-slice dataset (slices 0 and 1 labeled) and a run whose best checkpoint is an untrained tiny U-Net."""
    make_dataset("tiny", z=4, shape=(32, 48), labeled=(0, 1))
    add_tiny_run(ws_env, "run-tiny", "tiny")
    return "run-tiny"


def _wait_prediction(ws, dataset: str = "tiny") -> None:
    """The page predicts in a background job: wait for it (not a blind sleep)."""
    job = prediction_jobs(ws, dataset)
    assert job is not None and job.join(60), "the prediction job did not finish"


def _predicted(page, ws) -> AppTest:
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert at.selectbox(key="pred_run").value == "run-tiny"
    at.button(key="pred_predict").click().run()
    assert not at.exception, at.exception
    _wait_prediction(ws)
    at.run()  # the page after the job (in the browser its progress fragment triggers this rerun)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def _queue(at: AppTest):
    """The correction queue (its key changes with the order and the slice shown)."""
    found = [d for d in at.dataframe if (d.proto.id and "pred_queue" in d.proto.id) or "pred_queue" in str(d.key)]
    assert len(found) == 1, [d.key for d in at.dataframe]
    return found[0]


def _panel_titles(at: AppTest) -> list[str]:
    import json

    fig = json.loads(at.get_by_key("pred_views").proto.spec)
    return [a["text"] for a in fig["layout"]["annotations"]]


def test_page_opens_on_the_sample_without_a_model(ws_env, page):
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert not at.exception
    assert at.session_state["dataset"] == "isbi2012"
    assert any("No trained model yet" in i.value for i in at.info)
    assert at.file_uploader(key="pred_upload") and at.button(key="pred_import")


def test_predict_shows_error_map_scores_queue_and_confusion(tiny_run, ws_env, page):
    at = _predicted(page, ws_env)
    assert any("Predicted 4 slices" in s.value for s in at.success)
    assert at.selectbox(key="pred_shown").value == tiny_run
    captions = _panel_titles(at)  # one figure: the pictures zoom and pan together
    assert {"Image", "Mask (ground truth)", "Prediction", "Error map", "Uncertainty (bright = unsure)"} <= set(captions)
    wrong = [m for m in at.metric if m.label == "Wrong pixels"]
    assert wrong and wrong[0].value.endswith("%")
    legend = " ".join(m.value for m in at.markdown)
    assert "false positive" in legend and "false negative" in legend and "rgb(255, 0, 255)" in legend
    tabs = {t.label: t for t in at.tabs}
    scores = tabs["Per-slice scores"].dataframe[0].value
    assert sorted(scores["z"]) == [0, 1]  # only the labeled slices are scored
    assert list(scores["dice"]) == sorted(scores["dice"])  # worst first
    queue = _queue(at).value
    assert sorted(queue["z"]) == [0, 1, 2, 3]
    assert set(queue["status"].iloc[:2]) == {"unlabeled"}  # "label this next" first
    assert at.get_by_key("pred_confusion")
    assert at.slider(key="pred_threshold").value == 0.5
    assert at.button(key="pred_accept") and at.button(key="pred_to_label")


def test_one_render_scores_each_ground_truth_slice_once(tiny_run, ws_env, page, monkeypatch):
    """Issue 26.6: a render of the review scores each labeled slice once (the shown slice's numbers come
    from that pass); a new threshold scores them once more; a rerun with nothing changed scores none."""
    import core.predict.stored as stored

    calls: list[int] = []
    real = stored.slice_scores

    def counted(pred, truth, k):
        calls.append(1)
        return real(pred, truth, k)

    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    at.button(key="pred_predict").click().run()
    _wait_prediction(ws_env)
    monkeypatch.setattr(stored, "slice_scores", counted)
    at.run()
    assert not at.exception and any(m.label == "Wrong pixels" for m in at.metric)  # slice 0 is scored and shown
    assert len(calls) == 2  # slices 0 and 1, once each
    at.slider(key="pred_threshold").set_value(0.3).run()
    assert not at.exception and len(calls) == 4
    at.slider(key="pred_slice").set_value(1).run()  # another slice: its score is read, not computed
    assert not at.exception and len(calls) == 4
    assert any(m.label == "foreground Dice of this slice" for m in at.metric)  # one vocabulary (issue 27)


def test_threshold_relabels_and_accept_saves_the_mask(tiny_run, ws_env, page):
    at = _predicted(page, ws_env)
    at.slider(key="pred_slice").set_value(2).run()
    at.slider(key="pred_threshold").set_value(0.0).run()  # foreground wherever P(cell) > 0: everything
    assert not at.exception
    at.button(key="pred_accept").click().run()
    assert not at.exception
    mask = ws_env.read_mask("tiny", 2)
    assert mask is not None and mask.all()
    assert ws_env.dataset("tiny").statuses[2] == "from-prediction"


def test_uploaded_stack_is_imported_and_selected(tiny_run, ws_env, page):
    import io

    import numpy as np
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, np.zeros((2, 32, 48), np.uint8))
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    at.file_uploader(key="pred_upload").upload("new.tif", buf.getvalue(), "image/tiff")
    at.text_input(key="pred_upload_name").set_value("new-stack")
    at.button(key="pred_import").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"] == "new-stack"
    assert ws_env.dataset("new-stack").shape == (2, 32, 48)
    assert any("Imported new-stack" in s.value for s in at.success)


def _stored_prediction(ws, dataset: str, run_id: str, pred, slices_status=None) -> None:
    """A prediction as predict_dataset stores it (masks.tif + summary.json), without a network."""
    import json

    import tifffile

    folder = ws.predictions_dir(dataset, run_id)
    tifffile.imwrite(folder / "masks.tif", pred, photometric="minisblack")
    info = ws.dataset(dataset)
    (folder / "summary.json").write_text(
        json.dumps(
            {
                "threshold": 0.5,
                "n_classes": info.n_classes,
                "class_names": list(info.class_names),
                "created": 1.0,
                "n_done": int(pred.shape[0]),
                "n_total": info.shape[0],
                "device": "cpu",
                "seconds": 1.0,
                "slices": [{"z": z, "uncertainty": 0.1 * z} for z in range(pred.shape[0])],
            }
        )
    )


def test_headline_shows_each_class_and_calls_out_a_collapsed_model(ws_env, page, make_dataset):
    import numpy as np

    make_dataset("isbi-like", z=3, shape=(32, 48), labeled=(0, 1), class_names=("membrane", "cell"))
    _stored_prediction(ws_env, "isbi-like", "run-all-cell", np.ones((3, 32, 48), np.uint8))  # every pixel 'cell'
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    truth_cell = 64 / (32 * 48)  # the square of make_dataset is 'cell' (class 1)
    assert metrics["foreground Dice ('cell')"] == f"{2 * truth_cell / (1 + truth_cell):.3f}"
    assert metrics["Dice of 'membrane'"] == "0.000"
    assert metrics["class-mean Dice"] == f"{truth_cell / (1 + truth_cell):.3f}"
    assert any("Collapsed model" in w.value and "'membrane'" in w.value for w in at.warning)
    labels = [m.label for m in at.metric]
    assert labels.index("foreground Dice ('cell')") < labels.index("Dice of 'membrane'")  # foreground first


def test_accepted_slice_is_not_scored_and_the_queue_marks_the_slice_shown(ws_env, page, make_dataset):
    import numpy as np

    make_dataset("tiny", z=4, shape=(32, 48), labeled=(0, 1))
    pred = np.zeros((4, 32, 48), np.uint8)
    pred[:, 4:12, 4:10] = 1
    _stored_prediction(ws_env, "tiny", "run-x", pred)
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    at.slider(key="pred_slice").set_value(3).run()
    queue = _queue(at).value
    assert list(queue.loc[queue["shown"] == "▶", "z"]) == [3]
    at.button(key="pred_accept").click().run()
    assert not at.exception, at.exception
    assert ws_env.dataset("tiny").statuses[3] == "from-prediction"
    assert at.slider(key="pred_slice").value == 3  # the slice shown stays ...
    queue = _queue(at).value
    assert list(queue.loc[queue["shown"] == "▶", "z"]) == [3]  # ... and the queue marks that one
    # slices without a score say so in the queue, never a raw None; the score is named as everywhere
    assert "foreground Dice" in queue.columns
    assert "not scored" in set(queue["foreground Dice"]) and "None" not in queue.astype(str).to_numpy()
    titles = _panel_titles(at)
    assert "Mask (accepted prediction)" in titles and "Mask (ground truth)" not in titles
    fig = json.loads(at.get_by_key("pred_views").proto.spec)
    assert fig["layout"]["margin"]["t"] >= 24 + 32  # the titles sit below Plotly's toolbar, not under it
    assert "Error map" not in titles and not [m for m in at.metric if m.label == "Wrong pixels"]
    assert any("accepted prediction: not scored" in m.value for m in at.markdown)
    at.slider(key="pred_slice").set_value(0).run()  # a labeled slice is scored as before
    assert "Mask (ground truth)" in _panel_titles(at) and [m for m in at.metric if m.label == "Wrong pixels"]
    at.toggle(key="pred_large").set_value(True).run()
    assert not at.exception and len(_panel_titles(at)) == 4  # image, mask, prediction, error map, two per row


def test_model_of_another_dataset_and_classes_is_warned(ws_env, page, make_dataset):
    make_dataset("tiny", z=2, shape=(32, 48), labeled=(0,))
    window, extra = (0.0, 60000.0), {"dataset": "epfl"}
    add_tiny_run(ws_env, "run-other", "tiny", ["background", "mito"], norm_window=window, extra=extra)
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert not at.exception
    warned = " ".join(w.value for w in at.warning)
    assert "trained on dataset 'epfl', not on 'tiny'" in warned
    assert "(background, mito) are not the data's (background, cell)" in warned
    assert "do not fit the window the model was trained with (0 to 60000)" in warned


def test_prediction_can_be_cancelled_from_the_page(tiny_run, ws_env, page, monkeypatch):
    """Cancel stops after the slice being predicted; the finished slices are kept and reviewed."""
    import threading

    import core.predict.dataset as inference  # predict_dataset looks predict_stack up there

    gate, first_done = threading.Event(), threading.Event()
    real = inference.predict_stack

    def held(*args, progress=None, **kwargs):
        def slow(done, total, eta):
            progress(done, total, eta)
            first_done.set()
            gate.wait(30)  # hold the job after each slice until the test lets it go

        return real(*args, progress=slow, **kwargs)

    monkeypatch.setattr(inference, "predict_stack", held)
    monkeypatch.setenv("SEGDASH_WORKER_PROCESS", "0")  # the job in a thread here, so that the hook holds it
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    at.button(key="pred_predict").click().run()
    assert first_done.wait(30)
    at.run()
    assert not at.exception
    cancel = at.button(key="pred_cancel")
    assert not cancel.disabled
    cancel.click().run()
    assert prediction_jobs(ws_env, "tiny").snapshot()["cancel_requested"]
    gate.set()
    _wait_prediction(ws_env)
    at.run()
    assert not at.exception, at.exception
    assert any("Cancelled after 1 of 4 slices" in i.value for i in at.info)
    assert at.selectbox(key="pred_shown").value == tiny_run
    assert any(m.label == "Slices predicted" and m.value == "1/4" for m in at.metric)


def test_reviewed_prediction_downloads_as_imagej_tiffs(tiny_run, ws_env, page):
    """The prediction under review downloads as masks and probabilities TIFFs (ImageJ hyperstacks
    with the slice names as labels), prepared on request."""
    import io

    import tifffile

    at = _predicted(page, ws_env)
    assert not at.get("download_button")  # nothing is built before it is asked for
    at.button(key="pred_prepare_prob-tiff").click().run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    assert at.get("download_button")
    ready = at.session_state["pred_download"]
    assert ready["file_name"].endswith("prob.tif")
    with tifffile.TiffFile(io.BytesIO(ready["data"])) as tif:
        assert tif.is_imagej and tif.imagej_metadata["Labels"] == list(ws_env.dataset("tiny").slice_names)
        assert tif.asarray().shape == (4, 32, 48)


def test_model_picker_defaults_to_the_best_finished_run_with_live_rounds_apart(ws_env, make_dataset, page):
    """The picker labels every run with its state, epochs and one named score; it preselects the best
    finished run of the dataset, not the newest run nor a live round scored on its own strokes."""
    make_dataset("tiny", z=4, shape=(32, 48), labeled=(0, 1))
    for rid, state, rows in (
        ("tiny-20261207-010000-aaaa", "done", [{"val_dice": 0.93, "val_dice_fg": 0.866}]),
        ("tiny-20261207-020000-bbbb", "done", [{"val_dice": 0.6, "val_dice_fg": 0.194}]),
        ("tiny-live-20261207-030000-0001", "stopped", [{"val_dice": 1.0, "val_dice_fg": 1.0}]),
        ("tiny-20261207-040000-cccc", "stopped", []),  # a CLI run stopped after a few steps
    ):
        add_tiny_run(ws_env, rid, "tiny", best_dice=rows[0]["val_dice"] if rows else None)
        for i, row in enumerate(rows, 1):
            ws_env.catalog.add_epoch(rid, i, row)
        ws_env.catalog.update_run(rid, state=state, extra={"class_names": ["background", "cell"]})
    at = AppTest.from_file(page("predictions.py"), default_timeout=60).run()
    assert not at.exception
    box = at.selectbox(key="pred_run")
    assert box.value == "tiny-20261207-010000-aaaa"
    labels = box.options
    assert labels[-1].startswith("tiny live · Dec 07 03:00") and "not scored" in labels[-1]
    assert not any("1.000" in o for o in labels)
    assert (
        "tiny · Dec 07 01:00 · done · 1 epoch · validation foreground Dice 0.866 (tiny-20261207-010000-aaaa)" in labels
    )
    assert any("stopped · 0 epochs · not scored" in o for o in labels)
